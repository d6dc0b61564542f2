"""Injected signing: the core never holds keys or picks an algorithm.

The node supplies Ed25519 (PyNaCl) implementations; tests and the simulator may supply cheaper
keyed-hash ones. Verification must be strict (reject non-canonical signatures and small-order
keys); that is the implementation's job.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Signer(Protocol):
    @property
    def replica_id(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


@runtime_checkable
class Verifier(Protocol):
    def verify(self, replica_id: str, data: bytes, signature: bytes) -> bool:
        """True only for a valid signature by a known member's key; never raises on bad input."""
        ...
