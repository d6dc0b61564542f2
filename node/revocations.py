"""The revoked TLS certificates in force, as this node's ledger says (`contracts/revocations.py`).

Governance writes ``pki/revoked/<sha256>`` in a block; the node reloads the list when it opens
its ledger and after executing a block that revoked a certificate, so every node refuses the
certificate from the same height on. ``generation`` moves with every change, so a long-lived
peer stream can re-check its caller only when the list changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ibledger.contracts.revocations import REVOKED_PREFIX

if TYPE_CHECKING:
    from .ledger import Ledger

REVOKED_EVENT = "governance.certificate_revoked"


class RevocationList:
    """SHA-256 fingerprints (hex) of revoked certificates; one writer, the node's event loop."""

    def __init__(self) -> None:
        self.fingerprints: frozenset[str] = frozenset()
        self.generation = 0

    def load(self, ledger: Ledger) -> frozenset[str]:
        """Read the list from the ledger's state; the fingerprints added since the last load."""
        found = frozenset(
            key[len(REVOKED_PREFIX) :].decode("ascii", "replace")
            for key, _ in ledger.state().scan(REVOKED_PREFIX)
        )
        added = found - self.fingerprints
        if found != self.fingerprints:
            self.fingerprints = found
            self.generation += 1
        return added

    def __contains__(self, fingerprint: object) -> bool:
        return fingerprint in self.fingerprints


def revokes(events: Iterable[Mapping[str, Any]]) -> bool:
    """Whether a block's events revoked a certificate (the list must be read again)."""
    return any(event["kind"] == REVOKED_EVENT for event in events)
