"""Transaction envelopes: encoding, strict decoding, and one precise error per malformation."""

from __future__ import annotations

import hashlib

import msgpack
import pytest

from ibledger.contracts.codec import canonical_encode
from ibledger.node.tx import (
    ENVELOPE_SIZE_MAX,
    SIGNING_DOMAIN,
    TxError,
    decode_envelope,
    encode_envelope,
    encode_payload,
)

from .conftest import CHAIN_ID, Directory


def _payload(**overrides: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "args": {"amount": "100.00"},
        "chain_id": CHAIN_ID,
        "expires_at_ms": 10**13,
        "nonce": 7,
        "op": "bill.issue",
        "sender": "BANK_A",
    }
    payload.update(overrides)
    return payload


def _envelope(payload: dict[str, object]) -> bytes:
    return encode_envelope(canonical_encode(payload), b"\x01" * 64, b"\x02" * 16)


def test_roundtrip_and_tx_id_is_hash_of_payload_bytes(directory: Directory) -> None:
    envelope = directory.tx("BANK_A", "bill.issue", nonce=42, amount="1.00")
    tx = decode_envelope(envelope)
    assert tx.tx_id == hashlib.sha256(tx.payload).digest()
    assert (tx.sender, tx.nonce, tx.operation, dict(tx.args)) == (
        "BANK_A",
        42,
        "bill.issue",
        {"amount": "1.00"},
    )
    assert tx.signing_message == SIGNING_DOMAIN + tx.tx_id
    assert tx.key_id == directory.keys["BANK_A"].key_id


def test_payload_encoding_is_canonical_whatever_the_argument_order() -> None:
    one = encode_payload(
        chain_id="c", sender="s", nonce=1, expires_at_ms=5, operation="o", args={"b": 1, "a": 2}
    )
    two = encode_payload(
        chain_id="c", sender="s", nonce=1, expires_at_ms=5, operation="o", args={"a": 2, "b": 1}
    )
    assert one == two


@pytest.mark.parametrize(
    ("envelope", "code"),
    [
        (b"", "MALFORMED_ENVELOPE"),
        (b"\xc1", "MALFORMED_ENVELOPE"),  # a reserved msgpack byte
        (msgpack.packb({"a": 1}), "MALFORMED_ENVELOPE"),
        (msgpack.packb([1, b"p", b"s"]), "MALFORMED_ENVELOPE"),
        (msgpack.packb([2, b"p", b"s" * 64, b"k" * 16]), "UNSUPPORTED_ENVELOPE_VERSION"),
        (msgpack.packb([True, b"p", b"s" * 64, b"k" * 16]), "UNSUPPORTED_ENVELOPE_VERSION"),
        (msgpack.packb([1, "text", b"s" * 64, b"k" * 16]), "MALFORMED_ENVELOPE"),
        (msgpack.packb([1, b"p", b"", b"k" * 16]), "MALFORMED_ENVELOPE"),
        (msgpack.packb([1, b"p", b"s" * 64, b"k" * 15]), "BAD_KEY_ID"),
        (msgpack.packb([1, b"\xc1", b"s" * 64, b"k" * 16]), "MALFORMED_PAYLOAD"),
        (encode_envelope(msgpack.packb({"op": 1.5}), b"s", b"k" * 16), "MALFORMED_PAYLOAD"),
        (_envelope(_payload(extra=1)), "UNKNOWN_FIELD"),
        (_envelope({k: v for k, v in _payload().items() if k != "nonce"}), "MISSING_FIELD"),
        (_envelope(_payload(nonce=-1)), "BAD_FIELD"),
        (_envelope(_payload(nonce=True)), "BAD_FIELD"),
        (_envelope(_payload(expires_at_ms=0)), "BAD_FIELD"),
        (_envelope(_payload(sender="")), "BAD_FIELD"),
        (_envelope(_payload(sender=" BANK_A")), "BAD_FIELD"),
        (_envelope(_payload(op="x" * 65)), "BAD_FIELD"),
        (_envelope(_payload(args=[1])), "BAD_FIELD"),
        (_envelope(_payload()) + b"\x00", "MALFORMED_ENVELOPE"),
    ],
)
def test_malformed_envelopes_are_rejected_with_a_precise_code(envelope: bytes, code: str) -> None:
    with pytest.raises(TxError) as caught:
        decode_envelope(envelope)
    assert caught.value.code == code, caught.value.message


def test_non_canonical_payload_encoding_is_rejected() -> None:
    payload = _payload()
    unsorted = msgpack.packb(dict(reversed(list(payload.items()))), use_bin_type=True)
    with pytest.raises(TxError) as caught:
        decode_envelope(encode_envelope(unsorted, b"s" * 64, b"k" * 16))
    assert caught.value.code == "MALFORMED_PAYLOAD"


def test_non_canonical_envelope_header_is_rejected() -> None:
    canonical = _envelope(_payload())
    # Re-encode the version as a uint8 (0xcc 0x01) instead of the fixint 0x01.
    assert canonical[1] == 0x01
    widened = canonical[:1] + b"\xcc\x01" + canonical[2:]
    with pytest.raises(TxError) as caught:
        decode_envelope(widened)
    assert caught.value.code == "MALFORMED_ENVELOPE"


def test_size_limit_is_checked_before_parsing() -> None:
    huge = b"\x94" + b"\x00" * (ENVELOPE_SIZE_MAX + 1)
    with pytest.raises(TxError) as caught:
        decode_envelope(huge)
    assert caught.value.code == "ENVELOPE_TOO_LARGE"
    with pytest.raises(TxError) as caught:
        decode_envelope(_envelope(_payload()), size_max=10)
    assert caught.value.code == "ENVELOPE_TOO_LARGE"
