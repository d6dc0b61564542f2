"""Offline receipt and block verification: a good receipt passes every check; a tampered proof,
header, envelope or commit certificate fails the check that covers it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ibledger.cli.client import ClientError, TxReceipt
from ibledger.cli.client_verify import ValidatorSet, verify_block, verify_receipt
from ibledger.consensus import (
    Commit,
    CommitCertificate,
    decode_commit_certificate,
    encode_commit_certificate,
    signing_bytes,
)
from ibledger.contracts import canonical_decode, canonical_encode
from ibledger.node.crypto import generate_keypair, get_suite
from ibledger.proto import types_pb2

from .conftest import Network

Tamper = Callable[[types_pb2.Receipt], None]


def _receipt(network: Network, transactions: int = 3) -> TxReceipt:
    """A receipt for the middle transaction of a multi-transaction block."""
    with network.client("ADMIN") as client:
        results = client.submit_many(
            [
                ("identity.update_details", {"participant": "CIB", "name": f"Bank {i}"})
                for i in range(transactions)
            ]
        )
    receipt = results[1].receipt
    assert receipt is not None and receipt.header.tx_count == transactions
    return receipt


def _validators(network: Network) -> ValidatorSet:
    return ValidatorSet.from_genesis(network.genesis)


def _copy(receipt: TxReceipt) -> types_pb2.Receipt:
    copy = types_pb2.Receipt()
    copy.CopyFrom(receipt.proto)
    return copy


def _header_with(pb: types_pb2.Receipt, **changes: object) -> None:
    header = canonical_decode(pb.header.encoded)
    header.update(changes)
    pb.header.encoded = canonical_encode(header)


def _rehash(pb: types_pb2.Receipt) -> None:
    """Make the block hash agree with a tampered header (a consistent liar)."""
    pb.block_hash = get_suite("ed25519-sha256").hash(b"ibledger/header/v1" + pb.header.encoded)


def _recertify(
    pb: types_pb2.Receipt,
    network: Network,
    signers: list[str],
    keys: dict[str, object] | None = None,
) -> None:
    cert = decode_commit_certificate(pb.certificate)
    commit = Commit(cert.view, cert.seq, cert.digest)
    keyring = keys or network.validator_keys
    signatures = tuple(
        (rid, keyring[rid].sign(signing_bytes(commit, rid)))  # type: ignore[attr-defined]
        for rid in signers
    )
    pb.certificate = encode_commit_certificate(
        CommitCertificate(cert.view, cert.seq, cert.digest, signatures)
    )


def test_a_good_receipt_verifies_every_check(network: Network) -> None:
    receipt = _receipt(network)
    report = verify_receipt(receipt, _validators(network))
    assert report.ok, report.to_dict()
    assert [check.name for check in report.checks] == [
        "envelope",
        "header",
        "inclusion",
        "certificate",
        "result",
    ]
    # No checkpoint covers the block on the fake node: the result is reported as not attested.
    assert "not attested yet" in report.checks[-1].detail
    assert "3 of 4 validators signed (quorum 3)" in report.checks[3].detail


def _flip(data: bytes, index: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


def _tamper_proof(pb: types_pb2.Receipt) -> None:
    pb.proof[0] = _flip(pb.proof[0])


def _tamper_index(pb: types_pb2.Receipt) -> None:
    pb.index = 2


def _tamper_key_id(pb: types_pb2.Receipt) -> None:
    # The key id is outside the payload, so the tx id still matches; the request id does not.
    pb.envelope = _flip(pb.envelope, len(pb.envelope) - 1)


def _tamper_payload(pb: types_pb2.Receipt) -> None:
    marker = b"Bank 1"
    at = pb.envelope.index(marker)
    pb.envelope = pb.envelope[:at] + b"Bank 9" + pb.envelope[at + len(marker) :]


def _tamper_header_time(pb: types_pb2.Receipt) -> None:
    _header_with(pb, timestamp_ms=1)


def _tamper_header_root_rehashed(pb: types_pb2.Receipt) -> None:
    _header_with(pb, txs_root=bytes(32))
    _rehash(pb)


def _tamper_proposal_rehashed(pb: types_pb2.Receipt) -> None:
    header = canonical_decode(pb.header.encoded)
    _header_with(pb, proposal_ms=header["proposal_ms"] + 1)
    _rehash(pb)


def _tamper_block_hash(pb: types_pb2.Receipt) -> None:
    pb.block_hash = _flip(pb.block_hash)


@pytest.mark.parametrize(
    ("tamper", "failing"),
    [
        (_tamper_proof, {"inclusion"}),
        (_tamper_index, {"inclusion"}),
        (_tamper_key_id, {"inclusion"}),
        (_tamper_payload, {"envelope", "inclusion"}),
        (_tamper_header_time, {"header"}),
        (_tamper_block_hash, {"header"}),
        # A consistent liar re-hashes its altered header: the certificate no longer matches.
        (_tamper_header_root_rehashed, {"inclusion", "certificate"}),
        (_tamper_proposal_rehashed, {"certificate"}),
    ],
)
def test_tampered_receipts_fail_the_check_that_covers_them(
    network: Network, tamper: Tamper, failing: set[str]
) -> None:
    pb = _copy(_receipt(network))
    tamper(pb)
    report = verify_receipt(pb, _validators(network))
    assert not report.ok
    assert {check.name for check in report.failed} == failing, report.to_dict()


def test_certificates_need_a_quorum_of_distinct_genesis_validators(network: Network) -> None:
    good = _receipt(network)
    validators = _validators(network)

    def certificate_detail(mutate: Callable[[types_pb2.Receipt], None]) -> str:
        pb = _copy(good)
        mutate(pb)
        report = verify_receipt(pb, validators)
        assert [check.name for check in report.failed] == ["certificate"], report.to_dict()
        return report.failed[0].detail

    # All four validators: still fine.
    pb = _copy(good)
    _recertify(pb, network, ["v0", "v1", "v2", "v3"])
    assert verify_receipt(pb, validators).ok

    assert "2 of 4" in certificate_detail(lambda pb: _recertify(pb, network, ["v0", "v1"]))
    assert "v0 signed twice" in certificate_detail(
        lambda pb: _recertify(pb, network, ["v0", "v0", "v1"])
    )
    strangers = {rid: generate_keypair() for rid in ("v0", "v1", "v2")}
    assert "bad signature from v0" in certificate_detail(
        lambda pb: _recertify(pb, network, ["v0", "v1", "v2"], strangers)  # type: ignore[arg-type]
    )
    outsider = {"x9": generate_keypair(), **network.validator_keys}
    assert "x9 is not a validator" in certificate_detail(
        lambda pb: _recertify(pb, network, ["v0", "v1", "x9"], outsider)  # type: ignore[arg-type]
    )

    def flip_signature(pb: types_pb2.Receipt) -> None:
        cert = decode_commit_certificate(pb.certificate)
        (rid, sig), *rest = cert.signatures
        pb.certificate = encode_commit_certificate(
            CommitCertificate(cert.view, cert.seq, cert.digest, ((rid, _flip(sig, 5)), *rest))
        )

    assert "bad signature from v0" in certificate_detail(flip_signature)
    assert "does not decode" in certificate_detail(lambda pb: setattr(pb, "certificate", b"\x93"))
    assert "no commit certificate" in certificate_detail(lambda pb: pb.ClearField("certificate"))


def test_a_receipt_for_another_transaction_is_refused(network: Network) -> None:
    receipt = _receipt(network)
    report = verify_receipt(receipt, _validators(network), expected_tx_id=bytes(32))
    assert [check.name for check in report.failed] == ["envelope"]


def test_blocks_verify_and_tampered_blocks_do_not(network: Network) -> None:
    receipt = _receipt(network)
    validators = _validators(network)
    with network.client(None) as client:
        block = client.block(receipt.height)
        genesis_block = client.block(0)
    assert verify_block(block, validators).ok
    assert verify_block(genesis_block, validators).ok
    pb = types_pb2.Block()
    pb.CopyFrom(block.proto)
    del pb.txs[0]
    report = verify_block(pb, validators)
    assert [check.name for check in report.failed] == ["transactions"]


def test_validator_sets_come_from_genesis_only(network: Network) -> None:
    validators = _validators(network)
    assert validators.members == ("v0", "v1", "v2", "v3") and validators.quorum == 3
    with pytest.raises(ClientError) as none:
        ValidatorSet.from_genesis({k: v for k, v in network.genesis.items() if k != "validators"})
    assert none.value.code == "GENESIS_INVALID"
    broken = dict(network.genesis, validators=[{"id": "v0", "public_key": "00" * 32}])
    with pytest.raises(ClientError):
        ValidatorSet.from_genesis(broken)
