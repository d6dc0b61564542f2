"""The ``Store`` (``store.py``) a node runs on: one LevelDB database through plyvel.

* **Trust nothing on disk.**  The database is opened with ``paranoid_checks=True`` and every
  read, of the database or of a snapshot, verifies LevelDB's block checksums: LevelDB checks a
  block only when it loads it from disk, so one unverified read would put a corrupt block in
  the cache for all later reads.
* **Tuned for the ledger.**  Admission and execution look up keys that mostly do not exist (a
  new transaction's id, a sender's next nonce): a Bloom filter answers those misses without
  reading a table block from every level; the block cache is 64 MiB instead of 8.
* **Errors.**  plyvel's corruption, I/O and other errors become ``StoreCorruption``,
  ``StoreIOError`` and ``StoreError``, their messages kept; use after ``close`` is
  ``StoreClosed`` (plyvel raises ``RuntimeError`` for that).  A failed write applied nothing:
  LevelDB writes a batch as one log record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import plyvel

from .store import Change, StoreClosed, StoreCorruption, StoreError, StoreIOError, prefix_end

BLOOM_FILTER_BITS = 10  # about 1 % false positives per table
BLOCK_CACHE_BYTES = 64 * 1024 * 1024  # LevelDB's default is 8 MiB


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
    return _translated(raw, source)


def _translated(raw: Any, source: Any) -> Iterator[tuple[bytes, bytes]]:
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

    def __init__(self, db: plyvel.DB) -> None:
        self._db = db

    @classmethod
    def open(cls, path: str | Path, *, must_be_new: bool = False) -> LevelDBStore:
        """Open (creating if missing) the database at ``path``; ``must_be_new`` refuses one
        that already exists. Raises ``StoreCorruption`` when LevelDB's checks refuse it,
        ``StoreIOError`` when the files cannot be used (locked by another process, say)."""
        Path(path).mkdir(parents=True, exist_ok=True)
        try:
            db = plyvel.DB(
                str(path),
                create_if_missing=True,
                error_if_exists=must_be_new,
                paranoid_checks=True,
                bloom_filter_bits=BLOOM_FILTER_BITS,
                lru_cache_size=BLOCK_CACHE_BYTES,
            )
        except plyvel.CorruptionError as exc:
            raise StoreCorruption(f"LevelDB refused to open the database: {exc}") from exc
        except plyvel.IOError as exc:
            raise StoreIOError(str(exc)) from exc
        except plyvel.Error as exc:
            raise StoreError(f"LevelDB refused to open the database: {exc}") from exc
        return cls(db)

    def get(self, key: bytes) -> bytes | None:
        return _get(self._db, key)

    def iterator(
        self, *, prefix: bytes = b"", start: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        return _iterator(self._db, prefix, start)

    def write(self, changes: Sequence[Change], *, sync: bool) -> None:
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
