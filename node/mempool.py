"""The mempool: admitted transactions waiting to be committed, bounded and deduplicated.

It is the node's memory of what it promised clients ("admitted, pending"), independent of the
consensus core's own request queue: it answers PENDING for a resubmission, feeds the status
report, and forgets a transaction when a block commits it or when it expires.  Capacity is a
hard bound (``size_max``); a full mempool refuses new transactions rather than evicting admitted
ones, so an admitted transaction is never silently dropped by this node.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from .tx import Transaction


@dataclass(frozen=True, slots=True)
class PendingTx:
    tx: Transaction
    admitted_at_ms: int


class Mempool:
    def __init__(self, size_max: int) -> None:
        if size_max < 1:
            raise ValueError("size_max must be >= 1")
        self.size_max = size_max
        self._pending: OrderedDict[bytes, PendingTx] = OrderedDict()
        self._by_sender: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._pending

    def pending_of(self, sender: str) -> int:
        """How many of this sender's transactions are pending here."""
        return self._by_sender.get(sender, 0)

    @property
    def free(self) -> int:
        return self.size_max - len(self._pending)

    def add(self, tx: Transaction, now_ms: int) -> bool:
        """False when full (the caller answers RESOURCE_EXHAUSTED); True when present after."""
        if tx.tx_id in self._pending:
            return True
        if len(self._pending) >= self.size_max:
            return False
        self._pending[tx.tx_id] = PendingTx(tx, now_ms)
        self._by_sender[tx.sender] = self._by_sender.get(tx.sender, 0) + 1
        return True

    def remove(self, tx_ids: Iterable[bytes]) -> int:
        removed = 0
        for tx_id in tx_ids:
            pending = self._pending.pop(tx_id, None)
            if pending is not None:
                removed += 1
                left = self._by_sender[pending.tx.sender] - 1
                if left:
                    self._by_sender[pending.tx.sender] = left
                else:
                    del self._by_sender[pending.tx.sender]
        return removed

    def expire(self, now_ms: int) -> list[Transaction]:
        """Drop and return transactions whose expiry has passed; they can never commit now."""
        expired = [p.tx for p in self._pending.values() if p.tx.expires_at_ms < now_ms]
        self.remove(tx.tx_id for tx in expired)
        return expired

    def oldest(self, count: int) -> list[PendingTx]:
        result: list[PendingTx] = []
        for pending in self._pending.values():
            if len(result) >= count:
                break
            result.append(pending)
        return result
