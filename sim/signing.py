"""Signers and verifiers for the simulator: a cheap keyed hash by default, Ed25519 on demand,
or the node's own signer and verifier for any crypto suite (``suite="sm2-sm3"``).

The keyed hash (BLAKE2b-MAC with a per-replica key) keeps forgeries detectable: a replica that
signs with its own key under another member's name fails verification, exactly as with Ed25519.
"""

from __future__ import annotations

import hashlib
import hmac

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from ibledger.node.crypto import generate_keypair, get_suite
from ibledger.node.signing import ValidatorSigner, ValidatorVerifier


def _key(replica_id: str) -> bytes:
    return hashlib.sha256(b"ibledger-sim-key:" + replica_id.encode()).digest()


class HashSigner:
    """`size` 32 for the seed swarm; research runs use 64, the size of an Ed25519 signature,
    so that the bytes they count per block are those of the real wire format."""

    def __init__(self, replica_id: str, size: int = 32) -> None:
        self._id = replica_id
        self._key = _key(replica_id)
        self._size = size

    @property
    def replica_id(self) -> str:
        return self._id

    def sign(self, data: bytes) -> bytes:
        return hashlib.blake2b(data, key=self._key, digest_size=self._size).digest()


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


Signer = HashSigner | Ed25519Signer | ValidatorSigner
Verifier = HashVerifier | Ed25519Verifier | ValidatorVerifier


class SharedHashVerifier:
    """The keyed-hash check, remembered across the replicas of one simulated cluster.

    A broadcast is verified by each of its n-1 receivers; they share this object, so the hash is
    computed once per signed message rather than n-1 times (at 64 replicas that was a large part
    of a simulated second). The answer for a (sender, data, signature) triple is the same as
    HashVerifier's: the memo is keyed by sender and signature and holds the data it was computed
    for, so a signature presented with other data is checked afresh."""

    def __init__(
        self, members: tuple[str, ...] | list[str], size: int = 64, memo_max: int = 200_000
    ) -> None:
        self._keys = {m: _key(m) for m in members}
        self._size = size
        self._memo: dict[tuple[str, bytes], bytes] = {}
        self._memo_max = memo_max

    def verify(self, replica_id: str, data: bytes, signature: bytes) -> bool:
        memo_key = (replica_id, signature)
        if self._memo.get(memo_key) == data:
            return True
        key = self._keys.get(replica_id)
        if key is None:
            return False
        if hashlib.blake2b(data, key=key, digest_size=self._size).digest() != signature:
            return False
        if len(self._memo) >= self._memo_max:
            self._memo.clear()
        self._memo[memo_key] = data
        return True


def make_crypto(
    members: tuple[str, ...], ed25519: bool = False, suite: str | None = None
) -> tuple[dict[str, Signer], Verifier]:
    if suite is not None:
        # The node's own classes: what a validator of a chain with this suite signs with.
        crypto = get_suite(suite)
        keys = {m: generate_keypair(suite) for m in members}
        suite_signers: dict[str, Signer] = {
            m: ValidatorSigner(m, key, crypto) for m, key in keys.items()
        }
        return suite_signers, ValidatorVerifier({m: k.public_key for m, k in keys.items()}, crypto)
    if ed25519:
        signers = {m: Ed25519Signer(m) for m in members}
        return dict(signers), Ed25519Verifier({m: s.verify_key for m, s in signers.items()})
    return {m: HashSigner(m) for m in members}, HashVerifier(members)
