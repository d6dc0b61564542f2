"""Batched verifier: verdicts per envelope, the verified cache, and the distinct rejection codes
for every way a signed transaction can be wrong."""

from __future__ import annotations

import msgpack
import pytest

from ibledger.node.crypto import generate_keypair
from ibledger.node.tx import (
    ENVELOPE_SIZE_MAX,
    TxError,
    encode_envelope,
)
from ibledger.node.verifier import BatchVerifier, SignerKey, Verdict

from .conftest import Directory, non_canonical, weak_public_key


def _admit(verifier: BatchVerifier, envelope: bytes, directory: Directory) -> str:
    """Decode then verify, the way admission does; the resulting code."""
    try:
        tx = directory.decode(envelope)
    except TxError as exc:
        return exc.code
    return verifier.verify([tx])[0].code


def _flip_nonce_byte(envelope: bytes) -> bytes:
    _version, payload, signature, key_id = msgpack.unpackb(envelope)
    position = payload.index(b"\xcf") + 8  # last byte of the uint64 nonce: still canonical
    tampered = payload[:position] + bytes([payload[position] ^ 0x01]) + payload[position + 1 :]
    return encode_envelope(tampered, signature, key_id)


def _with_signature(envelope: bytes, signature: bytes) -> bytes:
    _, payload, _, key_id = msgpack.unpackb(envelope)
    return encode_envelope(payload, signature, key_id)


def test_each_forgery_and_malformation_gets_its_own_code(directory: Directory) -> None:
    weak = directory.add("WEAK_CORP")
    weak_key = weak_public_key(directory.suite)
    directory.records[weak.key_id] = SignerKey("WEAK_CORP", weak_key)
    good = directory.tx("BANK_A", nonce=2**62 + 5)
    _, _, signature, _ = msgpack.unpackb(good)
    # BANK_A signs, but presents BANK_B's key id.
    a_signs = directory.keys["BANK_A"]
    _, payload, a_signature, _ = msgpack.unpackb(good)
    presented_with_b = encode_envelope(payload, a_signature, directory.keys["BANK_B"].key_id)

    cases = {
        "valid": good,
        "another's key id": presented_with_b,
        "flipped payload byte": _flip_nonce_byte(good),
        "small-order public key": directory.tx("WEAK_CORP"),
        "non-canonical S": _with_signature(good, non_canonical(directory.suite, signature)),
        "truncated envelope": good[:-7],
        "oversized envelope": good + b"\x00" * ENVELOPE_SIZE_MAX,
        "unknown signer": directory.tx("BANK_A").replace(a_signs.key_id, b"\x09" * 16),
    }
    with BatchVerifier(directory.crypto, directory.resolve, workers=2) as verifier:
        codes = {name: _admit(verifier, envelope, directory) for name, envelope in cases.items()}
    assert codes == {
        "valid": "OK",
        "another's key id": "SIGNER_NOT_SENDER",
        "flipped payload byte": "BAD_SIGNATURE",
        "small-order public key": "WEAK_PUBLIC_KEY",
        "non-canonical S": "NON_CANONICAL_SIGNATURE",
        "truncated envelope": "MALFORMED_ENVELOPE",
        "oversized envelope": "ENVELOPE_TOO_LARGE",
        "unknown signer": "UNKNOWN_SIGNER",
    }
    assert len(set(codes.values())) == len(codes)


def test_batch_results_are_per_envelope_and_in_order(directory: Directory) -> None:
    envelopes = [directory.tx("BANK_A" if i % 2 else "BANK_B", nonce=i) for i in range(200)]
    bad = {17, 101, 150}
    txs = [
        directory.decode(_flip_nonce_byte(e) if i in bad else e) for i, e in enumerate(envelopes)
    ]
    with BatchVerifier(directory.crypto, directory.resolve, workers=2) as verifier:
        verdicts = verifier.verify(txs)
    assert [i for i, verdict in enumerate(verdicts) if not verdict.ok] == sorted(bad)
    assert all(verdicts[i].code == "BAD_SIGNATURE" for i in bad)


def test_verified_envelopes_are_not_verified_twice(directory: Directory) -> None:
    calls: list[int] = []

    class CountingSuite:
        def __getattr__(self, name: str) -> object:
            return getattr(directory.crypto, name)

        def verify_many(self, items: list[tuple[bytes, bytes, bytes]]) -> list[bool]:
            calls.append(len(items))
            return directory.crypto.verify_many(items)

    txs = [directory.decode(directory.tx("BANK_A", nonce=i)) for i in range(50)]
    with BatchVerifier(CountingSuite(), directory.resolve, workers=1) as verifier:  # type: ignore[arg-type]
        assert all(v.ok for v in verifier.verify(txs))
        assert sum(calls) == 50
        assert all(v.ok for v in verifier.verify(txs[:30]))  # e.g. inside a pre-prepare
        assert sum(calls) == 50
        assert verifier.stats.cache_hits == 30
        assert verifier.is_cached(txs[0])


def test_cache_does_not_vouch_for_different_signature_bytes(directory: Directory) -> None:
    envelope = directory.tx("BANK_A")
    tx = directory.decode(envelope)
    _, _, signature, _ = msgpack.unpackb(envelope)
    forged = directory.decode(_with_signature(envelope, bytes([signature[0] ^ 1]) + signature[1:]))
    assert forged.tx_id == tx.tx_id
    with BatchVerifier(directory.crypto, directory.resolve, workers=1) as verifier:
        assert verifier.verify([tx]) == [Verdict("OK")]
        assert verifier.verify([forged])[0].code == "BAD_SIGNATURE"


def test_cache_hit_still_checks_the_key_is_active(directory: Directory) -> None:
    tx = directory.decode(directory.tx("BANK_A"))
    with BatchVerifier(directory.crypto, directory.resolve, workers=1) as verifier:
        assert verifier.verify([tx])[0].ok
        key = directory.records[tx.key_id]
        directory.records[tx.key_id] = SignerKey(key.participant, key.public_key, active=False)
        assert verifier.verify([tx])[0].code == "KEY_REVOKED"


def test_cache_is_bounded(directory: Directory) -> None:
    txs = [directory.decode(directory.tx("BANK_A", nonce=i)) for i in range(40)]
    with BatchVerifier(
        directory.crypto, directory.resolve, workers=1, cache_size_max=10
    ) as verifier:
        verifier.verify(txs)
        assert sum(verifier.is_cached(tx) for tx in txs) == 10
        assert verifier.is_cached(txs[-1]) and not verifier.is_cached(txs[0])


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_worker_counts_agree(directory: Directory, workers: int) -> None:
    other = generate_keypair(directory.suite)
    txs = [directory.decode(directory.tx("BANK_A", nonce=i)) for i in range(100)]
    txs.append(
        directory.decode(
            directory.tx("BANK_A", nonce=999).replace(directory.keys["BANK_A"].key_id, other.key_id)
        )
    )
    with BatchVerifier(directory.crypto, directory.resolve, workers=workers) as verifier:
        codes = [v.code for v in verifier.verify(txs)]
    assert codes == ["OK"] * 100 + ["UNKNOWN_SIGNER"]
