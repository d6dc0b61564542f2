"""Crypto suites: the signature scheme and hash a chain uses, chosen once at genesis.

Theory of operation
-------------------
A chain names its suite in genesis (``crypto_suite``); every node and client resolves that name
through :func:`get_suite`.  A suite is a small value object with four duties: generate keys, sign,
verify (one item or a batch) and hash.  Nothing else in the code base knows which algorithm is in
use, so a national-crypto suite (SM2 signatures over SM3) plugs in beside ``ed25519-sha256``
without touching transactions, ledger or consensus.

Verification is *strict*.  Ed25519 as specified in RFC 8032 leaves room for implementations to
disagree about edge cases (small-order keys, non-canonical encodings, the identity-key forgery),
and in a replicated ledger disagreement between replicas is a fork.  So the suite:

* rejects public keys that are not a canonical encoding of a point, or whose point has small
  order (its multiple by the cofactor 8 is the identity) — checked in pure integer arithmetic
  once per key, not per signature;
* rejects signatures whose scalar ``S`` is not reduced (``S >= L``);
* verifies with libsodium (through PyNaCl), which additionally rejects small-order ``R`` and the
  identity-key forgery that some OpenSSL builds accept.

libsodium is also the faster library here (see the README's measurements), and cffi releases the
GIL for the duration of each C call, which is what lets the batched verifier use two cores.

Signing goes through libsodium too; key files are handled by ``cryptography`` (PKCS#8 PEM,
optionally encrypted with a passphrase).
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl import bindings as sodium
from nacl._sodium import ffi as _sodium_ffi
from nacl._sodium import lib as _sodium_lib  # crypto_sign_open, without nacl's exception cost

from ibledger.contracts import ed25519

ED25519_SHA256 = "ed25519-sha256"


class CryptoError(Exception):
    """A key or signature problem, with a stable ``code`` for callers and a human message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class KeyFileError(CryptoError):
    """A key file that cannot be used: wrong passphrase, bad permissions, wrong format."""


class CryptoSuite(Protocol):
    """What the rest of the system needs from a signature scheme and hash."""

    @property
    def name(self) -> str: ...

    @property
    def public_key_size(self) -> int: ...

    @property
    def signature_size(self) -> int: ...

    def hash(self, data: bytes) -> bytes: ...

    def generate_seed(self) -> bytes: ...

    def public_key_from_seed(self, seed: bytes) -> bytes: ...

    def sign(self, seed: bytes, message: bytes) -> bytes: ...

    def check_public_key(self, public_key: bytes) -> None:
        """Raise CryptoError if the key must never be accepted (malformed or weak)."""
        ...

    def check_signature_encoding(self, signature: bytes) -> None:
        """Raise CryptoError if the signature is not in canonical form."""
        ...

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool: ...

    def verify_many(self, items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
        """Verify ``(public_key, message, signature)`` triples; the GIL is released per item."""
        ...


# --- Ed25519 public key screening: the contracts' module, so that both agree -------------------

_L = ed25519.L
_decode_point = ed25519.decode_point
ed25519_point_has_small_order = ed25519.point_has_small_order


@functools.lru_cache(maxsize=64)
def _expanded_secret(seed: bytes) -> bytes:
    """libsodium's 64-byte signing key for a seed; deriving it costs as much as a signature."""
    if len(seed) != 32:
        raise CryptoError("BAD_PRIVATE_KEY", f"an Ed25519 seed is 32 bytes, got {len(seed)}")
    return bytes(sodium.crypto_sign_seed_keypair(seed)[1])


@dataclass(frozen=True, slots=True)
class Ed25519Sha256:
    """Ed25519 signatures (libsodium, strict) with SHA-256 as the chain hash."""

    name: str = ED25519_SHA256
    public_key_size: int = 32
    signature_size: int = 64

    def hash(self, data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    def generate_seed(self) -> bytes:
        return os.urandom(32)

    def public_key_from_seed(self, seed: bytes) -> bytes:
        if len(seed) != 32:
            raise CryptoError("BAD_PRIVATE_KEY", f"an Ed25519 seed is 32 bytes, got {len(seed)}")
        public_key, _ = sodium.crypto_sign_seed_keypair(seed)
        return bytes(public_key)

    def sign(self, seed: bytes, message: bytes) -> bytes:
        return bytes(sodium.crypto_sign(message, _expanded_secret(seed))[:64])

    def check_public_key(self, public_key: bytes) -> None:
        if len(public_key) != 32:
            raise CryptoError(
                "BAD_PUBLIC_KEY", f"an Ed25519 public key is 32 bytes, got {len(public_key)}"
            )
        if _decode_point(public_key) is None:
            raise CryptoError("BAD_PUBLIC_KEY", "the public key is not a canonical curve point")
        if ed25519_point_has_small_order(public_key):
            raise CryptoError(
                "WEAK_PUBLIC_KEY",
                "the public key is a small-order point: anyone could forge its signatures",
            )

    def check_signature_encoding(self, signature: bytes) -> None:
        if len(signature) != 64:
            raise CryptoError(
                "BAD_SIGNATURE_LENGTH", f"an Ed25519 signature is 64 bytes, got {len(signature)}"
            )
        if int.from_bytes(signature[32:], "little") >= _L:
            raise CryptoError(
                "NON_CANONICAL_SIGNATURE", "the signature scalar S is not reduced modulo L"
            )

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return self.verify_many(((public_key, message, signature),))[0]

    def verify_many(self, items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
        # PyNaCl exposes no detached verify, so each item is opened as ``signature || message``
        # into one scratch buffer per call; cffi drops the GIL inside every crypto_sign_open.
        if not items:
            return []
        longest = max(len(message) for _, message, _ in items) + 64
        scratch = _sodium_ffi.new("unsigned char[]", longest)
        scratch_len = _sodium_ffi.new("unsigned long long *")
        sign_open = _sodium_lib.crypto_sign_open
        results = []
        for public_key, message, signature in items:
            if len(public_key) != 32 or len(signature) != 64:
                results.append(False)
                continue
            signed = signature + message
            results.append(sign_open(scratch, scratch_len, signed, len(signed), public_key) == 0)
        return results


_SUITES: dict[str, Callable[[], CryptoSuite]] = {ED25519_SHA256: lambda: Ed25519Sha256()}


def get_suite(name: str) -> CryptoSuite:
    """The suite a genesis names; unknown names are a configuration error."""
    factory = _SUITES.get(name)
    if factory is None:
        known = ", ".join(sorted(_SUITES))
        raise CryptoError("UNKNOWN_SUITE", f"unknown crypto suite {name!r} (known: {known})")
    return factory()


def key_fingerprint(public_key: bytes) -> bytes:
    """The signer key id carried in envelopes: the first 16 bytes of SHA-256 of the key."""
    return hashlib.sha256(public_key).digest()[:16]


# --- key files ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A private key (as its 32-byte seed) and its public key, for one suite."""

    suite: str
    seed: bytes
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_fingerprint(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return get_suite(self.suite).sign(self.seed, message)

    def __repr__(self) -> str:  # never print key material
        return f"KeyPair(suite={self.suite!r}, key_id={self.key_id.hex()})"


def generate_keypair(suite_name: str = ED25519_SHA256) -> KeyPair:
    suite = get_suite(suite_name)
    seed = suite.generate_seed()
    return KeyPair(suite_name, seed, suite.public_key_from_seed(seed))


def private_key_pem(keypair: KeyPair, passphrase: bytes | None = None) -> bytes:
    from .keyfile import private_key_to_pem  # keyfile imports this module

    if keypair.suite != ED25519_SHA256:
        raise CryptoError("UNKNOWN_SUITE", f"cannot write {keypair.suite} keys as PEM yet")
    return private_key_to_pem(Ed25519PrivateKey.from_private_bytes(keypair.seed), passphrase)


def public_key_pem(public_key: bytes) -> bytes:
    return Ed25519PublicKey.from_public_bytes(public_key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_private_key(path: Path, keypair: KeyPair, passphrase: bytes | None = None) -> None:
    """Write a PKCS#8 PEM readable by its owner only; refuses to overwrite an existing key."""
    data = private_key_pem(keypair, passphrase)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def load_private_key(
    path: Path, passphrase: bytes | None = None, *, require_encrypted: bool = False
) -> KeyPair:
    """Read a private key file, refusing one its group or other users of the machine can open.

    ``require_encrypted`` refuses a plaintext file (see ``keyfile.read_key_file``).
    """
    from .keyfile import read_key_file  # keyfile imports this module

    key = read_key_file(path, passphrase, require_encrypted=require_encrypted)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError("KEY_FILE_INVALID", f"{path} does not hold an Ed25519 private key")
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    suite = get_suite(ED25519_SHA256)
    return KeyPair(ED25519_SHA256, seed, suite.public_key_from_seed(seed))


def load_public_key_pem(data: bytes) -> bytes:
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise CryptoError("BAD_PUBLIC_KEY", "not an Ed25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
