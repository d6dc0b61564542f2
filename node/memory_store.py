"""A ``Store`` (``store.py``) in memory, with the faults a disk has: for tests and simulation.

Theory of operation
-------------------
* **A sorted map.**  A dict for lookups and a sorted list of its keys for prefix scans.
  Snapshots and iterators share them copy-on-write: taking a view marks the current
  generation shared, and the next write copies it before changing it.  So a view costs
  nothing to take and a write after one costs a copy of the map, once per generation.
* **What survives what.**  The contents outlive a handle (``MemoryStore``): ``reopen`` is the
  next process opening the store after this one ended, cleanly or killed, which loses nothing
  that a write returned for (the operating system holds the bytes; LevelDB's recovery then
  writes them into a synced table).  ``crash`` is the machine losing power: every write since
  the last ``sync=True`` one is lost, except for the first ``keep_unsynced`` of them, as a log
  loses a suffix and each write is one log record, whole or absent.  Both return the new
  handle and close the old one, so a ledger still holding it cannot write after its process
  "died".
* **A failing disk.**  ``fail_next_write`` makes the next write raise ``StoreIOError`` and
  apply nothing; like LevelDB after a failed log write, the handle then refuses every later
  write with the same error (reads still work) until the store is reopened.
* **Pure.**  No I/O, clock or thread: the deterministic simulator may use it.  One thread at a
  time: the ledger serialises its writes, and nothing here locks.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator, Sequence

from .store import Change, StoreClosed, StoreIOError, check_changes


def _scan(
    data: dict[bytes, bytes], keys: list[bytes], prefix: bytes, start: bytes | None
) -> Iterator[tuple[bytes, bytes]]:
    """Over one generation, which no write changes once a view shares it."""
    index = bisect_left(keys, prefix if start is None or start < prefix else start)
    while index < len(keys):
        key = keys[index]
        if not key.startswith(prefix):
            return
        yield key, data[key]
        index += 1


class MemorySnapshot:
    """A read view over one generation of a ``MemoryStore``'s contents."""

    def __init__(self, data: dict[bytes, bytes], keys: list[bytes]) -> None:
        self._data = data
        self._keys = keys
        self._closed = False

    def get(self, key: bytes) -> bytes | None:
        if self._closed:
            raise StoreClosed("the snapshot is closed")
        return self._data.get(key)

    def iterator(
        self, *, prefix: bytes = b"", start: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        if self._closed:
            raise StoreClosed("the snapshot is closed")
        return _scan(self._data, self._keys, prefix, start)

    def close(self) -> None:
        self._closed = True


class _Contents:
    """What the storage holds, shared by the handles opened on it one after another."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.keys: list[bytes] = []  # sorted
        self.shared = False  # a view holds data and keys: copy them before the next change
        # Per write since the last synced one, the values it replaced (None: absent), to undo it.
        self.unsynced: list[list[Change]] = []
        self.handle: MemoryStore | None = None  # the open handle, if any

    def view(self) -> MemorySnapshot:
        self.shared = True
        return MemorySnapshot(self.data, self.keys)

    def apply(self, changes: Sequence[Change]) -> list[Change]:
        """Apply the changes in order; the values they replaced, in the same order."""
        if self.shared:
            self.data, self.keys, self.shared = dict(self.data), list(self.keys), False
        replaced: list[Change] = []
        for key, value in changes:
            old = self.data.get(key)
            replaced.append((key, old))
            if value is None:
                if old is not None:
                    del self.data[key]
                    del self.keys[bisect_left(self.keys, key)]
            else:
                if old is None:
                    insort(self.keys, key)
                self.data[key] = value
        return replaced

    def undo(self, replaced: list[Change]) -> None:
        self.apply(replaced[::-1])


class MemoryStore:
    """An open handle on in-memory contents; ``MemoryStore()`` starts with none."""

    def __init__(self, contents: _Contents | None = None) -> None:
        self._contents = contents if contents is not None else _Contents()
        self._contents.handle = self
        self._closed = False
        self._write_failure: str | None = None  # sticky once a write failed
        self._fail_next: str | None = None

    def _check_open(self) -> _Contents:
        if self._closed:
            raise StoreClosed("the memory store is closed")
        return self._contents

    # --- the Store protocol ---------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        return self._check_open().data.get(key)

    def iterator(
        self, *, prefix: bytes = b"", start: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        # Over a view taken now: the protocol promises the store as of the call.
        return self._check_open().view().iterator(prefix=prefix, start=start)

    def write(self, changes: Sequence[Change], *, sync: bool) -> None:
        contents = self._check_open()
        if self._fail_next is not None:
            self._write_failure, self._fail_next = self._fail_next, None
        if self._write_failure is not None:
            raise StoreIOError(self._write_failure)
        check_changes(changes)
        replaced = contents.apply(changes)
        if sync:
            contents.unsynced.clear()  # a synced write makes every earlier one durable too
        else:
            contents.unsynced.append(replaced)

    def snapshot(self) -> MemorySnapshot:
        return self._check_open().view()

    def close(self) -> None:
        self._closed = True

    # --- faults and restarts --------------------------------------------------------------

    @property
    def unsynced_writes(self) -> int:
        """How many writes a ``crash`` now would lose."""
        return len(self._contents.unsynced)

    def fail_next_write(self, reason: str = "injected storage failure") -> None:
        """Make the next write raise ``StoreIOError(reason)``, and every one after it, until
        the store is reopened."""
        self._check_open()
        self._fail_next = reason

    def reopen(self) -> MemoryStore:
        """The store as the next process opens it: every write that returned is kept (and
        durable from now on). Closes this handle."""
        contents = self._take_contents()
        contents.unsynced.clear()
        return MemoryStore(contents)

    def crash(self, keep_unsynced: int = 0) -> MemoryStore:
        """The store after the machine lost power, as the next process opens it: the writes
        since the last synced one are lost, except for the first ``keep_unsynced`` of them.
        Closes this handle."""
        unsynced = self._contents.unsynced
        if not 0 <= keep_unsynced <= len(unsynced):
            raise ValueError(f"keep_unsynced must be 0..{len(unsynced)}, got {keep_unsynced}")
        contents = self._take_contents()
        for replaced in reversed(unsynced[keep_unsynced:]):
            contents.undo(replaced)
        unsynced.clear()
        return MemoryStore(contents)

    def _take_contents(self) -> _Contents:
        if self._contents.handle is not self:
            raise StoreClosed("a newer handle has the store open")
        self._closed = True
        self._contents.handle = None
        return self._contents
