"""The ``Store`` (``store.py``) a node runs on: one LevelDB database through plyvel.

* **Trust nothing on disk.**  The database is opened with ``paranoid_checks=True`` and every
  read, of the database or of a snapshot, verifies LevelDB's block checksums: LevelDB checks a
  block only when it loads it from disk, so one unverified read would put a corrupt block in
  the cache for all later reads.
* **Tuned for the ledger.**  Admission and execution look up keys that mostly do not exist (a
  new transaction's id, a sender's next nonce): a Bloom filter answers those misses without
  reading a table block from every level; the block cache is 64 MiB instead of 8.
* **Tables are not compressed.**  Most of what the ledger stores is hashes, signatures and
  keys, which Snappy hardly shrinks, yet LevelDB compresses every table block it writes and
  decompresses every one it reads again, in each compaction: on a chain of 400,000
  transactions the compaction thread took 18 % of a core per node, a third of its samples in
  Snappy's compressor alone.
  Tables written before keep their compressed blocks and read as ever (each block says how it
  is stored).
* **A lost log tail is detected.**  LevelDB recovers from a torn last record by dropping it,
  so a log cut short after the fact (a truncated copy, a faulty disk or controller) opens
  without complaint, silently missing writes that were reported durable: a validator would
  forget blocks and votes.  Every synced write therefore carries a counter
  (``SYNCED_WRITES_KEY``), and after LevelDB's sync returns the store records the counter in a
  small witness file beside the tables (``WITNESS_NAME``: two checksummed slots, written in
  turn, so a torn write leaves the other).  The witness is not synced itself: it may lag the
  database after a power loss, never lead it.  A database whose counter is below its witness's
  lost synced writes, and ``open`` refuses it with ``StoreCorruption``.  A missing witness is
  accepted (a database made before the witness existed) and written from then on.
* **Errors.**  plyvel's corruption, I/O and other errors become ``StoreCorruption``,
  ``StoreIOError`` and ``StoreError``, their messages kept; use after ``close`` is
  ``StoreClosed`` (plyvel raises ``RuntimeError`` for that).  A failed write applied nothing:
  LevelDB writes a batch as one log record.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import plyvel

from .store import Change, StoreClosed, StoreCorruption, StoreError, StoreIOError, prefix_end

BLOOM_FILTER_BITS = 10  # about 1 % false positives per table
BLOCK_CACHE_BYTES = 64 * 1024 * 1024  # LevelDB's default is 8 MiB
# Below every key the ledger writes (storage_keys.py): the store's own bookkeeping.
SYNCED_WRITES_KEY = b"\x00store/synced-writes"
WITNESS_NAME = "IBLEDGER-SYNCED-WRITES"
_WITNESS_MAGIC = b"ibsw"
_WITNESS_SLOT = struct.Struct(">4sQ16s")  # magic, counter, first 16 bytes of SHA-256 of both
_WITNESS_SLOT_SPACING = 64  # the two slots never share a 64-byte span


class _Witness:
    """The file that remembers how many synced writes the database has made durable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self.counter = self._read()
        except BaseException:
            os.close(self._fd)
            raise

    def _read(self) -> int:
        raw = os.pread(self._fd, 2 * _WITNESS_SLOT_SPACING, 0)
        if not raw:
            return 0
        counters: list[int] = []
        for slot in range(2):
            at = slot * _WITNESS_SLOT_SPACING
            piece = raw[at : at + _WITNESS_SLOT.size]
            if len(piece) < _WITNESS_SLOT.size:
                continue
            magic, counter, check = _WITNESS_SLOT.unpack(piece)
            if magic == _WITNESS_MAGIC and check == _slot_check(counter):
                counters.append(counter)
        if not counters:
            raise StoreCorruption(
                f"the synced-write witness {self.path.name} is damaged: neither slot verifies"
            )
        return max(counters)

    def record(self, counter: int) -> None:
        slot = _WITNESS_SLOT.pack(_WITNESS_MAGIC, counter, _slot_check(counter))
        os.pwrite(self._fd, slot, (counter % 2) * _WITNESS_SLOT_SPACING)
        self.counter = counter

    def close(self) -> None:
        os.close(self._fd)


def _slot_check(counter: int) -> bytes:
    return hashlib.sha256(_WITNESS_MAGIC + counter.to_bytes(8, "big")).digest()[:16]


def _store_error(exc: plyvel.Error) -> StoreError:
    if isinstance(exc, plyvel.CorruptionError):
        return StoreCorruption(f"LevelDB reports corruption: {exc}")
    if isinstance(exc, plyvel.IOError):
        return StoreIOError(f"LevelDB cannot read or write: {exc}")
    return StoreError(f"LevelDB error: {exc}")


def _get(source: Any, key: bytes) -> bytes | None:
    try:
        value: bytes | None = source.get(key, verify_checksums=True)
    except plyvel.Error as exc:
        raise _store_error(exc) from exc
    except RuntimeError as exc:
        raise StoreClosed(str(exc)) from exc
    return value


def _iterator(source: Any, prefix: bytes, start: bytes | None) -> Iterator[tuple[bytes, bytes]]:
    # Created here, not on the first next(): a LevelDB iterator reads the database as of its
    # creation, and the protocol promises the view as of the call.
    try:
        if start is not None:
            raw = source.iterator(
                start=max(start, prefix), stop=prefix_end(prefix), verify_checksums=True
            )
        elif prefix:
            raw = source.iterator(prefix=prefix, verify_checksums=True)
        else:
            raw = source.iterator(verify_checksums=True)
    except plyvel.Error as exc:
        raise _store_error(exc) from exc
    except RuntimeError as exc:
        raise StoreClosed(str(exc)) from exc
    return _translated(raw, hide_bookkeeping=SYNCED_WRITES_KEY.startswith(prefix))


def _translated(raw: Any, *, hide_bookkeeping: bool) -> Iterator[tuple[bytes, bytes]]:
    with raw:
        while True:
            try:
                item: tuple[bytes, bytes] = next(raw)
            except StopIteration:
                return
            except plyvel.Error as exc:
                raise _store_error(exc) from exc
            except RuntimeError as exc:
                raise StoreClosed(str(exc)) from exc
            if hide_bookkeeping and item[0] == SYNCED_WRITES_KEY:
                continue
            yield item


class LevelDBSnapshot:
    """A LevelDB snapshot: a read view that pins the data it sees until closed."""

    def __init__(self, snapshot: Any) -> None:
        self._snapshot = snapshot

    def get(self, key: bytes) -> bytes | None:
        return _get(self._snapshot, key)

    def iterator(
        self, *, prefix: bytes = b"", start: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        return _iterator(self._snapshot, prefix, start)

    def close(self) -> None:
        self._snapshot.close()


class LevelDBStore:
    """A ``Store`` over one LevelDB database."""

    def __init__(self, db: plyvel.DB, witness: _Witness | None = None, synced: int = 0) -> None:
        self._db = db
        self._witness = witness
        self._synced = synced  # the counter of the last synced write
        self._synced_lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path, *, must_be_new: bool = False) -> LevelDBStore:
        """Open (creating if missing) the database at ``path``; ``must_be_new`` refuses one
        that already exists. Raises ``StoreCorruption`` when LevelDB's checks refuse it or its
        log lost synced writes, ``StoreIOError`` when the files cannot be used (locked by
        another process, say)."""
        Path(path).mkdir(parents=True, exist_ok=True)
        try:
            db = plyvel.DB(
                str(path),
                create_if_missing=True,
                error_if_exists=must_be_new,
                paranoid_checks=True,
                bloom_filter_bits=BLOOM_FILTER_BITS,
                lru_cache_size=BLOCK_CACHE_BYTES,
                compression=None,
            )
        except plyvel.CorruptionError as exc:
            raise StoreCorruption(f"LevelDB refused to open the database: {exc}") from exc
        except plyvel.IOError as exc:
            raise StoreIOError(str(exc)) from exc
        except plyvel.Error as exc:
            raise StoreError(f"LevelDB refused to open the database: {exc}") from exc
        try:
            synced = int.from_bytes(_get(db, SYNCED_WRITES_KEY) or b"", "big")
            witness = _Witness(Path(path) / WITNESS_NAME)
        except (StoreError, OSError) as exc:
            db.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreIOError(f"cannot use the synced-write witness: {exc}") from exc
        if witness.counter > synced:
            witness.close()
            db.close()
            raise StoreCorruption(
                f"the database lost synced writes: {witness.counter} were made durable but its "
                f"log ends after {synced} (the tail of a LevelDB log is missing)"
            )
        return cls(db, witness, synced)

    def get(self, key: bytes) -> bytes | None:
        return _get(self._db, key)

    def iterator(
        self, *, prefix: bytes = b"", start: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        return _iterator(self._db, prefix, start)

    def write(self, changes: Sequence[Change], *, sync: bool) -> None:
        if not sync or self._witness is None:
            self._write(changes, sync=sync)
            return
        with self._synced_lock:
            counter = self._synced + 1
            self._write([*changes, (SYNCED_WRITES_KEY, counter.to_bytes(8, "big"))], sync=True)
            self._synced = counter
            # The write is durable and must be reported so; a witness that lags only makes the
            # check for a later lost tail weaker (it rewrites slots already allocated, so a
            # full disk does not fail it).
            with contextlib.suppress(OSError):
                self._witness.record(counter)

    def _write(self, changes: Sequence[Change], *, sync: bool) -> None:
        try:
            batch = self._db.write_batch(sync=sync)
            for key, value in changes:
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
            batch.write()
        except plyvel.Error as exc:
            raise _store_error(exc) from exc
        except RuntimeError as exc:
            raise StoreClosed(str(exc)) from exc

    def snapshot(self) -> LevelDBSnapshot:
        try:
            return LevelDBSnapshot(self._db.snapshot())
        except RuntimeError as exc:
            raise StoreClosed(str(exc)) from exc

    def close(self) -> None:
        self._db.close()
        if self._witness is not None:
            self._witness.close()
            self._witness = None
