"""Result proofs: a receipt's result, events and block chain are attested by a stable checkpoint
certificate through the state-root chain; tampering with any link is caught offline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ibledger.cli.client_verify import ValidatorSet, verify_receipt
from ibledger.consensus import (
    CheckpointCertificate,
    Commit,
    CommitCertificate,
    HashFn,
    encode_checkpoint_certificate,
    encode_commit_certificate,
    signing_bytes,
)
from ibledger.consensus.codec import checkpoint_signing_bytes
from ibledger.node.api import receipt_pb
from ibledger.node.blocks import BlockHeader
from ibledger.node.crypto import SUITE_NAMES, KeyPair, generate_keypair, get_suite
from ibledger.node.ledger import Ledger
from ibledger.node.tx import decode_envelope
from ibledger.proto import types_pb2

from ..node.conftest import GENESIS_TIME_MS, Directory, make_genesis, register_tx

MEMBERS = ("node0", "node1", "node2", "node3")


@dataclass(frozen=True)
class Validators:
    """The four validators of a test chain under one crypto suite."""

    suite: str
    keys: dict[str, KeyPair]

    @property
    def hash_fn(self) -> HashFn:
        return get_suite(self.suite).hash

    def validator_set(self) -> ValidatorSet:
        return ValidatorSet.from_genesis(
            {
                "crypto_suite": self.suite,
                "validators": [
                    {
                        "id": rid,
                        "public_key": self.keys[rid].public_key.hex(),
                        "api_address": f"127.0.0.1:{7000 + index}",
                        "peer_address": f"127.0.0.1:{7100 + index}",
                    }
                    for index, rid in enumerate(MEMBERS)
                ],
            }
        )

    def commit(self, header: BlockHeader) -> bytes:
        digest = header.consensus_digest(self.hash_fn)
        commit = Commit(0, header.height, digest)
        signatures = tuple(
            (rid, self.keys[rid].sign(signing_bytes(commit, rid))) for rid in MEMBERS[:3]
        )
        return encode_commit_certificate(CommitCertificate(0, header.height, digest, signatures))

    def checkpoint(self, ledger: Ledger, signers: tuple[str, ...] = MEMBERS[:3]) -> bytes:
        block = ledger.get_block(ledger.height)
        assert block is not None
        digest = block.header.consensus_digest(self.hash_fn)
        root, seq = ledger.state_root, ledger.height
        signatures = tuple(
            (rid, self.keys[rid].sign(checkpoint_signing_bytes(rid, seq, digest, root)))
            for rid in signers
        )
        return encode_checkpoint_certificate(CheckpointCertificate(seq, digest, root, signatures))


@pytest.fixture(scope="module", params=SUITE_NAMES)
def validators(request: pytest.FixtureRequest) -> Validators:
    """Every test here runs once per crypto suite: proofs hash and sign with the chain's."""
    suite = str(request.param)
    return Validators(suite, {rid: generate_keypair(suite) for rid in MEMBERS})


@pytest.fixture
def receipt(tmp_path: Path, validators: Validators) -> types_pb2.Receipt:
    directory = Directory(suite=validators.suite)
    with Ledger.open(tmp_path / "db", make_genesis(directory)) as ledger:
        target = register_tx(directory, "REG-TARGET", nonce=1)
        for height in range(1, 5):
            envelopes = (
                [target, register_tx(directory, "REG-2", nonce=2)]
                if height == 2
                else [register_tx(directory, f"R{height}", nonce=10 + height)]
            )
            header = ledger.next_header(GENESIS_TIME_MS + height * 1000, envelopes)
            ledger.append_block(header, envelopes, validators.commit(header))
        tx_id = decode_envelope(target, hash_fn=validators.hash_fn).tx_id
        before = ledger.get_receipt(tx_id)
        assert before is not None and before.result_proof is None  # no checkpoint yet
        ledger.store_checkpoint(4, validators.checkpoint(ledger))
        after = ledger.get_receipt(tx_id)
        assert after is not None and after.result_proof is not None
        assert [link.height for link in after.result_proof.links] == [2, 3, 4]
        return receipt_pb(after)


def test_a_checkpoint_attests_the_result_and_events(
    receipt: types_pb2.Receipt, validators: Validators
) -> None:
    report = verify_receipt(receipt, validators.validator_set())
    assert report.suite == validators.suite
    assert report.ok, report.to_dict()
    result = report.checks[-1]
    assert result.name == "result" and "attested by checkpoint 4" in result.detail
    assert receipt.events  # identity.registered


def test_the_result_proof_shows_no_other_transaction(receipt: types_pb2.Receipt) -> None:
    # Block 2 also registers REG-2; the proof for REG-TARGET carries only a digest of that.
    assert b"REG-2" not in receipt.result_proof.SerializeToString()
    assert b"REG-TARGET" in receipt.result_proof.outcome
    assert len(receipt.result_proof.outcome_proof) == 1


def test_a_proof_moved_to_another_position_fails(
    receipt: types_pb2.Receipt, validators: Validators
) -> None:
    copy = types_pb2.Receipt()
    copy.CopyFrom(receipt)
    copy.index = 1
    report = verify_receipt(copy, validators.validator_set())
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
def test_tampering_anywhere_on_the_chain_is_caught(
    receipt: types_pb2.Receipt, validators: Validators, how: str
) -> None:
    report = verify_receipt(_tampered(receipt, how), validators.validator_set())
    assert not report.ok
    assert [check.name for check in report.failed] == ["result"], report.to_dict()


def test_a_checkpoint_without_a_quorum_attests_nothing(
    tmp_path: Path, validators: Validators
) -> None:
    directory = Directory(suite=validators.suite)
    with Ledger.open(tmp_path / "db", make_genesis(directory)) as ledger:
        envelope = register_tx(directory, "REG", nonce=1)
        header = ledger.next_header(GENESIS_TIME_MS + 1000, [envelope])
        ledger.append_block(header, [envelope], validators.commit(header))
        ledger.store_checkpoint(1, validators.checkpoint(ledger, signers=MEMBERS[:2]))
        receipt = ledger.get_receipt(decode_envelope(envelope, hash_fn=validators.hash_fn).tx_id)
        assert receipt is not None
        report = verify_receipt(receipt_pb(receipt), validators.validator_set())
    assert [check.name for check in report.failed] == ["result"]
    assert "quorum" in report.failed[0].detail
