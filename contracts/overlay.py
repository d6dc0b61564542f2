"""Pending writes over a sorted state view: the one merge every layer of execution uses.

A transaction's ``Store`` buffers its writes over the block's view; the ledger's block overlay
buffers the writes of earlier transactions of the block over committed state; the test harness
does the same over memory. All three answer a prefix scan by merging the view's sorted scan with
the pending writes (a pending ``None`` is a delete and hides the view's entry), and all three must
agree byte for byte, since the order of a scan decides the order of events and writes on every
replica. ``merge_scan`` is that merge, written once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

__all__ = ["BlockOverlay", "SortedView", "merge_scan"]


class SortedView(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every entry under ``prefix``, in ascending key order."""
        ...


def merge_scan(
    base: Iterable[tuple[bytes, bytes]],
    pending: Mapping[bytes, bytes | None],
    prefix: bytes,
) -> Iterator[tuple[bytes, bytes]]:
    """``base`` (sorted, all under ``prefix``) with ``pending`` applied, in ascending key order.

    Costs one sort of the pending keys under the prefix, then a single pass over the base, so a
    scan over committed state stays lazy however large it is.
    """
    overlay = sorted((key, value) for key, value in pending.items() if key.startswith(prefix))
    index = 0
    for key, value in base:
        while index < len(overlay) and overlay[index][0] < key:
            pending_key, pending_value = overlay[index]
            index += 1
            if pending_value is not None:
                yield pending_key, pending_value
        if index < len(overlay) and overlay[index][0] == key:
            pending_value = overlay[index][1]
            index += 1
            if pending_value is not None:
                yield key, pending_value
            continue
        yield key, value
    for pending_key, pending_value in overlay[index:]:
        if pending_value is not None:
            yield pending_key, pending_value


class BlockOverlay:
    """The writes of a block's earlier transactions on top of a base view (None is a delete)."""

    def __init__(self, base: SortedView) -> None:
        self._base = base
        self.pending: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self.pending:
            return self.pending[key]
        return self._base.get(key)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return merge_scan(self._base.scan(prefix), self.pending, prefix)

    def apply(self, writes: Iterable[tuple[bytes, bytes | None]]) -> None:
        for key, value in writes:
            self.pending[key] = value

    def writes(self) -> tuple[tuple[bytes, bytes | None], ...]:
        """The block's net write set, sorted by key."""
        return tuple(sorted(self.pending.items()))
