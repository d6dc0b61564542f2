"""Signers and verifiers for the simulator: a cheap keyed hash by default, Ed25519 on demand.

The keyed hash (BLAKE2b-MAC with a per-replica key) keeps forgeries detectable: a replica that
signs with its own key under another member's name fails verification, exactly as with Ed25519.
"""

from __future__ import annotations

import hashlib
import hmac

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey


def _key(replica_id: str) -> bytes:
    return hashlib.sha256(b"ibledger-sim-key:" + replica_id.encode()).digest()


class HashSigner:
    def __init__(self, replica_id: str) -> None:
        self._id = replica_id
        self._key = _key(replica_id)

    @property
    def replica_id(self) -> str:
        return self._id

    def sign(self, data: bytes) -> bytes:
        return hashlib.blake2b(data, key=self._key, digest_size=32).digest()


class HashVerifier:
    def __init__(self, members: tuple[str, ...] | list[str]) -> None:
        self._keys = {m: _key(m) for m in members}

    def verify(self, replica_id: str, data: bytes, signature: bytes) -> bool:
        key = self._keys.get(replica_id)
        if key is None:
            return False
        expected = hashlib.blake2b(data, key=key, digest_size=32).digest()
        return hmac.compare_digest(expected, signature)


class Ed25519Signer:
    def __init__(self, replica_id: str, seed: bytes | None = None) -> None:
        self._id = replica_id
        self._key = SigningKey(seed or hashlib.sha256(b"ed25519:" + replica_id.encode()).digest())

    @property
    def replica_id(self) -> str:
        return self._id

    @property
    def verify_key(self) -> bytes:
        return bytes(self._key.verify_key)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data).signature


class Ed25519Verifier:
    def __init__(self, public_keys: dict[str, bytes]) -> None:
        self._keys = {rid: VerifyKey(pk) for rid, pk in public_keys.items()}

    def verify(self, replica_id: str, data: bytes, signature: bytes) -> bool:
        key = self._keys.get(replica_id)
        if key is None or len(signature) != 64:
            return False
        try:
            key.verify(data, signature)
        except BadSignatureError:
            return False
        return True


def make_crypto(
    members: tuple[str, ...], ed25519: bool = False
) -> tuple[dict[str, HashSigner | Ed25519Signer], HashVerifier | Ed25519Verifier]:
    if ed25519:
        signers = {m: Ed25519Signer(m) for m in members}
        return dict(signers), Ed25519Verifier({m: s.verify_key for m, s in signers.items()})
    return {m: HashSigner(m) for m in members}, HashVerifier(members)
