"""Result proofs: a receipt's result, events and block chain are attested by a stable checkpoint
certificate through the state-root chain; tampering with any link is caught offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from ibledger.cli.client_verify import ValidatorSet, verify_receipt
from ibledger.consensus import (
    CheckpointCertificate,
    Commit,
    CommitCertificate,
    encode_checkpoint_certificate,
    encode_commit_certificate,
    sha256,
    signing_bytes,
)
from ibledger.consensus.codec import checkpoint_signing_bytes
from ibledger.node.api import receipt_pb
from ibledger.node.blocks import BlockHeader
from ibledger.node.crypto import generate_keypair
from ibledger.node.ledger import Ledger
from ibledger.node.tx import decode_envelope
from ibledger.proto import types_pb2

from ..node.conftest import GENESIS_TIME_MS, Directory, make_genesis, register_tx

MEMBERS = ("node0", "node1", "node2", "node3")
VALIDATORS = {rid: generate_keypair() for rid in MEMBERS}


def _validator_set() -> ValidatorSet:
    return ValidatorSet.from_genesis(
        {
            "crypto_suite": "ed25519-sha256",
            "validators": [
                {"id": rid, "public_key": VALIDATORS[rid].public_key.hex()} for rid in MEMBERS
            ],
        }
    )


def _commit(header: BlockHeader) -> bytes:
    commit = Commit(0, header.height, header.consensus_digest(sha256))
    return encode_commit_certificate(
        CommitCertificate(
            0,
            header.height,
            header.consensus_digest(sha256),
            tuple((rid, VALIDATORS[rid].sign(signing_bytes(commit, rid))) for rid in MEMBERS[:3]),
        )
    )


def _checkpoint(ledger: Ledger, signers: tuple[str, ...] = MEMBERS[:3]) -> bytes:
    block = ledger.get_block(ledger.height)
    assert block is not None
    digest, root, seq = block.header.consensus_digest(sha256), ledger.state_root, ledger.height
    signatures = tuple(
        (rid, VALIDATORS[rid].sign(checkpoint_signing_bytes(rid, seq, digest, root)))
        for rid in signers
    )
    return encode_checkpoint_certificate(CheckpointCertificate(seq, digest, root, signatures))


@pytest.fixture
def receipt(tmp_path: Path) -> types_pb2.Receipt:
    directory = Directory()
    with Ledger.open(tmp_path / "db", make_genesis(directory)) as ledger:
        target = register_tx(directory, "REG-TARGET", nonce=1)
        for height in range(1, 5):
            envelopes = (
                [target, register_tx(directory, "REG-2", nonce=2)]
                if height == 2
                else [register_tx(directory, f"R{height}", nonce=10 + height)]
            )
            header = ledger.next_header(GENESIS_TIME_MS + height * 1000, envelopes)
            ledger.append_block(header, envelopes, _commit(header))
        tx_id = decode_envelope(target).tx_id
        before = ledger.get_receipt(tx_id)
        assert before is not None and before.result_proof is None  # no checkpoint yet
        ledger.store_checkpoint(4, _checkpoint(ledger))
        after = ledger.get_receipt(tx_id)
        assert after is not None and after.result_proof is not None
        assert [link.height for link in after.result_proof.links] == [2, 3, 4]
        return receipt_pb(after)


def test_a_checkpoint_attests_the_result_and_events(receipt: types_pb2.Receipt) -> None:
    report = verify_receipt(receipt, _validator_set())
    assert report.ok, report.to_dict()
    result = report.checks[-1]
    assert result.name == "result" and "attested by checkpoint 4" in result.detail
    assert receipt.events  # identity.registered


def test_the_result_proof_shows_no_other_transaction(receipt: types_pb2.Receipt) -> None:
    # Block 2 also registers REG-2; the proof for REG-TARGET carries only a digest of that.
    assert b"REG-2" not in receipt.result_proof.SerializeToString()
    assert b"REG-TARGET" in receipt.result_proof.outcome
    assert len(receipt.result_proof.outcome_proof) == 1


def test_a_proof_moved_to_another_position_fails(receipt: types_pb2.Receipt) -> None:
    copy = types_pb2.Receipt()
    copy.CopyFrom(receipt)
    copy.index = 1
    report = verify_receipt(copy, _validator_set())
    assert "result" in [check.name for check in report.failed]


def _tampered(receipt: types_pb2.Receipt, how: str) -> types_pb2.Receipt:
    copy = types_pb2.Receipt()
    copy.CopyFrom(receipt)
    proof = copy.result_proof
    if how == "result code":
        copy.result.code = "NOT_HOLDER"
    elif how == "event":
        copy.events[0].kind = "identity.deactivated"
    elif how == "outcome bytes":
        proof.outcome = proof.outcome.replace(b"OK", b"KO", 1)
    elif how == "outcome path":
        proof.outcome_proof[0] = bytes(32)

    elif how == "later block":
        proof.links[1].write_set_digest = bytes(32)
    elif how == "previous root":
        proof.previous_state_root = bytes(32)
    elif how == "dropped link":
        del proof.links[-1]
    return copy


@pytest.mark.parametrize(
    "how",
    [
        "result code",
        "event",
        "outcome bytes",
        "outcome path",
        "later block",
        "previous root",
        "dropped link",
    ],
)
def test_tampering_anywhere_on_the_chain_is_caught(receipt: types_pb2.Receipt, how: str) -> None:
    report = verify_receipt(_tampered(receipt, how), _validator_set())
    assert not report.ok
    assert [check.name for check in report.failed] == ["result"], report.to_dict()


def test_a_checkpoint_without_a_quorum_attests_nothing(tmp_path: Path) -> None:
    directory = Directory()
    with Ledger.open(tmp_path / "db", make_genesis(directory)) as ledger:
        envelope = register_tx(directory, "REG", nonce=1)
        header = ledger.next_header(GENESIS_TIME_MS + 1000, [envelope])
        ledger.append_block(header, [envelope], _commit(header))
        ledger.store_checkpoint(1, _checkpoint(ledger, signers=MEMBERS[:2]))
        receipt = ledger.get_receipt(decode_envelope(envelope).tx_id)
        assert receipt is not None
        report = verify_receipt(receipt_pb(receipt), _validator_set())
    assert [check.name for check in report.failed] == ["result"]
    assert "quorum" in report.failed[0].detail
