"""The national commercial cryptography suite ``sm2-sm3``: SM2 signatures with SM3 as the hash.

Theory of operation
-------------------
SM2 (GB/T 32918.2) is an elliptic-curve signature over the 256-bit prime curve of GB/T 32918.5.
What is signed is not the message but ``SM3(Z || message)``, where the *Z-value* is
``SM3(ENTL || ID || a || b || xG || yG || xA || yA)`` over the signer's distinguishing id and
public key.  Every signature on an ``sm2-sm3`` chain uses the standard default id
``1234567812345678`` (GM/T 0009), so any SM2 tool verifies it with its defaults.

Encodings are fixed so that each value has exactly one form, as consensus needs:

* a public key is the 65-byte uncompressed point ``04 || X || Y`` (compressed and hybrid forms
  are refused: two encodings of one key would be two key ids);
* a signature is the 64-byte ``r || s``, each big-endian and zero-padded; ``r`` and ``s`` must lie
  in ``[1, n-1]``, which is checked here before the library sees them;
* a private key (the suite's "seed") is the 32-byte scalar ``d`` in ``[1, n-2]``.

The arithmetic runs in OpenSSL's libcrypto (3.x ships SM2, SM3 and SM4), reached through
``ctypes``: it is the library Python's own ``hashlib`` links, it was the fastest SM2 verifier
measured here (see the README), and ``ctypes`` releases the GIL for every foreign call, so the
batched verifier's worker threads verify on both cores.  Public keys are screened once in pure
integer arithmetic (coordinates below p, on the curve, not the point at infinity; the curve's
cofactor is 1, so every such point has prime order) and libcrypto's parsed key is cached.

SM3 is ``hashlib.new("sm3")`` (the same libcrypto).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .crypto import SM2_SM3, CryptoError

DEFAULT_USER_ID = b"1234567812345678"

# GB/T 32918.5 recommended curve parameters.
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

PUBLIC_KEY_SIZE = 65
SIGNATURE_SIZE = 64

# DER pieces shared with the key-file module.
OID_EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")  # 1.2.840.10045.2.1
OID_SM2 = bytes.fromhex("06082a811ccf5501822d")  # 1.2.156.10197.1.301


def sm3(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


def sm3_available() -> bool:
    try:
        hashlib.new("sm3")
    except ValueError:
        return False
    return True


# --- curve checks: key screening only, never the hot path ---------------------------------------


def point_on_curve(x: int, y: int) -> bool:
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x + A * x + B)) % P == 0


def decode_public_key(public_key: bytes) -> tuple[int, int]:
    """The affine point of a canonical SM2 public key, or CryptoError saying why not."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise CryptoError(
            "BAD_PUBLIC_KEY", f"an SM2 public key is {PUBLIC_KEY_SIZE} bytes, got {len(public_key)}"
        )
    if public_key[0] != 0x04:
        raise CryptoError(
            "BAD_PUBLIC_KEY", "an SM2 public key must be an uncompressed point (04 || X || Y)"
        )
    x = int.from_bytes(public_key[1:33], "big")
    y = int.from_bytes(public_key[33:], "big")
    if x >= P or y >= P:
        raise CryptoError("BAD_PUBLIC_KEY", "an SM2 public key coordinate is not below p")
    if x == 0 and y == 0:
        # Some encoders write the point at infinity as zeros; it is nobody's key.
        raise CryptoError("WEAK_PUBLIC_KEY", "the SM2 public key is the point at infinity")
    if not point_on_curve(x, y):
        raise CryptoError("BAD_PUBLIC_KEY", "the SM2 public key is not a point on the curve")
    return x, y


def check_private_scalar(seed: bytes) -> int:
    if len(seed) != 32:
        raise CryptoError("BAD_PRIVATE_KEY", f"an SM2 private key is 32 bytes, got {len(seed)}")
    d = int.from_bytes(seed, "big")
    # GB/T 32918.1 6.1: d in [1, n-2], so that 1 + d is invertible when signing.
    if not 1 <= d <= N - 2:
        raise CryptoError("BAD_PRIVATE_KEY", "the SM2 private key is outside [1, n-2]")
    return d


def encode_point(x: int, y: int) -> bytes:
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


# --- DER helpers (signatures and key structures) -----------------------------------------------


def der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def der_uint(value: int) -> bytes:
    return der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def subject_public_key_info(public_key: bytes) -> bytes:
    return der(0x30, der(0x30, OID_EC_PUBLIC_KEY + OID_SM2) + der(0x03, b"\x00" + public_key))


def ec_private_key(seed: bytes, public_key: bytes | None) -> bytes:
    """RFC 5915 ECPrivateKey (with the public key when given), curve named by the PKCS#8."""
    public = b"" if public_key is None else der(0xA1, der(0x03, b"\x00" + public_key))
    return der(0x30, der(0x02, b"\x01") + der(0x04, seed) + public)


def pkcs8_private_key_info(seed: bytes, public_key: bytes | None) -> bytes:
    """PKCS#8 PrivateKeyInfo: id-ecPublicKey with the SM2 curve OID (as GM/T 0010 and OpenSSL)."""
    return der(
        0x30,
        der(0x02, b"\x00")
        + der(0x30, OID_EC_PUBLIC_KEY + OID_SM2)
        + der(0x04, ec_private_key(seed, public_key)),
    )


def _signature_der(signature: bytes) -> bytes:
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    return der(0x30, der_uint(r) + der_uint(s))


def _signature_raw(encoded: bytes) -> bytes:
    """``r || s`` from the DER SEQUENCE libcrypto writes (short lengths only: 72 bytes at most)."""
    if len(encoded) < 8 or encoded[0] != 0x30 or encoded[1] != len(encoded) - 2:
        raise CryptoError("SIGN_FAILED", "libcrypto returned an unexpected SM2 signature")
    values = []
    offset = 2
    for _ in range(2):
        if encoded[offset] != 0x02:
            raise CryptoError("SIGN_FAILED", "libcrypto returned an unexpected SM2 signature")
        size = encoded[offset + 1]
        values.append(int.from_bytes(encoded[offset + 2 : offset + 2 + size], "big"))
        offset += 2 + size
    return values[0].to_bytes(32, "big") + values[1].to_bytes(32, "big")


# --- libcrypto through ctypes ------------------------------------------------------------------


class _LibCrypto:
    """The few EVP calls SM2 needs; every call drops the GIL (ctypes.CDLL, not PyDLL)."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("crypto")
        if name is None:
            raise CryptoError("SUITE_UNAVAILABLE", "sm2-sm3 needs OpenSSL's libcrypto 3")
        lib: Any = ctypes.CDLL(name)
        lib.OpenSSL_version_num.restype = ctypes.c_ulong
        if lib.OpenSSL_version_num() < 0x30000000:
            raise CryptoError("SUITE_UNAVAILABLE", "sm2-sm3 needs OpenSSL's libcrypto 3 or later")
        vp, cp, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t
        lib.d2i_PUBKEY.restype = vp
        lib.d2i_PUBKEY.argtypes = [vp, ctypes.POINTER(cp), ctypes.c_long]
        lib.d2i_AutoPrivateKey.restype = vp
        lib.d2i_AutoPrivateKey.argtypes = [vp, ctypes.POINTER(cp), ctypes.c_long]
        lib.EVP_PKEY_is_a.argtypes = [vp, cp]
        lib.i2d_PUBKEY.restype = ctypes.c_int
        lib.i2d_PUBKEY.argtypes = [vp, ctypes.POINTER(ctypes.c_void_p)]
        lib.EVP_PKEY_free.argtypes = [vp]
        lib.EVP_MD_CTX_new.restype = vp
        lib.EVP_MD_CTX_free.argtypes = [vp]
        lib.EVP_MD_CTX_set_pkey_ctx.argtypes = [vp, vp]
        lib.EVP_PKEY_CTX_new.restype = vp
        lib.EVP_PKEY_CTX_new.argtypes = [vp, vp]
        lib.EVP_PKEY_CTX_free.argtypes = [vp]
        lib.EVP_PKEY_CTX_set1_id.argtypes = [vp, cp, sz]
        lib.EVP_sm3.restype = vp
        lib.EVP_DigestVerifyInit.argtypes = [vp, vp, vp, vp, vp]
        lib.EVP_DigestVerify.argtypes = [vp, cp, sz, cp, sz]
        lib.EVP_DigestSignInit.argtypes = [vp, vp, vp, vp, vp]
        lib.EVP_DigestSign.argtypes = [vp, cp, ctypes.POINTER(sz), cp, sz]
        self.lib = lib
        self.sm3 = lib.EVP_sm3()

    def public_key(self, public_key: bytes) -> int:
        data = subject_public_key_info(public_key)
        cursor = ctypes.c_char_p(data)
        pkey = self.lib.d2i_PUBKEY(None, ctypes.byref(cursor), len(data))
        if not pkey:
            raise CryptoError("BAD_PUBLIC_KEY", "libcrypto refuses the SM2 public key")
        return self._require_sm2(pkey)

    def derive_public_key(self, seed: bytes) -> bytes:
        """``d * G`` computed by libcrypto (constant time), as the 65-byte point."""
        data = pkcs8_private_key_info(seed, None)
        cursor = ctypes.c_char_p(data)
        pkey = self.lib.d2i_AutoPrivateKey(None, ctypes.byref(cursor), len(data))
        if not pkey:
            raise CryptoError("BAD_PRIVATE_KEY", "libcrypto refuses the SM2 private key")
        try:
            size = self.lib.i2d_PUBKEY(pkey, None)
            if size <= PUBLIC_KEY_SIZE:
                raise CryptoError("BAD_PRIVATE_KEY", "libcrypto has no public key for it")
            out = ctypes.create_string_buffer(size)
            cursor_out = ctypes.c_void_p(ctypes.addressof(out))
            if self.lib.i2d_PUBKEY(pkey, ctypes.byref(cursor_out)) != size:
                raise CryptoError("BAD_PRIVATE_KEY", "libcrypto could not encode the public key")
        finally:
            self.lib.EVP_PKEY_free(pkey)
        public_key = out.raw[-PUBLIC_KEY_SIZE:]
        decode_public_key(public_key)
        return public_key

    def private_key(self, seed: bytes, public_key: bytes) -> int:
        data = pkcs8_private_key_info(seed, public_key)
        cursor = ctypes.c_char_p(data)
        pkey = self.lib.d2i_AutoPrivateKey(None, ctypes.byref(cursor), len(data))
        if not pkey:
            raise CryptoError("BAD_PRIVATE_KEY", "libcrypto refuses the SM2 private key")
        return self._require_sm2(pkey)

    def _require_sm2(self, pkey: int) -> int:
        if self.lib.EVP_PKEY_is_a(pkey, b"SM2") != 1:
            self.lib.EVP_PKEY_free(pkey)
            raise CryptoError("SUITE_UNAVAILABLE", "this libcrypto does not treat SM2 keys as SM2")
        return pkey

    def _context(self, pkey: int) -> tuple[int, int]:
        lib = self.lib
        md_ctx = lib.EVP_MD_CTX_new()
        pkey_ctx = lib.EVP_PKEY_CTX_new(pkey, None)
        # The distinguishing id enters Z; libcrypto computes Z and SM3(Z || M) itself.
        lib.EVP_PKEY_CTX_set1_id(pkey_ctx, DEFAULT_USER_ID, len(DEFAULT_USER_ID))
        lib.EVP_MD_CTX_set_pkey_ctx(md_ctx, pkey_ctx)
        return md_ctx, pkey_ctx

    def verify(self, pkey: int, message: bytes, signature_der: bytes) -> bool:
        lib = self.lib
        md_ctx, pkey_ctx = self._context(pkey)
        try:
            if lib.EVP_DigestVerifyInit(md_ctx, None, self.sm3, None, pkey) != 1:
                return False
            return bool(
                lib.EVP_DigestVerify(
                    md_ctx, signature_der, len(signature_der), message, len(message)
                )
                == 1
            )
        finally:
            lib.EVP_MD_CTX_free(md_ctx)
            lib.EVP_PKEY_CTX_free(pkey_ctx)

    def sign(self, pkey: int, message: bytes) -> bytes:
        lib = self.lib
        md_ctx, pkey_ctx = self._context(pkey)
        out = ctypes.create_string_buffer(80)
        out_len = ctypes.c_size_t(len(out))
        try:
            if lib.EVP_DigestSignInit(md_ctx, None, self.sm3, None, pkey) != 1 or (
                lib.EVP_DigestSign(md_ctx, out, ctypes.byref(out_len), message, len(message)) != 1
            ):
                raise CryptoError("SIGN_FAILED", "libcrypto could not sign with SM2")
        finally:
            lib.EVP_MD_CTX_free(md_ctx)
            lib.EVP_PKEY_CTX_free(pkey_ctx)
        return _signature_raw(out.raw[: out_len.value])

    def free(self, pkey: int) -> None:
        self.lib.EVP_PKEY_free(pkey)


_LIB: _LibCrypto | None = None


def _libcrypto() -> _LibCrypto:
    # Two threads racing here each load the same library; either result serves.
    global _LIB
    if _LIB is None:
        _LIB = _LibCrypto()
    return _LIB


class _KeyCache:
    """Parsed libcrypto keys by encoding; a full cache stops caching rather than freeing keys
    another thread may be using.  ``dict.setdefault`` is atomic, so no lock is needed (this
    module stays client-safe: no threading)."""

    def __init__(self, size_max: int) -> None:
        self._keys: dict[bytes, int] = {}
        self._size_max = size_max

    def get(self, encoded: bytes) -> int | None:
        return self._keys.get(encoded)

    def put(self, encoded: bytes, pkey: int) -> bool:
        """True when the cache kept ``pkey``; False when the caller still owns (and frees) it."""
        if len(self._keys) >= self._size_max:
            return False
        return self._keys.setdefault(encoded, pkey) == pkey


_PUBLIC_KEYS = _KeyCache(65_536)
_PRIVATE_KEYS = _KeyCache(256)


@dataclass(frozen=True, slots=True)
class Sm2Sm3:
    """SM2 signatures (libcrypto, strict encodings) with SM3 as the chain hash."""

    name: str = SM2_SM3
    public_key_size: int = PUBLIC_KEY_SIZE
    signature_size: int = SIGNATURE_SIZE

    def hash(self, data: bytes) -> bytes:
        return hashlib.new("sm3", data).digest()

    def key_id(self, public_key: bytes) -> bytes:
        return self.hash(public_key)[:16]

    def generate_seed(self) -> bytes:
        return (1 + secrets.randbelow(N - 2)).to_bytes(32, "big")

    def public_key_from_seed(self, seed: bytes) -> bytes:
        check_private_scalar(seed)
        return _libcrypto().derive_public_key(seed)

    def sign(self, seed: bytes, message: bytes) -> bytes:
        lib = _libcrypto()
        pkey = _PRIVATE_KEYS.get(seed)
        if pkey is not None:
            return lib.sign(pkey, message)
        pkey = lib.private_key(seed, self.public_key_from_seed(seed))
        try:
            return lib.sign(pkey, message)
        finally:
            if not _PRIVATE_KEYS.put(seed, pkey):
                lib.free(pkey)

    def check_public_key(self, public_key: bytes) -> None:
        decode_public_key(public_key)

    def check_signature_encoding(self, signature: bytes) -> None:
        if len(signature) != SIGNATURE_SIZE:
            raise CryptoError(
                "BAD_SIGNATURE_LENGTH",
                f"an SM2 signature is {SIGNATURE_SIZE} bytes (r || s), got {len(signature)}",
            )
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        if not (1 <= r < N and 1 <= s < N):
            raise CryptoError(
                "NON_CANONICAL_SIGNATURE", "the SM2 signature r or s is not in [1, n-1]"
            )

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return self.verify_many(((public_key, message, signature),))[0]

    def verify_many(self, items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
        lib = _libcrypto()
        results: list[bool] = []
        for public_key, message, signature in items:
            results.append(self._verify_one(lib, public_key, message, signature))
        return results

    def _verify_one(
        self, lib: _LibCrypto, public_key: bytes, message: bytes, signature: bytes
    ) -> bool:
        if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
            return False
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        if not (1 <= r < N and 1 <= s < N):
            return False
        pkey = _PUBLIC_KEYS.get(public_key)
        if pkey is None:
            try:
                decode_public_key(public_key)
                pkey = lib.public_key(public_key)
            except CryptoError:
                return False
            if not _PUBLIC_KEYS.put(public_key, pkey):
                try:
                    return lib.verify(pkey, message, _signature_der(signature))
                finally:
                    lib.free(pkey)
        return lib.verify(pkey, message, _signature_der(signature))
