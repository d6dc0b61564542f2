"""The one Ed25519 key screen (``contracts.ed25519``): every small-order point and every
non-canonical spelling of one is refused; ordinary keys pass."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibledger.contracts import ed25519
from ibledger.contracts.ed25519 import KeyProblem

P = ed25519.P

# The eight points of the 8-torsion subgroup, canonically encoded (little-endian y, sign of x in
# the top bit): order 1, 2, two of order 4 and four of order 8.
TORSION_CANONICAL = {
    "0100000000000000000000000000000000000000000000000000000000000000": 1,
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f": 2,
    "0000000000000000000000000000000000000000000000000000000000000000": 4,
    "0000000000000000000000000000000000000000000000000000000000000080": 4,
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05": 8,
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85": 8,
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a": 8,
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa": 8,
}

# Non-canonical spellings of torsion points: y + p for the y below 19 that name one (y = 0 and
# y = 1), each with both sign bits, and "negative zero" (x = 0 with the sign bit set) for the
# two points with x = 0.
TORSION_NON_CANONICAL = [
    (P + 0).to_bytes(32, "little").hex(),  # y = p = 0 (mod p), order 4
    ((P + 0) | 1 << 255).to_bytes(32, "little").hex(),
    (P + 1).to_bytes(32, "little").hex(),  # y = p + 1 = 1, the identity
    ((P + 1) | 1 << 255).to_bytes(32, "little").hex(),
    "0100000000000000000000000000000000000000000000000000000000000080",  # identity, -0
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  # (0, -1), -0
]


def _order(point: tuple[int, int]) -> int:
    """Smallest k in (1, 2, 4, 8) with [k]P = identity, by repeated doubling."""
    k = 1
    while point != (0, 1):
        point = ed25519._double(point)
        k *= 2
        assert k <= 8, "not a torsion point"
    return k


@pytest.mark.parametrize(("encoded", "order"), sorted(TORSION_CANONICAL.items()))
def test_every_torsion_point_is_refused_as_small_order(encoded: str, order: int) -> None:
    key = bytes.fromhex(encoded)
    point = ed25519.decode_point(key)
    assert point is not None
    assert _order(point) == order
    assert ed25519.point_has_small_order(key)
    assert ed25519.key_problem(key) is KeyProblem.SMALL_ORDER


def test_the_list_is_the_whole_torsion_subgroup() -> None:
    points = {ed25519.decode_point(bytes.fromhex(e)) for e in TORSION_CANONICAL}
    assert len(points) == 8
    for a in points:  # closed under doubling; orders as the group Z/8 x Z/1 demands
        assert a is not None and ed25519._double(a) in points
    assert sorted(TORSION_CANONICAL.values()) == [1, 2, 4, 4, 8, 8, 8, 8]


@pytest.mark.parametrize("encoded", TORSION_NON_CANONICAL)
def test_non_canonical_torsion_encodings_are_refused(encoded: str) -> None:
    key = bytes.fromhex(encoded)
    assert ed25519.decode_point(key) is None
    assert not ed25519.point_has_small_order(key)  # it names no point at all
    assert ed25519.key_problem(key) is KeyProblem.NON_CANONICAL


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_wrong_length(length: int) -> None:
    assert ed25519.key_problem(bytes(length)) is KeyProblem.WRONG_LENGTH


def test_a_y_without_a_curve_point() -> None:
    assert ed25519.key_problem((2).to_bytes(32, "little")) is KeyProblem.NOT_ON_CURVE


# RFC 8032 section 7.1, public keys of tests 1-3.
RFC8032_KEYS = [
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
]


@pytest.mark.parametrize("encoded", RFC8032_KEYS)
def test_ordinary_keys_pass(encoded: str) -> None:
    assert ed25519.key_problem(bytes.fromhex(encoded)) is None


@settings(max_examples=300, derandomize=True, database=None)
@given(st.binary(min_size=32, max_size=32))
def test_a_point_plus_torsion_is_small_order_only_if_the_point_is(raw: bytes) -> None:
    point = ed25519.decode_point(hashlib.sha256(raw).digest())
    if point is None:
        return
    # [8]P is the identity only for torsion points, which a hash hits with probability 2^-250.
    assert not ed25519.is_small_order(point)
