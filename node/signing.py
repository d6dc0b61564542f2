"""Consensus signing: the node's side of the core's injected Signer and Verifier.

Validators sign consensus messages with their validator key (the suite genesis names); the
verifier knows the public key of every validator of one validator set and answers False, never
raising, for unknown replicas, weak keys or malformed signatures — consensus treats Byzantine
input as an operating condition.

Each validator set (an epoch of ``contracts/membership.py``) signs under its own domain, the
epoch number before the signed bytes (``signing_domain``; the genesis set, epoch 0, signs the
bare bytes). A message or certificate of one set therefore never verifies for another, even
where a validator and its key belong to both: an old set's VIEW-CHANGE replayed after a change
means nothing to the new set.
"""

from __future__ import annotations

from collections.abc import Mapping

from .crypto import CryptoError, CryptoSuite, KeyPair


def signing_domain(epoch: int) -> bytes:
    """What a validator set's signatures cover before the message's own bytes."""
    return b"epoch:%d:" % epoch if epoch else b""


class ValidatorSigner:
    """Signs with this node's validator key, as a member of validator set ``epoch``."""

    def __init__(
        self, replica_id: str, keypair: KeyPair, suite: CryptoSuite, epoch: int = 0
    ) -> None:
        self._replica_id = replica_id
        self._seed = keypair.seed
        self._suite = suite
        self._domain = signing_domain(epoch)

    @property
    def replica_id(self) -> str:
        return self._replica_id

    def sign(self, data: bytes) -> bytes:
        return self._suite.sign(self._seed, self._domain + data)


class ValidatorVerifier:
    """Verifies signatures of the validators of one validator set (``epoch``)."""

    def __init__(
        self, public_keys: Mapping[str, bytes], suite: CryptoSuite, epoch: int = 0
    ) -> None:
        for replica_id, public_key in public_keys.items():
            try:
                suite.check_public_key(public_key)
            except CryptoError as exc:
                raise CryptoError(exc.code, f"validator {replica_id}: {exc.message}") from None
        self._keys = dict(public_keys)
        self._suite = suite
        self._domain = signing_domain(epoch)

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def verify(self, replica_id: str, data: bytes, signature: bytes) -> bool:
        public_key = self._keys.get(replica_id)
        if public_key is None or not isinstance(signature, bytes):
            return False
        return self._suite.verify(public_key, self._domain + data, signature)
