"""The storage protocol under the ledger: what ``ledger.py`` needs from a key-value store.

Theory of operation
-------------------
* **Four operations.**  A ``Store`` reads one key (``get``), scans the keys under a prefix in
  ascending byte order (``iterator``, optionally from a ``start`` key), writes a list of
  changes atomically (``write``: a value puts, ``None`` deletes) and hands out a ``Snapshot``,
  a read view that later writes do not change.  ``close`` ends the store's use; a closed store
  or snapshot raises ``StoreClosed``.  Nothing else: the ledger needs no reverse scans, no
  ranges that end before the prefix does and no single puts (a one-change ``write`` is one).
* **Atomic and ordered.**  A ``write`` applies all of its changes or none, in order (a key put
  twice keeps the last value), and a ``get``, ``iterator`` or snapshot taken after it returns
  sees all of it.  An ``iterator`` sees the store as of its creation, as LevelDB's do.
* **Durability is the caller's choice.**  ``write(..., sync=True)`` returns once the change
  would survive a power loss, and makes every earlier write durable too (a log is synced
  up to its end).  ``sync=False`` survives the process being killed (the operating system has
  the bytes) but not the machine losing power.  The ledger syncs every block and every consensus
  record; a checkpoint certificate is written unsynced (see ``Ledger.store_checkpoint``).
* **Errors.**  ``StoreCorruption``: stored data failed its checksums.  ``StoreIOError`` (an
  ``OSError``): the storage could not do a read or write; a failed ``write`` applied none of
  its changes.  Both are ``StoreError``; the ledger maps them to its own errors where it can
  name a height.
* **Implementations.**  ``leveldb_store.LevelDBStore`` is what a node runs on.
  ``memory_store.MemoryStore`` is a sorted in-memory map with fault hooks (lose the unsynced
  writes, fail the next write): pure computation, like ``consensus/``, so the deterministic
  simulator may run a ledger over it.

This module and ``memory_store.py`` import no I/O, clock or thread module
(``tests/test_layering.py`` holds them to it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

# One change of a write: (key, value) puts the value, (key, None) deletes the key.
Change = tuple[bytes, bytes | None]


class StoreError(Exception):
    """A store that cannot serve a read or a write."""


class StoreCorruption(StoreError):
    """Stored data failed its checksums."""


class StoreIOError(StoreError, OSError):
    """The storage could not complete a read or write (a failed write applied nothing)."""


class StoreClosed(StoreError):
    """The store, or the snapshot, was closed."""


class ReadView(Protocol):
    """Reads of a store or of one of its snapshots."""

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or ``None`` when it is absent."""
        ...

    def iterator(
        self, *, prefix: bytes = b"", start: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` of every key that starts with ``prefix`` and is not below
        ``start``, in ascending byte order, as of this call."""
        ...


class Snapshot(ReadView, Protocol):
    """A consistent read view: what the store held when it was taken."""

    def close(self) -> None:
        """Release the view (a LevelDB snapshot pins old data until released)."""
        ...


class Store(ReadView, Protocol):
    """A sorted key-value store with atomic, optionally synced writes and snapshots."""

    def write(self, changes: Sequence[Change], *, sync: bool) -> None:
        """Apply ``changes`` atomically, in order; with ``sync``, durably before returning."""
        ...

    def snapshot(self) -> Snapshot:
        """A read view that later writes do not change."""
        ...

    def close(self) -> None:
        """End this store's use; later calls raise ``StoreClosed``."""
        ...


class WriteBatch:
    """Changes collected for one atomic ``Store.write``."""

    def __init__(self, store: Store, *, sync: bool) -> None:
        self._store = store
        self._sync = sync
        self.changes: list[Change] = []

    def put(self, key: bytes, value: bytes) -> None:
        self.changes.append((key, value))

    def delete(self, key: bytes) -> None:
        self.changes.append((key, None))

    def write(self) -> None:
        self._store.write(self.changes, sync=self._sync)


def prefix_end(prefix: bytes) -> bytes | None:
    """The first key after every key that starts with ``prefix``; ``None`` when no key is
    (the empty prefix, or one of only 0xff bytes)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def check_changes(changes: Sequence[Change]) -> None:
    """Refuse a write whose keys or values are not bytes, before any change is applied (as
    LevelDB refuses them when the batch is built)."""
    for key, value in changes:
        if not isinstance(key, bytes):
            raise TypeError(f"a store key is bytes, not {type(key).__name__}")
        if value is not None and not isinstance(value, bytes):
            raise TypeError(f"a store value is bytes or None, not {type(value).__name__}")
