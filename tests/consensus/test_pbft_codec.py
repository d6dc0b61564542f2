"""Canonical signing bytes and the strict wire codec: round trips, rejection of malformed peer
bytes with a typed MessageError, and fuzzing (docs/testing.md S2).

Section 4.1 (OSDI'99): messages are signed; signatures must be checkable by every replica, so
the signed bytes are canonical and independent of the wire encoding.
"""

from __future__ import annotations

import contextlib

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibledger.consensus import (
    GENESIS_CHECKPOINT,
    Block,
    BlockBody,
    BlockRequest,
    Checkpoint,
    Commit,
    CommitCertificate,
    CommittedProof,
    MessageError,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    RequestForward,
    SignedMessage,
    Status,
    ViewChange,
    decode_message,
    encode_message,
    signing_bytes,
)

D = bytes(range(32))
BLOCK = Block(3, 1_700_000_000_000, (b"a", b"bb"))


def _samples() -> list[SignedMessage]:
    pc = PreparedCertificate(1, 3, BLOCK.digest, b"s" * 64, (("r1", b"x" * 64), ("r2", b"y" * 64)))
    vc = SignedMessage(ViewChange(2, GENESIS_CHECKPOINT, (pc,)), "r3", b"v" * 64)
    pp = SignedMessage(PrePrepare(2, 3, BLOCK.digest), "r2", b"p" * 64)
    return [
        SignedMessage(PrePrepare(0, 3, BLOCK.digest, BLOCK), "r0", b"s" * 64),
        SignedMessage(PrePrepare(0, 3, BLOCK.digest), "r0", b"s" * 64),
        SignedMessage(Prepare(0, 3, D), "r1", b"s"),
        SignedMessage(Commit(7, 3, D), "r1", b"s"),
        SignedMessage(Checkpoint(4, D, b"root"), "r1", b"s"),
        vc,
        SignedMessage(NewView(2, (vc,), (pp,)), "r2", b"n" * 64),
        SignedMessage(
            CommittedProof(BLOCK, CommitCertificate(0, 3, BLOCK.digest, (("r0", b"c"),))),
            "r1",
            b"s",
        ),
        SignedMessage(RequestForward((b"tx1", b"tx2")), "r1", b"s"),
        SignedMessage(Status(1, False, 10, 8), "r1", b"s"),
        SignedMessage(BlockRequest((D, BLOCK.digest)), "r1", b"s"),
        SignedMessage(BlockBody(BLOCK.digest, BLOCK), "r1", b"s"),
    ]


@pytest.mark.parametrize("sm", _samples(), ids=lambda sm: type(sm.message).__name__)
def test_round_trip(sm: SignedMessage) -> None:
    decoded = decode_message(encode_message(sm))
    assert decoded == sm
    assert signing_bytes(decoded.message, decoded.sender) == signing_bytes(sm.message, sm.sender)
    m = decoded.message
    if isinstance(m, PrePrepare) and m.block is not None:
        assert m.block.digest == BLOCK.digest


def test_signing_bytes_exclude_attachments_and_bind_the_sender() -> None:
    with_body = PrePrepare(0, 3, BLOCK.digest, BLOCK)
    without = PrePrepare(0, 3, BLOCK.digest)
    assert signing_bytes(with_body, "r0") == signing_bytes(without, "r0")
    assert signing_bytes(with_body, "r0") != signing_bytes(with_body, "r1")
    assert signing_bytes(Prepare(0, 3, D), "r1") != signing_bytes(Commit(0, 3, D), "r1")


def _raw(fields: list[object]) -> bytes:
    data: bytes = msgpack.packb(fields, use_bin_type=True)
    return data


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        _raw([2, 2, "r1", b"s", 0, 3]),  # missing field
        _raw([2, 2, "r1", b"s", 0, 3, D, 9]),  # extra field
        _raw([2, 2, "r1", b"s", True, 3, D]),  # bool for int
        _raw([2, 2, "r1", b"s", -1, 3, D]),  # negative view
        _raw([2, 2, "r1", b"s", 0, 3, D[:31]]),  # short digest
        _raw([2, 2, "r1", b"s", 0, 3, "x" * 32]),  # str for bytes
        _raw([2, 2, "", b"s", 0, 3, D]),  # empty sender
        _raw([2, 99, "r1", b"s", 0, 3, D]),  # unknown kind
        _raw([9, 2, "r1", b"s", 0, 3, D]),  # unknown version
        _raw([2, 2, "r1", b"s", 0, 2**63, D]),  # above int64
        _raw({"a": 1}),
        _raw([2, 2, "r1", b"s", 0, 3, D]) + b"\x00",  # trailing bytes
        _raw([2, 6, "r1", b"s", 1, [[2, 6, "r1", b"s", 1, [], []]], []]),  # nested NV
        _raw([2, 6, "r1", b"s", 1, [[2, 2, "r1", b"s", 0, 3, D]], []]),  # V holds a prepare
    ],
)
def test_malformed_bytes_raise_message_error(data: bytes) -> None:
    with pytest.raises(MessageError):
        decode_message(data)


def test_oversized_message_is_rejected() -> None:
    with pytest.raises(MessageError):
        decode_message(b"\x00" * 100, max_bytes=10)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_only_raise_message_error(data: bytes) -> None:
    with contextlib.suppress(MessageError):
        decode_message(data)


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=10)
    | st.floats(allow_nan=False),
    lambda children: st.lists(children, max_size=8),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 11), values)
def test_fuzz_structured_garbage_only_raises_message_error(kind: int, body: object) -> None:
    fields = [2, kind, "r1", b"sig", *(body if isinstance(body, list) else [body])]
    with contextlib.suppress(MessageError):
        decode_message(_raw(fields))
