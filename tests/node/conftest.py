"""Shared fixtures for node tests: participants with keys and a resolver over them."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ibledger.node.crypto import KeyPair, generate_keypair
from ibledger.node.tx import build_transaction
from ibledger.node.verifier import SignerKey

CHAIN_ID = "ibledger-test"


@dataclass
class Directory:
    """Participants and their keys, standing in for the identity registry."""

    keys: dict[str, KeyPair] = field(default_factory=dict)
    records: dict[bytes, SignerKey] = field(default_factory=dict)

    def add(self, participant: str, keypair: KeyPair | None = None) -> KeyPair:
        keypair = keypair or generate_keypair()
        self.keys[participant] = keypair
        self.records[keypair.key_id] = SignerKey(participant, keypair.public_key)
        return keypair

    def resolve(self, key_id: bytes) -> SignerKey | None:
        return self.records.get(key_id)

    def tx(self, sender_id: str, op: str = "demo.noop", nonce: int = 1, **args: object) -> bytes:
        return build_transaction(
            self.keys[sender_id],
            chain_id=CHAIN_ID,
            sender=sender_id,
            operation=op,
            args=args,
            nonce=nonce,
            expires_at_ms=GENESIS_TIME_MS + 12 * 3600 * 1000,
        )


@pytest.fixture
def directory() -> Directory:
    directory = Directory()
    directory.add("BANK_A")
    directory.add("BANK_B")
    return directory


GENESIS_TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def make_genesis(directory: Directory, admin: str = "ADMIN") -> dict[str, object]:
    """A genesis with one consortium admin, whose key the directory holds."""
    keypair = directory.keys.get(admin) or directory.add(admin)
    return {
        "chain_id": CHAIN_ID,
        "crypto_suite": "ed25519-sha256",
        "genesis_time_ms": GENESIS_TIME_MS,
        "participants": [
            {
                "id": admin,
                "name": "Consortium operator",
                "roles": ["consortium_admin"],
                "keys": [{"suite": "ed25519-sha256", "public_key": keypair.public_key.hex()}],
            }
        ],
        "governance": {"admin_quorum": 1},
    }


def register_tx(directory: Directory, participant: str, nonce: int, admin: str = "ADMIN") -> bytes:
    """The admin registers ``participant`` as a registrar with a fresh key."""
    keypair = directory.add(participant)
    return directory.tx(
        admin,
        "identity.register",
        nonce=nonce,
        id=participant,
        name=f"Registrar {participant}",
        roles=["registrar"],
        keys=[{"suite": "ed25519-sha256", "public_key": keypair.public_key.hex()}],
    )
