"""Ed25519 public-key screening: canonical decoding and the small-order test, in one place.

Theory of operation
-------------------
A replicated ledger forks if replicas disagree about which keys are acceptable, so both places
that accept Ed25519 keys -- the identity contract at registration and the node's crypto suite --
screen them with this one module. It is pure integer arithmetic (no I/O, no clock, no library
whose edge cases vary between builds) and runs once per key, never per signature.

A 32-byte encoding is acceptable when

1. it is canonical: the 255-bit ``y`` is below ``p = 2^255 - 19`` and ``x = 0`` is not written
   with the sign bit set ("negative zero"), RFC 8032 section 5.1.3;
2. it decodes to a point on the curve (``x^2 = (y^2 - 1) / (d y^2 + 1)`` has a root);
3. the point is not in the 8-torsion subgroup: ``[8]P`` is not the identity. There are exactly
   eight such points (orders 1, 2, 4 and 8); a key among them admits signatures that verify for
   every message under lax verifiers.

Every non-canonical encoding is refused at step 1 whatever point it would name, so the
non-canonical spellings of the eight torsion points are refused too (as non-canonical).
"""

from __future__ import annotations

import enum

__all__ = [
    "KEY_SIZE",
    "KeyProblem",
    "L",
    "P",
    "add",
    "decode_point",
    "encode_point",
    "is_small_order",
    "key_problem",
    "point_has_small_order",
]

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # order of the prime subgroup
KEY_SIZE = 32
_D = (-121665 * pow(121666, P - 2, P)) % P
_SQRT_M1 = pow(2, (P - 1) // 4, P)
_IDENTITY = (0, 1)


class KeyProblem(enum.Enum):
    """Why a public key is refused; each caller maps it to its own code and wording."""

    WRONG_LENGTH = "an Ed25519 public key is 32 bytes"
    NON_CANONICAL = "the key is not canonically encoded"
    NOT_ON_CURVE = "the key is not a point on the curve"
    SMALL_ORDER = "the key has small order and would admit forged signatures"


def _recover_x(y: int, sign: int) -> int | None:
    """The x with the given sign bit for which (x, y) is on the curve, or None."""
    y2 = y * y % P
    x2 = (y2 - 1) * pow(_D * y2 + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if x * x % P != x2:
        x = x * _SQRT_M1 % P
    if x * x % P != x2:
        return None
    if x & 1 != sign:
        x = (P - x) % P
    return x


def _decode(encoded: bytes) -> tuple[tuple[int, int] | None, KeyProblem | None]:
    if len(encoded) != KEY_SIZE:
        return None, KeyProblem.WRONG_LENGTH
    y = int.from_bytes(encoded, "little") & ((1 << 255) - 1)
    sign = encoded[31] >> 7
    if y >= P:
        return None, KeyProblem.NON_CANONICAL
    x = _recover_x(y, sign)
    if x is None:
        return None, KeyProblem.NOT_ON_CURVE
    if x == 0 and sign == 1:  # "negative zero"
        return None, KeyProblem.NON_CANONICAL
    return (x, y), None


def decode_point(encoded: bytes) -> tuple[int, int] | None:
    """The affine point of a canonical 32-byte encoding, or None for anything else."""
    point, _ = _decode(encoded)
    return point


def add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """Affine twisted Edwards addition (a = -1); complete for this curve."""
    (x1, y1), (x2, y2) = a, b
    t = _D * x1 * x2 * y1 * y2 % P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P
    return x3, y3


def encode_point(point: tuple[int, int]) -> bytes:
    """The canonical 32-byte encoding of an affine point."""
    x, y = point
    return (y | ((x & 1) << 255)).to_bytes(KEY_SIZE, "little")


def _double(point: tuple[int, int]) -> tuple[int, int]:
    # Affine twisted Edwards addition with a = -1, specialised to P + P. The formula is complete
    # for this curve (d is not a square), so no denominator is ever zero.
    x, y = point
    xx, yy, xy = x * x % P, y * y % P, x * y % P
    dxy = _D * xx * yy % P
    x3 = 2 * xy * pow(1 + dxy, P - 2, P) % P
    y3 = (yy + xx) * pow(1 - dxy, P - 2, P) % P
    return x3, y3


def is_small_order(point: tuple[int, int]) -> bool:
    """True when ``[8]point`` is the identity (the point lies in the 8-torsion subgroup)."""
    for _ in range(3):
        point = _double(point)
    return point == _IDENTITY


def point_has_small_order(encoded: bytes) -> bool:
    """True for a canonical encoding of one of the eight small-order points."""
    point = decode_point(encoded)
    return point is not None and is_small_order(point)


def key_problem(public_key: bytes) -> KeyProblem | None:
    """Why ``public_key`` must be refused as an Ed25519 key, or None if it is acceptable."""
    point, problem = _decode(public_key)
    if problem is not None:
        return problem
    assert point is not None
    if is_small_order(point):
        return KeyProblem.SMALL_ORDER
    return None
