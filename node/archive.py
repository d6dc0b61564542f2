"""Contract state as of a past height: a node-side index of every block's state writes.

Theory of operation
-------------------
The ledger keeps the latest value of each contract key (``s/``) and, per block, the block's
write set (``w/<height>``).  A question "as of height H" needs, for each key it reads, the
last write at or below H.  Scanning write sets backwards from H would cost a read of every
block; instead each block's batch also writes one index entry per key it writes::

    a/<escaped key> 0x00 0x01 <2^64 - 1 - height, 8 bytes big-endian>
        ->  0x01 + value      (the key was set by that block)
        ->  0x00              (the key was deleted by that block)

and the metadata record ``m/archive_height``: every block from 0 up to it is indexed.

* **Outside consensus.**  The entries are not contract state and not in the write set, so the
  state root, the block format and the consensus rules are unchanged: a replica with or
  without the index computes the same roots.  They ride in the block's own atomic batch, so a
  crash leaves a block and its entries together or neither.
* **Seek, never scan history.**  The height is stored inverted, so the entries of one key run
  newest first and "the latest write at or below H" is the first entry at or after
  ``<key prefix> + inverted(H)``: one seek per point read.  A prefix scan reads the versions in
  order with one iterator and seeks over a long run of versions that cannot be the answer
  (``RESEEK_AFTER``), so a key with a long history costs a seek or two, not its history.
* **Order-preserving key escape.**  Contract keys are bytes; a 0x00 in a key is written as
  0x00 0xff and the key ends with 0x00 0x01, so index entries sort by contract key exactly as
  ``s/`` keys do and a contract prefix maps to an index prefix.
* **From genesis.**  A node keeps every block from genesis, so every height from 0 to the tip
  can be answered.  A ledger written before the index existed, or restored from a backup (a
  backup's allow-list leaves the index out: nothing in a backup could vouch for it), is indexed
  from its verified write sets when it is opened (``catch_up``), resumably, in batches.  Until
  ``m/archive_height`` reaches a height, that height is unavailable (``HEIGHT_UNAVAILABLE``);
  above the tip is ``HEIGHT_IN_FUTURE``.
* **Cost.**  One more put per state write per block (the write's value a second time, outside
  the state root), and the disk to hold every version.  Nothing is pruned, like the blocks.

This module imports no I/O, clock or thread module: it works over any ``store.Store``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ibledger.contracts.codec import CodecError, canonical_decode

from . import storage_keys as keys
from .store import Change, ReadView, Store, WriteBatch

__all__ = [
    "AsOfState",
    "block_changes",
    "catch_up",
    "indexed_height",
    "is_archive_key",
]

_TERMINATOR = b"\x00\x01"  # after the escaped key: sorts before any longer key's next byte
_HEIGHT_MAX = 2**64 - 1
_SET = b"\x01"
_DELETED = b"\x00"
_PAST_VERSIONS = b"\xff" * keys.HEIGHT_SIZE + b"\x00"  # after every version of one key
CATCH_UP_BATCH_BYTES = 4 * 1024 * 1024
# Versions of one key a prefix scan steps over before it seeks past them (a seek costs about
# as much as reading a few entries).
RESEEK_AFTER = 8


class ArchiveError(Exception):
    """A stored write set that does not decode while indexing (the ledger verified it)."""


def _escape(key: bytes) -> bytes:
    return key.replace(b"\x00", b"\x00\xff")


def _unescape(escaped: bytes) -> bytes:
    return escaped.replace(b"\x00\xff", b"\x00")


def _inverted(height: int) -> bytes:
    return (_HEIGHT_MAX - height).to_bytes(keys.HEIGHT_SIZE, "big")


def _height_of(entry: bytes) -> int:
    return _HEIGHT_MAX - int.from_bytes(entry[-keys.HEIGHT_SIZE :], "big")


def _head(key: bytes) -> bytes:
    """Everything of an entry key but its height: the prefix of all versions of ``key``."""
    return keys.ARCHIVE + _escape(key) + _TERMINATOR


def entry_key(key: bytes, height: int) -> bytes:
    return _head(key) + _inverted(height)


def is_archive_key(store_key: bytes) -> bool:
    """Whether a store key belongs to the index (derived data, rebuilt from the write sets)."""
    return store_key.startswith(keys.ARCHIVE) or store_key == keys.META_ARCHIVE_HEIGHT


def indexed_height(source: ReadView) -> int:
    """The height up to which every block is indexed; -1 when none is."""
    raw = source.get(keys.META_ARCHIVE_HEIGHT)
    return -1 if raw is None else keys.decode_height(raw)


def _entries(height: int, writes: Sequence[tuple[bytes, bytes | None]]) -> list[Change]:
    return [
        (entry_key(key, height), _DELETED if value is None else _SET + value)
        for key, value in writes
    ]


def block_changes(
    source: ReadView, height: int, writes: Sequence[tuple[bytes, bytes | None]]
) -> list[Change]:
    """The index entries of block ``height``, for the block's own batch; with the new
    ``m/archive_height`` when the blocks below are all indexed (else ``catch_up`` still has
    to index them, and the record stays where it is)."""
    changes = _entries(height, writes)
    if indexed_height(source) == height - 1:
        changes.append((keys.META_ARCHIVE_HEIGHT, keys.encode_height(height)))
    return changes


def catch_up(store: Store, tip: int, *, sync: bool) -> int:
    """Index the stored blocks above ``m/archive_height`` up to ``tip`` from their write sets;
    returns how many blocks were indexed. Each batch records how far it got, so an
    interrupted catch-up resumes where it stopped."""
    first = indexed_height(store) + 1
    batch = WriteBatch(store, sync=sync)
    pending = 0
    for height in range(first, tip + 1):
        raw = store.get(keys.write_set_key(height))
        if raw is None:
            raise ArchiveError(f"block {height} has no stored write set to index")
        try:
            writes = [(bytes(key), value) for key, value in canonical_decode(raw)]
        except (CodecError, TypeError, ValueError) as exc:
            raise ArchiveError(f"the write set of block {height} does not decode ({exc})") from exc
        batch.changes.extend(_entries(height, writes))
        batch.put(keys.META_ARCHIVE_HEIGHT, keys.encode_height(height))
        pending += len(raw)
        if pending >= CATCH_UP_BATCH_BYTES:
            batch.write()
            batch, pending = WriteBatch(store, sync=sync), 0
    if batch.changes:
        batch.write()
    return max(0, tip + 1 - first)


class AsOfState:
    """A contracts ``StateView``: the contract state as it was at the end of block ``height``.

    The caller checks that the height is indexed (``indexed_height``); entries at or below an
    indexed height never change, so reads need no snapshot."""

    __slots__ = ("_height", "_source")

    def __init__(self, source: ReadView, height: int) -> None:
        if height < 0:
            raise ValueError("a height is 0 or more")
        self._source = source
        self._height = height

    @property
    def height(self) -> int:
        return self._height

    def _first(self, prefix: bytes, start: bytes) -> tuple[bytes, bytes] | None:
        return next(iter(self._source.iterator(prefix=prefix, start=start)), None)

    def get(self, key: bytes) -> bytes | None:
        head = _head(key)
        found = self._first(head, head + _inverted(self._height))
        if found is None or found[1] == _DELETED:
            return None
        return found[1][1:]

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        base = keys.ARCHIVE + _escape(prefix)
        cursor = base
        while True:
            # One iterator walks the versions in order; a run of versions that cannot be the
            # answer (written after H, or older than the answer found) longer than
            # RESEEK_AFTER is jumped over with a new seek instead.
            current = b""
            answered = False
            skipped = 0
            for entry, value in self._source.iterator(prefix=base, start=cursor):
                head = entry[: -keys.HEIGHT_SIZE]
                if head != current:
                    current, answered, skipped = head, False, 0
                if answered or _height_of(entry) > self._height:
                    skipped += 1
                    if skipped > RESEEK_AFTER:
                        # Past this key's versions, or to its latest write up to H.
                        cursor = head + (_PAST_VERSIONS if answered else _inverted(self._height))
                        break
                    continue
                answered = True
                if value != _DELETED:
                    yield _unescape(head[len(keys.ARCHIVE) : -len(_TERMINATOR)]), value[1:]
            else:
                return
