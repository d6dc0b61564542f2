"""Transactions: the signed envelope, its canonical payload, and strict decoding.

Theory of operation
-------------------
A transaction travels as an *envelope*: a msgpack array ``[version, payload, signature, key_id]``
whose payload is itself canonical msgpack bytes (see ``ibledger.contracts.codec``)::

    {"args": {...}, "chain_id": str, "expires_at_ms": int, "nonce": int, "op": str, "sender": str}

* The transaction id is the chain hash of the payload *bytes*.  Protobuf carries envelopes as
  opaque ``bytes`` fields and never re-serializes them, so every node hashes the same bytes.
* The signature covers ``SIGNING_DOMAIN || tx_id``: a fixed-size message (cheap to verify in
  batches) that cannot be confused with a consensus message signed by a validator key.  A query
  is an envelope of the same shape signed under ``QUERY_SIGNING_DOMAIN`` instead, so a captured
  query never verifies as a transaction, nor a transaction as a query.  A read session (the
  viewer proof of block, receipt and event reads) has its own domain, ``READ_SIGNING_DOMAIN``.
* ``key_id`` is the fingerprint of the signer's public key; the node resolves it to a registered
  key of the payload's ``sender`` before verifying (see ``verifier.py``).

Decoding is an edge: it sees bytes from clients and peers, so it checks size first, then
structure, then every field, and raises :class:`TxError` with a stable code naming what was wrong.
The codes are part of the public API (clients match on them).
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack  # type: ignore[import-untyped]

from ibledger.contracts.codec import CodecError, canonical_decode, canonical_encode

from . import clock
from .crypto import KeyPair, get_suite

ENVELOPE_VERSION = 1
SIGNING_DOMAIN = b"ibledger/tx/v1\x00"
QUERY_SIGNING_DOMAIN = b"ibledger/query/v1\x00"
READ_SIGNING_DOMAIN = b"ibledger/read/v1\x00"
READ_SESSION_OP = "read.session"  # a read session's op; its args name the node it is for
READ_SESSION_TTL_MAX_MS = 10 * 60 * 1000
ENVELOPE_SIZE_MAX = 64 * 1024
KEY_ID_SIZE = 16
# A decoded transaction costs 0.9 KiB of memory (a 176-byte no-op) to 1.6 KiB (a 312-byte bill
# issue), and the cache only has to span a transaction's admission, its pre-prepare and its
# execution: seconds apart, 25 s at 1,000 tx/s. 100,000 entries held 90-170 MB for that.
DECODED_ENTRIES_MAX = 25_000
SIGNATURE_SIZE_MAX = 128  # room for suites with longer signatures (SM2 DER is <= 72)
NAME_SIZE_MAX = 64
NONCE_MAX = 2**63 - 1  # the canonical codec stays within signed 64-bit integers
DEFAULT_TTL_MS = 10 * 60 * 1000

PAYLOAD_FIELDS = ("args", "chain_id", "expires_at_ms", "nonce", "op", "sender")
_PAYLOAD_FIELD_SET = frozenset(PAYLOAD_FIELDS)

HashFn = Callable[[bytes], bytes]


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class TxError(ValueError):
    """A transaction rejected before execution; ``code`` is stable, ``message`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Transaction:
    """A structurally valid envelope; its signature is *not* yet verified."""

    envelope: bytes
    payload: bytes
    signature: bytes
    key_id: bytes
    tx_id: bytes
    chain_id: str
    sender: str
    nonce: int
    expires_at_ms: int
    operation: str
    args: Mapping[str, Any]
    signing_message: bytes  # SIGNING_DOMAIN || tx_id, built once: the verifier's hot loop reads it


def encode_payload(
    *,
    chain_id: str,
    sender: str,
    nonce: int,
    expires_at_ms: int,
    operation: str,
    args: Mapping[str, Any],
) -> bytes:
    payload = {
        "args": dict(args),
        "chain_id": chain_id,
        "expires_at_ms": expires_at_ms,
        "nonce": nonce,
        "op": operation,
        "sender": sender,
    }
    _check_payload_fields(payload)
    return canonical_encode(payload)


def encode_envelope(payload: bytes, signature: bytes, key_id: bytes) -> bytes:
    packed: bytes = msgpack.packb([ENVELOPE_VERSION, payload, signature, key_id], use_bin_type=True)
    return packed


def build_transaction(
    keypair: KeyPair,
    *,
    chain_id: str,
    sender: str,
    operation: str,
    args: Mapping[str, Any],
    nonce: int | None = None,
    expires_at_ms: int | None = None,
    hash_fn: HashFn | None = None,
    domain: bytes = SIGNING_DOMAIN,
) -> bytes:
    """Sign and encode one transaction (or, with ``QUERY_SIGNING_DOMAIN``, one query); the
    client-side counterpart of :func:`decode_envelope`.  The transaction id is hashed with the
    signing key's suite unless ``hash_fn`` says otherwise."""
    if hash_fn is None:
        hash_fn = get_suite(keypair.suite).hash
    if nonce is None:
        nonce = int.from_bytes(os.urandom(8), "big") >> 1
    if expires_at_ms is None:
        expires_at_ms = clock.now_ms() + DEFAULT_TTL_MS
    payload = encode_payload(
        chain_id=chain_id,
        sender=sender,
        nonce=nonce,
        expires_at_ms=expires_at_ms,
        operation=operation,
        args=args,
    )
    signature = keypair.sign(domain + hash_fn(payload))
    return encode_envelope(payload, signature, keypair.key_id)


def decode_envelope(
    data: bytes,
    *,
    size_max: int = ENVELOPE_SIZE_MAX,
    hash_fn: HashFn = sha256,
    domain: bytes = SIGNING_DOMAIN,
) -> Transaction:
    """Decode and validate envelope bytes from outside; raises TxError with a precise code."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TxError("MALFORMED_ENVELOPE", "an envelope must be bytes")
    data = bytes(data)
    if len(data) > size_max:
        raise TxError(
            "ENVELOPE_TOO_LARGE", f"the envelope is {len(data)} bytes; the limit is {size_max}"
        )
    if not data:
        raise TxError("MALFORMED_ENVELOPE", "the envelope is empty")
    try:
        fields = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            max_bin_len=size_max,
            max_str_len=0,
            max_array_len=4,
            max_map_len=0,
            max_ext_len=0,
        )
    except msgpack.ExtraData:
        raise TxError("MALFORMED_ENVELOPE", "trailing bytes after the envelope") from None
    except (ValueError, msgpack.UnpackException) as exc:
        raise TxError("MALFORMED_ENVELOPE", f"the envelope is not valid msgpack ({exc})") from None
    if not isinstance(fields, list) or len(fields) != 4:
        raise TxError("MALFORMED_ENVELOPE", "an envelope is an array of 4 fields")
    version, payload, signature, key_id = fields
    if version != ENVELOPE_VERSION or isinstance(version, bool):
        raise TxError(
            "UNSUPPORTED_ENVELOPE_VERSION",
            f"envelope version {version!r} is not supported (expected {ENVELOPE_VERSION})",
        )
    if not isinstance(payload, bytes) or not payload:
        raise TxError("MALFORMED_ENVELOPE", "the payload must be non-empty bytes")
    if not isinstance(signature, bytes) or not 0 < len(signature) <= SIGNATURE_SIZE_MAX:
        raise TxError("MALFORMED_ENVELOPE", "the signature must be 1 to 128 bytes")
    if not isinstance(key_id, bytes) or len(key_id) != KEY_ID_SIZE:
        raise TxError("BAD_KEY_ID", f"the signer key id must be {KEY_ID_SIZE} bytes")
    if encode_envelope(payload, signature, key_id) != data:
        # e.g. a str8 header where fixstr fits: one logical envelope must have one encoding.
        raise TxError("MALFORMED_ENVELOPE", "the envelope is not canonically encoded")
    try:
        decoded = canonical_decode(payload)
    except CodecError as exc:
        raise TxError("MALFORMED_PAYLOAD", f"the payload is not canonical msgpack: {exc}") from None
    if not isinstance(decoded, dict):
        raise TxError("MALFORMED_PAYLOAD", "the payload must be a map")
    _check_payload_fields(decoded)
    tx_id = hash_fn(payload)
    return Transaction(
        envelope=data,
        payload=payload,
        signature=signature,
        key_id=key_id,
        tx_id=tx_id,
        chain_id=decoded["chain_id"],
        sender=decoded["sender"],
        nonce=decoded["nonce"],
        expires_at_ms=decoded["expires_at_ms"],
        operation=decoded["op"],
        args=decoded["args"],
        signing_message=domain + tx_id,
    )


class EnvelopeDecoder:
    """``decode_envelope`` with a bounded memory of envelopes already decoded.

    A node sees each transaction several times (admission, the pre-prepare that carries it, the
    block that executes it); decoding is pure, so the second and third time cost a look-up.
    Failures are not remembered: a malformed envelope is cheap to reject again and must not
    crowd out good ones.
    """

    def __init__(
        self,
        *,
        size_max: int = ENVELOPE_SIZE_MAX,
        hash_fn: HashFn = sha256,
        entries_max: int = DECODED_ENTRIES_MAX,
    ) -> None:
        self._size_max = size_max
        self._hash_fn = hash_fn
        self._entries_max = entries_max
        self._decoded: OrderedDict[bytes, Transaction] = OrderedDict()
        self.hits = 0

    def decode(self, data: bytes) -> Transaction:
        cached = self._decoded.get(data) if isinstance(data, bytes) else None
        if cached is not None:
            self.hits += 1
            return cached
        tx = decode_envelope(data, size_max=self._size_max, hash_fn=self._hash_fn)
        self._decoded[tx.envelope] = tx
        if len(self._decoded) > self._entries_max:
            self._decoded.popitem(last=False)
        return tx


def _check_payload_fields(payload: Mapping[str, Any]) -> None:
    # Every good payload has exactly the known fields: one comparison instead of two set
    # differences per transaction; the differences only to say what is wrong.
    if payload.keys() != _PAYLOAD_FIELD_SET:
        unknown = sorted(set(payload) - _PAYLOAD_FIELD_SET)
        if unknown:
            names = ", ".join(map(str, unknown))
            raise TxError("UNKNOWN_FIELD", f"unknown payload field(s): {names}")
        missing = [name for name in PAYLOAD_FIELDS if name not in payload]
        if missing:
            raise TxError("MISSING_FIELD", f"missing payload field(s): {', '.join(missing)}")
    for name in ("chain_id", "sender", "op"):
        value = payload[name]
        if not isinstance(value, str) or not 0 < len(value) <= NAME_SIZE_MAX:
            raise TxError(
                "BAD_FIELD", f"{name} must be a string of 1 to {NAME_SIZE_MAX} characters"
            )
        if not value.isprintable() or value.strip() != value:
            raise TxError("BAD_FIELD", f"{name} must be printable with no surrounding spaces")
    for name, low, high in (("nonce", 0, NONCE_MAX), ("expires_at_ms", 1, 2**63 - 1)):
        value = payload[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise TxError("BAD_FIELD", f"{name} must be an integer in [{low}, {high}]")
    if not isinstance(payload["args"], dict):
        raise TxError("BAD_FIELD", "args must be a map")
