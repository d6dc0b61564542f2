"""A small, slow, independent SM3 and SM2 written from GB/T 32905 and GB/T 32918.2.

It shares no code with ``ibledger.node.sm2`` (which calls OpenSSL): the tests check both against
the standards' published examples and against each other in both directions.  Affine
arithmetic over any prime curve, so the standard's own example curve can be used.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

_MASK = 0xFFFFFFFF
_IV = (
    0x7380166F,
    0x4914B2B9,
    0x172442D7,
    0xDA8A0600,
    0xA96F30BC,
    0x163138AA,
    0xE38DEE4D,
    0xB0FB0E4E,
)


def _rotl(x: int, n: int) -> int:
    n %= 32
    return ((x << n) | (x >> (32 - n))) & _MASK


def _p0(x: int) -> int:
    return x ^ _rotl(x, 9) ^ _rotl(x, 17)


def _p1(x: int) -> int:
    return x ^ _rotl(x, 15) ^ _rotl(x, 23)


def sm3(message: bytes) -> bytes:
    length = len(message) * 8
    padded = message + b"\x80" + b"\x00" * ((55 - len(message)) % 64) + length.to_bytes(8, "big")
    v = list(_IV)
    for block in range(0, len(padded), 64):
        w = [int.from_bytes(padded[block + 4 * i : block + 4 * i + 4], "big") for i in range(16)]
        for j in range(16, 68):
            w.append(
                _p1(w[j - 16] ^ w[j - 9] ^ _rotl(w[j - 3], 15)) ^ _rotl(w[j - 13], 7) ^ w[j - 6]
            )
        w1 = [w[j] ^ w[j + 4] for j in range(64)]
        a, b, c, d, e, f, g, h = v
        for j in range(64):
            t = 0x79CC4519 if j < 16 else 0x7A879D8A
            ss1 = _rotl((_rotl(a, 12) + e + _rotl(t, j)) & _MASK, 7)
            ss2 = ss1 ^ _rotl(a, 12)
            if j < 16:
                ff, gg = a ^ b ^ c, e ^ f ^ g
            else:
                ff = (a & b) | (a & c) | (b & c)
                gg = (e & f) | (~e & g)
            tt1 = (ff + d + ss2 + w1[j]) & _MASK
            tt2 = (gg + h + ss1 + w[j]) & _MASK
            a, b, c, d = tt1, a, _rotl(b, 9), c
            e, f, g, h = _p0(tt2), e, _rotl(f, 19), g
        v = [x ^ y for x, y in zip(v, (a, b, c, d, e, f, g, h), strict=True)]
    return b"".join(x.to_bytes(4, "big") for x in v)


Point = tuple[int, int] | None  # None is the point at infinity


@dataclass(frozen=True)
class Curve:
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int

    def add(self, p1: Point, p2: Point) -> Point:
        if p1 is None:
            return p2
        if p2 is None:
            return p1
        (x1, y1), (x2, y2) = p1, p2
        if x1 == x2 and (y1 + y2) % self.p == 0:
            return None
        if p1 == p2:
            lam = (3 * x1 * x1 + self.a) * pow(2 * y1, -1, self.p) % self.p
        else:
            lam = (y2 - y1) * pow(x2 - x1, -1, self.p) % self.p
        x3 = (lam * lam - x1 - x2) % self.p
        return x3, (lam * (x1 - x3) - y1) % self.p

    def mul(self, k: int, point: Point) -> Point:
        result: Point = None
        while k:
            if k & 1:
                result = self.add(result, point)
            point = self.add(point, point)
            k >>= 1
        return result

    def size(self) -> int:
        return (self.p.bit_length() + 7) // 8

    def z_value(self, user_id: bytes, public: tuple[int, int]) -> bytes:
        size = self.size()
        entl = (len(user_id) * 8).to_bytes(2, "big")
        fields = (self.a, self.b, self.gx, self.gy, public[0], public[1])
        return sm3(entl + user_id + b"".join(v.to_bytes(size, "big") for v in fields))

    def digest(self, user_id: bytes, public: tuple[int, int], message: bytes) -> int:
        return int.from_bytes(sm3(self.z_value(user_id, public) + message), "big")

    def sign(self, d: int, user_id: bytes, message: bytes, k: int | None = None) -> tuple[int, int]:
        public = self.mul(d, (self.gx, self.gy))
        assert public is not None
        e = self.digest(user_id, public, message)
        while True:
            nonce = k if k is not None else 1 + secrets.randbelow(self.n - 1)
            kg = self.mul(nonce, (self.gx, self.gy))
            assert kg is not None
            r = (e + kg[0]) % self.n
            if r == 0 or r + nonce == self.n:
                continue
            s = pow(1 + d, -1, self.n) * (nonce - r * d) % self.n
            if s:
                return r, s

    def verify(
        self, public: tuple[int, int], user_id: bytes, message: bytes, r: int, s: int
    ) -> bool:
        if not (1 <= r < self.n and 1 <= s < self.n):
            return False
        x, y = public
        if (y * y - x * x * x - self.a * x - self.b) % self.p:
            return False
        e = self.digest(user_id, public, message)
        t = (r + s) % self.n
        if t == 0:
            return False
        point = self.add(self.mul(s, (self.gx, self.gy)), self.mul(t, public))
        return point is not None and (e + point[0]) % self.n == r


SM2_CURVE = Curve(
    p=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF,
    a=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC,
    b=0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93,
    gx=0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    gy=0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
    n=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123,
)

# The example curve of GB/T 32918.2 (and GM/T 0003.2) Annex A, used by its signature example.
EXAMPLE_CURVE = Curve(
    p=0x8542D69E4C044F18E8B92435BF6FF7DE457283915C45517D722EDB8B08F1DFC3,
    a=0x787968B4FA32C3FD2417842E73BBFEFF2F3C848B6831D7E0EC65228B3937E498,
    b=0x63E4C6D3B23B0C849CF84241484BFE48F61D59A5B16BA06E6E12D1DA27C5249A,
    gx=0x421DEBD61B62EAB6746434EBC3CC315E32220B3BADD50BDC4C4E6C147FEDD43D,
    gy=0x0680512BCBB42C07D47349D2153B70C4E5D7FDFCBFA36EA1A85841B9E46E09A2,
    n=0x8542D69E4C044F18E8B92435BF6FF7DD297720630485628D5AE74EE7C32E79B7,
)
