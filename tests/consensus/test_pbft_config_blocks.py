"""Configuration (quorums from n and f, primary rotation, validation) and block digests with
RFC 6962 request Merkle trees.

OSDI'99 section 3: n = 3f+1 replicas tolerate f faults; section 4.1: primary = v mod n.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ibledger.consensus import (
    Block,
    ConfigError,
    ReplicaConfig,
    merkle_proof,
    merkle_root,
    null_block,
    verify_merkle_proof,
)


@pytest.mark.parametrize(
    ("n", "f", "q"),
    [(1, 0, 1), (2, 0, 2), (3, 0, 2), (4, 1, 3), (5, 1, 4), (6, 1, 4), (7, 2, 5), (10, 3, 7)],
)
def test_quorums(n: int, f: int, q: int) -> None:
    config = ReplicaConfig(tuple(f"r{i}" for i in range(n)))
    assert (config.f, config.quorum, config.weak_quorum) == (f, q, f + 1)
    assert 2 * q - n >= f + 1  # two quorums share a correct replica
    assert q <= n - f  # the correct replicas alone form a quorum


def test_primary_rotates() -> None:
    config = ReplicaConfig(("a", "b", "c", "d"))
    assert [config.primary(v) for v in range(6)] == ["a", "b", "c", "d", "a", "b"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"members": ()},
        {"members": ("a", "a")},
        {"members": ("a",), "batch_size_max": 0},
        {"members": ("a",), "checkpoint_interval": 4, "watermark_window": 6},
        {"members": ("a",), "checkpoint_interval": 4, "watermark_window": 4},
        {"members": ("a",), "view_change_timeout_ticks": 10, "view_change_timeout_max_ticks": 5},
    ],
)
def test_invalid_configs(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ReplicaConfig(**kwargs)  # type: ignore[arg-type]


def _rfc6962(ids: list[bytes]) -> bytes:
    if not ids:
        return hashlib.sha256(b"").digest()
    if len(ids) == 1:
        return hashlib.sha256(b"\x00" + ids[0]).digest()
    k = 1
    while k * 2 < len(ids):
        k *= 2
    return hashlib.sha256(b"\x01" + _rfc6962(ids[:k]) + _rfc6962(ids[k:])).digest()


@given(st.lists(st.binary(min_size=32, max_size=32), max_size=40))
def test_merkle_root_matches_rfc6962(ids: list[bytes]) -> None:
    assert merkle_root(ids) == _rfc6962(ids)


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40), st.data())
def test_merkle_proofs(ids: list[bytes], data: st.DataObject) -> None:
    root = merkle_root(ids)
    i = data.draw(st.integers(0, len(ids) - 1))
    proof = merkle_proof(ids, i)
    assert verify_merkle_proof(ids[i], i, len(ids), proof, root)
    assert not verify_merkle_proof(
        b"\x00" * 32 if ids[i] != b"\x00" * 32 else b"\x01" * 32, i, len(ids), proof, root
    )


def test_block_digest_binds_height_time_and_requests() -> None:
    base = Block(5, 100, (b"a", b"b"))
    assert base.digest != Block(6, 100, (b"a", b"b")).digest
    assert base.digest != Block(5, 101, (b"a", b"b")).digest
    assert base.digest != Block(5, 100, (b"b", b"a")).digest
    assert base.digest == Block(5, 100, (b"a", b"b")).digest
    assert null_block(5).is_null and null_block(5).digest != null_block(6).digest
