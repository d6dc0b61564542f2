"""Consensus signing: the node's side of the core's injected Signer and Verifier.

Validators sign consensus messages with their Ed25519 validator key (the suite genesis names);
the verifier knows every validator's public key from genesis and answers False, never raising,
for unknown replicas, weak keys or malformed signatures — consensus treats Byzantine input as an
operating condition.
"""

from __future__ import annotations

from collections.abc import Mapping

from .crypto import CryptoError, CryptoSuite, KeyPair


class ValidatorSigner:
    """Signs with this node's validator key."""

    def __init__(self, replica_id: str, keypair: KeyPair, suite: CryptoSuite) -> None:
        self._replica_id = replica_id
        self._seed = keypair.seed
        self._suite = suite

    @property
    def replica_id(self) -> str:
        return self._replica_id

    def sign(self, data: bytes) -> bytes:
        return self._suite.sign(self._seed, data)


class ValidatorVerifier:
    """Verifies signatures of the validators named in genesis."""

    def __init__(self, public_keys: Mapping[str, bytes], suite: CryptoSuite) -> None:
        for replica_id, public_key in public_keys.items():
            try:
                suite.check_public_key(public_key)
            except CryptoError as exc:
                raise CryptoError(exc.code, f"validator {replica_id}: {exc.message}") from None
        self._keys = dict(public_keys)
        self._suite = suite

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def verify(self, replica_id: str, data: bytes, signature: bytes) -> bool:
        public_key = self._keys.get(replica_id)
        if public_key is None or not isinstance(signature, bytes):
            return False
        return self._suite.verify(public_key, data, signature)
