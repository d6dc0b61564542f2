"""Governance actions into a node's audit log, for validators and observers alike.

Every block a node executes may hold governance events (registrations, key and role changes,
proposals and votes: `audit.GOVERNANCE_PREFIXES`). The node hands them to its audit log as the
block is applied (`record`), and at start-up it replays from its ledger whatever was applied
after the log's last record of it (`replay`): a crash between the ledger's write and the log's
write must cost neither a record nor a duplicate. The log's writer thread builds the records;
here the events are only picked out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import failpoints
from .audit import GOVERNANCE_PREFIXES, AuditLog
from .ledger import Ledger
from .tx import TxError

REPLAY_BLOCKS_MAX = 100_000  # beyond this, the log records a gap instead of the oldest blocks


class GovernanceAudit:
    """One node's governance records: the audit log they go to and the ledger they come from."""

    def __init__(self, audit: AuditLog, ledger: Ledger) -> None:
        self.audit = audit
        self.ledger = ledger

    def record(
        self,
        height: int,
        events: Sequence[Mapping[str, Any]],
        envelopes: Sequence[bytes],
        *,
        replayed: bool = False,
        senders: Sequence[str] = (),
    ) -> None:
        """The governance events of block ``height``; ``senders`` (per transaction index, from
        the execution that just ran) spares decoding the envelopes a second time."""
        chosen: list[tuple[Mapping[str, Any], str]] = []
        for event in events:
            if not event["kind"].startswith(GOVERNANCE_PREFIXES):
                continue
            tx_index = event["tx_index"]
            if tx_index < len(senders):
                sender = senders[tx_index]
            else:
                try:
                    sender = self.ledger.decoder.decode(envelopes[tx_index]).sender
                except (TxError, IndexError):
                    sender = ""  # an event always comes from a decoded transaction
            failpoints.hit("audit.before-write")
            chosen.append((event, sender))
        self.audit.governance_events(height, chosen, replayed=replayed)
        self.audit.governed_through(height)

    def replay(self) -> None:
        """Governance of blocks executed after the log's last record of it, read back from the
        ledger; records already written are not repeated."""
        recorded = self.audit.recorded
        top = self.ledger.height
        first = (recorded.ledger_height or 0) + 1
        if top - first + 1 > REPLAY_BLOCKS_MAX:
            self.audit.gap(first, top - REPLAY_BLOCKS_MAX)
            first = top - REPLAY_BLOCKS_MAX + 1
        for height in range(first, top + 1):
            block = self.ledger.get_block(height)
            if block is None:
                break
            events = [
                event
                for event in block.events
                if not recorded.take((height, event["tx_id"].hex(), event["kind"]))
            ]
            self.record(height, events, block.txs, replayed=True)
        self.audit.governed_through(top)
