"""Shared fixtures for node tests: participants with keys and a resolver over them."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ibledger.node.crypto import (
    ED25519_SHA256,
    SUITE_NAMES,
    CryptoSuite,
    KeyPair,
    generate_keypair,
    get_suite,
)
from ibledger.node.tx import Transaction, build_transaction, decode_envelope
from ibledger.node.verifier import SignerKey

CHAIN_ID = "ibledger-test"


@dataclass
class Directory:
    """Participants and their keys, standing in for the identity registry."""

    keys: dict[str, KeyPair] = field(default_factory=dict)
    records: dict[bytes, SignerKey] = field(default_factory=dict)
    suite: str = ED25519_SHA256

    @property
    def crypto(self) -> CryptoSuite:
        return get_suite(self.suite)

    def add(self, participant: str, keypair: KeyPair | None = None) -> KeyPair:
        keypair = keypair or generate_keypair(self.suite)
        self.keys[participant] = keypair
        self.records[keypair.key_id] = SignerKey(participant, keypair.public_key)
        return keypair

    def decode(self, envelope: bytes) -> Transaction:
        """Decode with the suite's hash, as the ledger's decoder does."""
        return decode_envelope(envelope, hash_fn=self.crypto.hash)

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


@pytest.fixture(params=SUITE_NAMES)
def suite_name(request: pytest.FixtureRequest) -> str:
    """Each test that takes a directory runs once per crypto suite."""
    return str(request.param)


@pytest.fixture
def directory(suite_name: str) -> Directory:
    directory = Directory(suite=suite_name)
    directory.add("BANK_A")
    directory.add("BANK_B")
    return directory


def weak_public_key(suite: str) -> bytes:
    """A key encoding every verifier must refuse: Ed25519's identity point (small order), or
    SM2's point at infinity."""
    return bytes([1]) + bytes(31) if suite == ED25519_SHA256 else b"\x04" + bytes(64)


def non_canonical(suite: str, signature: bytes) -> bytes:
    """The same signature with its scalar out of range: Ed25519's S + L, SM2's s = n."""
    if suite == ED25519_SHA256:
        s = int.from_bytes(signature[32:], "little") + ED25519_L
        return signature[:32] + s.to_bytes(32, "little")
    return signature[:32] + SM2_N.to_bytes(32, "big")


ED25519_L = 2**252 + 27742317777372353535851937790883648493
SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GENESIS_TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def make_genesis(directory: Directory, admin: str = "ADMIN") -> dict[str, object]:
    """A genesis with one consortium admin, whose key the directory holds."""
    keypair = directory.keys.get(admin) or directory.add(admin)
    return {
        "chain_id": CHAIN_ID,
        "crypto_suite": directory.suite,
        "genesis_time_ms": GENESIS_TIME_MS,
        "participants": [
            {
                "id": admin,
                "name": "Consortium operator",
                "roles": ["consortium_admin"],
                "keys": [{"suite": directory.suite, "public_key": keypair.public_key.hex()}],
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
        keys=[{"suite": directory.suite, "public_key": keypair.public_key.hex()}],
    )
