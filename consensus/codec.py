"""Canonical bytes for signing, and the strict wire codec for consensus messages.

Theory of operation
-------------------
PBFT messages are authenticated by their sender (Castro-Liskov OSDI'99 section 4.1, TOCS 2002
section 2.1); certificates are only forwardable if every replica rebuilds exactly the bytes that
were signed. `signing_bytes(message, sender)` is therefore a pure function of the message's signed
fields: a msgpack array with a fixed field order, a domain tag and the message kind, and the
sender id (so a signature can never be re-attributed). Attachments (block bodies) are excluded;
they are bound by digest.

The wire format is a msgpack array `[version, kind, sender, signature, *fields]`. Decoding is
strict: exact array lengths, exact types (no bool for int, no str for bytes), bounded lengths,
digests of exactly 32 bytes, and any violation raises `MessageError`; nothing from the peer ever
reaches the replica as an unchecked structure. Canonical encodings are re-derived from the decoded
values, so a peer cannot smuggle a second encoding of the same signed content.
"""

from __future__ import annotations

from typing import Any, NoReturn

import msgpack  # type: ignore[import-untyped]

from .messages import (
    DIGEST_BYTES,
    Block,
    BlockBody,
    BlockRequest,
    Checkpoint,
    CheckpointCertificate,
    Commit,
    CommitCertificate,
    CommittedProof,
    HashFn,
    Message,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    RequestForward,
    Signature,
    SignedMessage,
    Status,
    ViewChange,
    sha256,
)

WIRE_VERSION = 2
SIGNING_DOMAIN = "ibledger.pbft.v1"

KIND_PRE_PREPARE = 1
KIND_PREPARE = 2
KIND_COMMIT = 3
KIND_CHECKPOINT = 4
KIND_VIEW_CHANGE = 5
KIND_NEW_VIEW = 6
KIND_COMMITTED_PROOF = 7
KIND_REQUEST_FORWARD = 8
KIND_STATUS = 9
KIND_BLOCK_REQUEST = 10
KIND_BLOCK_BODY = 11
KIND_LAST = KIND_BLOCK_BODY

INT_MAX = 2**63 - 1
REPLICA_ID_CHARS_MAX = 128
SIGNATURE_BYTES_MAX = 256
STATE_ROOT_BYTES_MAX = 64
REQUESTS_PER_MESSAGE_MAX = 1 << 16
SIGNATURES_MAX = 1024
CERTIFICATES_MAX = 1 << 14
MESSAGE_BYTES_MAX = 64 * 1024 * 1024


class MessageError(ValueError):
    """Peer bytes or a peer structure that is not a well-formed consensus message."""


def _pack(obj: object) -> bytes:
    data: bytes = msgpack.packb(obj, use_bin_type=True)
    return data


# ---------------------------------------------------------------------------------------------
# Canonical signing bytes


def _cert_sigs(sigs: tuple[Signature, ...]) -> list[list[object]]:
    return [[rid, sig] for rid, sig in sigs]


def _checkpoint_cert_fields(c: CheckpointCertificate) -> list[object]:
    return [c.seq, c.block_digest, c.state_root, _cert_sigs(c.signatures)]


def _prepared_cert_fields(p: PreparedCertificate) -> list[object]:
    return [p.view, p.seq, p.digest, p.pre_prepare_signature, _cert_sigs(p.prepares)]


def _commit_cert_fields(c: CommitCertificate) -> list[object]:
    return [c.view, c.seq, c.digest, _cert_sigs(c.signatures)]


def vote_signing_bytes(kind: int, sender: str, view: int, seq: int, digest: bytes) -> bytes:
    """Signing bytes of PRE-PREPARE, PREPARE and COMMIT without building the message."""
    return _pack([SIGNING_DOMAIN, kind, sender, view, seq, digest])


def checkpoint_signing_bytes(
    sender: str, seq: int, block_digest: bytes, state_root: bytes
) -> bytes:
    return _pack([SIGNING_DOMAIN, KIND_CHECKPOINT, sender, seq, block_digest, state_root])


def signing_bytes(message: Message, sender: str) -> bytes:
    """The exact bytes `sender` signs for `message` (attachments excluded)."""
    match message:
        case PrePrepare(view=v, seq=s, digest=d):
            return vote_signing_bytes(KIND_PRE_PREPARE, sender, v, s, d)
        case Prepare(view=v, seq=s, digest=d):
            return vote_signing_bytes(KIND_PREPARE, sender, v, s, d)
        case Commit(view=v, seq=s, digest=d):
            return vote_signing_bytes(KIND_COMMIT, sender, v, s, d)
        case Checkpoint(seq=s, block_digest=d, state_root=r):
            return checkpoint_signing_bytes(sender, s, d, r)
        case ViewChange(view=v, checkpoint=c, prepared=p):
            return _pack(
                [
                    SIGNING_DOMAIN,
                    KIND_VIEW_CHANGE,
                    sender,
                    v,
                    _checkpoint_cert_fields(c),
                    [_prepared_cert_fields(x) for x in p],
                ]
            )
        case NewView(view=v, view_changes=vcs, pre_prepares=pps):
            return _pack(
                [
                    SIGNING_DOMAIN,
                    KIND_NEW_VIEW,
                    sender,
                    v,
                    [[m.sender, m.signature] for m in vcs],
                    [[_vote_fields(m.message), m.signature] for m in pps],
                ]
            )
        case CommittedProof(block=b, certificate=c):
            return _pack(
                [SIGNING_DOMAIN, KIND_COMMITTED_PROOF, sender, b.digest, _commit_cert_fields(c)]
            )
        case RequestForward(requests=r):
            return _pack([SIGNING_DOMAIN, KIND_REQUEST_FORWARD, sender, list(r)])
        case Status(view=v, view_active=a, last_executed=e, stable_seq=s):
            return _pack([SIGNING_DOMAIN, KIND_STATUS, sender, v, a, e, s])
        case BlockRequest(digests=ds):
            return _pack([SIGNING_DOMAIN, KIND_BLOCK_REQUEST, sender, list(ds)])
        case BlockBody(digest=d):
            return _pack([SIGNING_DOMAIN, KIND_BLOCK_BODY, sender, d])
    raise TypeError(f"not a consensus message: {type(message).__name__}")


def _vote_fields(m: Message) -> list[object]:
    if isinstance(m, PrePrepare):
        return [m.view, m.seq, m.digest]
    return []


# ---------------------------------------------------------------------------------------------
# Wire encoding


def _block_fields(b: Block) -> list[object]:
    return [b.seq, b.timestamp_ms, list(b.requests)]


def _message_fields(m: Message) -> tuple[int, list[object]]:
    match m:
        case PrePrepare(view=v, seq=s, digest=d, block=b):
            return KIND_PRE_PREPARE, [v, s, d, None if b is None else _block_fields(b)]
        case Prepare(view=v, seq=s, digest=d):
            return KIND_PREPARE, [v, s, d]
        case Commit(view=v, seq=s, digest=d):
            return KIND_COMMIT, [v, s, d]
        case Checkpoint(seq=s, block_digest=d, state_root=r):
            return KIND_CHECKPOINT, [s, d, r]
        case ViewChange(view=v, checkpoint=c, prepared=p):
            return KIND_VIEW_CHANGE, [
                v,
                _checkpoint_cert_fields(c),
                [_prepared_cert_fields(x) for x in p],
            ]
        case NewView(view=v, view_changes=vcs, pre_prepares=pps):
            return KIND_NEW_VIEW, [
                v,
                [_signed_fields(x) for x in vcs],
                [_signed_fields(x) for x in pps],
            ]
        case CommittedProof(block=b, certificate=c):
            return KIND_COMMITTED_PROOF, [_block_fields(b), _commit_cert_fields(c)]
        case RequestForward(requests=r):
            return KIND_REQUEST_FORWARD, [list(r)]
        case Status(view=v, view_active=a, last_executed=e, stable_seq=s):
            return KIND_STATUS, [v, a, e, s]
        case BlockRequest(digests=ds):
            return KIND_BLOCK_REQUEST, [list(ds)]
        case BlockBody(digest=d, block=b):
            return KIND_BLOCK_BODY, [d, None if b is None else _block_fields(b)]
    raise TypeError(f"not a consensus message: {type(m).__name__}")


def _signed_fields(sm: SignedMessage) -> list[object]:
    kind, fields = _message_fields(sm.message)
    return [WIRE_VERSION, kind, sm.sender, sm.signature, *fields]


def encode_message(sm: SignedMessage) -> bytes:
    """Wire bytes of a signed message (attachments included)."""
    return _pack(_signed_fields(sm))


def encode_block(block: Block) -> bytes:
    return _pack(_block_fields(block))


def encode_commit_certificate(cert: CommitCertificate) -> bytes:
    return _pack(_commit_cert_fields(cert))


def encode_checkpoint_certificate(cert: CheckpointCertificate) -> bytes:
    return _pack(_checkpoint_cert_fields(cert))


def encode_prepared_certificate(cert: PreparedCertificate) -> bytes:
    return _pack(_prepared_cert_fields(cert))


# ---------------------------------------------------------------------------------------------
# Strict decoding


def _fail(what: str) -> NoReturn:
    raise MessageError(what)


def _int(v: Any, what: str, lo: int = 0, hi: int = INT_MAX) -> int:
    if type(v) is not int or not lo <= v <= hi:
        _fail(f"{what}: expected int in [{lo}, {hi}]")
    return v


def _bool(v: Any, what: str) -> bool:
    if type(v) is not bool:
        _fail(f"{what}: expected bool")
    return v


def _bytes(v: Any, what: str, max_len: int, exact: int | None = None) -> bytes:
    if type(v) is not bytes:
        _fail(f"{what}: expected bytes")
    if exact is not None and len(v) != exact:
        _fail(f"{what}: expected {exact} bytes")
    if len(v) > max_len:
        _fail(f"{what}: longer than {max_len} bytes")
    return v


def _digest(v: Any, what: str) -> bytes:
    return _bytes(v, what, DIGEST_BYTES, DIGEST_BYTES)


def _rid(v: Any, what: str) -> str:
    if type(v) is not str or not 0 < len(v) <= REPLICA_ID_CHARS_MAX:
        _fail(f"{what}: expected a replica id")
    return v


def _array(v: Any, what: str, length: int | None = None, max_len: int = INT_MAX) -> tuple[Any, ...]:
    if type(v) is not tuple:
        _fail(f"{what}: expected array")
    if length is not None and len(v) != length:
        _fail(f"{what}: expected {length} elements")
    if len(v) > max_len:
        _fail(f"{what}: more than {max_len} elements")
    return v


def _sigs(v: Any, what: str) -> tuple[Signature, ...]:
    out: list[Signature] = []
    for item in _array(v, what, max_len=SIGNATURES_MAX):
        pair = _array(item, what, 2)
        out.append((_rid(pair[0], what), _bytes(pair[1], what, SIGNATURE_BYTES_MAX)))
    return tuple(out)


def _block(v: Any, hash_fn: HashFn) -> Block:
    f = _array(v, "block", 3)
    requests = tuple(
        _bytes(r, "request", MESSAGE_BYTES_MAX)
        for r in _array(f[2], "requests", max_len=REQUESTS_PER_MESSAGE_MAX)
    )
    return Block(
        _int(f[0], "block.seq"), _int(f[1], "block.timestamp", -INT_MAX), requests, hash_fn
    )


def _checkpoint_cert(v: Any) -> CheckpointCertificate:
    f = _array(v, "checkpoint certificate", 4)
    return CheckpointCertificate(
        _int(f[0], "checkpoint.seq"),
        _digest(f[1], "checkpoint.block_digest"),
        _bytes(f[2], "checkpoint.state_root", STATE_ROOT_BYTES_MAX),
        _sigs(f[3], "checkpoint.signatures"),
    )


def _prepared_cert(v: Any) -> PreparedCertificate:
    f = _array(v, "prepared certificate", 5)
    return PreparedCertificate(
        _int(f[0], "prepared.view"),
        _int(f[1], "prepared.seq"),
        _digest(f[2], "prepared.digest"),
        _bytes(f[3], "prepared.pre_prepare_signature", SIGNATURE_BYTES_MAX),
        _sigs(f[4], "prepared.prepares"),
    )


def _commit_cert(v: Any) -> CommitCertificate:
    f = _array(v, "commit certificate", 4)
    return CommitCertificate(
        _int(f[0], "commit.view"),
        _int(f[1], "commit.seq"),
        _digest(f[2], "commit.digest"),
        _sigs(f[3], "commit.signatures"),
    )


def _signed(v: Any, depth: int, hash_fn: HashFn) -> SignedMessage:
    f = _array(v, "message")
    if len(f) < 4:
        _fail("message: too short")
    if f[0] != WIRE_VERSION or type(f[0]) is not int:
        _fail("message: unknown version")
    kind = _int(f[1], "message.kind", 1, KIND_LAST)
    sender = _rid(f[2], "message.sender")
    signature = _bytes(f[3], "message.signature", SIGNATURE_BYTES_MAX)
    body = f[4:]
    message = _body(kind, body, depth, hash_fn)
    return SignedMessage(message, sender, signature)


def _body(kind: int, b: tuple[Any, ...], depth: int, hash_fn: HashFn) -> Message:
    def need(n: int) -> None:
        if len(b) != n:
            _fail(f"message kind {kind}: expected {n} fields")

    if kind == KIND_PRE_PREPARE:
        need(4)
        block = None if b[3] is None else _block(b[3], hash_fn)
        return PrePrepare(_int(b[0], "view"), _int(b[1], "seq"), _digest(b[2], "digest"), block)
    if kind == KIND_PREPARE:
        need(3)
        return Prepare(_int(b[0], "view"), _int(b[1], "seq"), _digest(b[2], "digest"))
    if kind == KIND_COMMIT:
        need(3)
        return Commit(_int(b[0], "view"), _int(b[1], "seq"), _digest(b[2], "digest"))
    if kind == KIND_CHECKPOINT:
        need(3)
        return Checkpoint(
            _int(b[0], "seq"),
            _digest(b[1], "block_digest"),
            _bytes(b[2], "state_root", STATE_ROOT_BYTES_MAX),
        )
    if kind == KIND_VIEW_CHANGE:
        need(3)
        return ViewChange(
            _int(b[0], "view"),
            _checkpoint_cert(b[1]),
            tuple(_prepared_cert(p) for p in _array(b[2], "prepared", max_len=CERTIFICATES_MAX)),
        )
    if kind == KIND_NEW_VIEW:
        need(3)
        if depth > 0:
            _fail("new-view nested inside a message")
        vcs = tuple(
            _signed(x, depth + 1, hash_fn)
            for x in _array(b[1], "view_changes", max_len=SIGNATURES_MAX)
        )
        pps = tuple(
            _signed(x, depth + 1, hash_fn)
            for x in _array(b[2], "pre_prepares", max_len=CERTIFICATES_MAX)
        )
        if not all(isinstance(m.message, ViewChange) for m in vcs):
            _fail("new-view: V holds a message that is not a view-change")
        if not all(isinstance(m.message, PrePrepare) for m in pps):
            _fail("new-view: O holds a message that is not a pre-prepare")
        return NewView(_int(b[0], "view"), vcs, pps)
    if kind == KIND_COMMITTED_PROOF:
        need(2)
        return CommittedProof(_block(b[0], hash_fn), _commit_cert(b[1]))
    if kind == KIND_REQUEST_FORWARD:
        need(1)
        return RequestForward(
            tuple(
                _bytes(r, "request", MESSAGE_BYTES_MAX)
                for r in _array(b[0], "requests", max_len=REQUESTS_PER_MESSAGE_MAX)
            )
        )
    if kind == KIND_BLOCK_REQUEST:
        need(1)
        return BlockRequest(
            tuple(_digest(d, "digest") for d in _array(b[0], "digests", max_len=CERTIFICATES_MAX))
        )
    if kind == KIND_BLOCK_BODY:
        need(2)
        return BlockBody(_digest(b[0], "digest"), None if b[1] is None else _block(b[1], hash_fn))
    need(4)
    return Status(
        _int(b[0], "view"),
        _bool(b[1], "view_active"),
        _int(b[2], "last_executed"),
        _int(b[3], "stable_seq"),
    )


def _unpack(data: bytes, max_bytes: int) -> Any:
    if type(data) is not bytes:
        _fail("expected bytes")
    if len(data) > max_bytes:
        _fail(f"message larger than {max_bytes} bytes")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=False,
            strict_map_key=True,
            timestamp=0,
        )
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as exc:
        raise MessageError(f"undecodable: {exc.__class__.__name__}") from None


def decode_message(
    data: bytes, max_bytes: int = MESSAGE_BYTES_MAX, *, hash_fn: HashFn = sha256
) -> SignedMessage:
    """Decode and structurally validate peer bytes; raises `MessageError` on any defect.

    Block bodies are rebuilt with `hash_fn`, the chain hash (`ReplicaConfig.hash_fn`): a body
    decoded with another hash has another digest and fails the replica's digest checks.
    Signatures are not checked here: the replica does that against its membership."""
    try:
        return _signed(_unpack(data, max_bytes), 0, hash_fn)
    except RecursionError:
        raise MessageError("nested too deeply") from None


def decode_block(data: bytes, hash_fn: HashFn = sha256) -> Block:
    return _block(_unpack(data, MESSAGE_BYTES_MAX), hash_fn)


def decode_commit_certificate(data: bytes) -> CommitCertificate:
    return _commit_cert(_unpack(data, MESSAGE_BYTES_MAX))


def decode_checkpoint_certificate(data: bytes) -> CheckpointCertificate:
    return _checkpoint_cert(_unpack(data, MESSAGE_BYTES_MAX))


def decode_prepared_certificate(data: bytes) -> PreparedCertificate:
    return _prepared_cert(_unpack(data, MESSAGE_BYTES_MAX))


def pack(obj: object) -> bytes:
    """Canonical msgpack of plain values (used for persisted records)."""
    return _pack(obj)


def unpack(data: bytes) -> Any:
    return _unpack(data, MESSAGE_BYTES_MAX)
