"""The storage protocol (node/store.py): LevelDB and the in-memory store behave alike, and the
in-memory store's faults (lost unsynced writes, failing writes) behave as documented."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import plyvel
import pytest

from ibledger.node.leveldb_store import WITNESS_NAME, LevelDBStore
from ibledger.node.memory_store import MemoryStore
from ibledger.node.store import (
    Change,
    Snapshot,
    Store,
    StoreClosed,
    StoreCorruption,
    StoreError,
    StoreIOError,
    WriteBatch,
    prefix_end,
)


@pytest.fixture(params=["leveldb", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened: Store = (
        LevelDBStore.open(tmp_path / "db") if request.param == "leveldb" else (MemoryStore())
    )
    yield opened
    opened.close()


def _dump(store: Store) -> dict[bytes, bytes]:
    return dict(store.iterator())


def test_writes_apply_in_order_and_deletes_remove(store: Store) -> None:
    assert store.get(b"a") is None
    store.write([(b"a", b"1"), (b"b", b""), (b"a", b"2"), (b"gone", None)], sync=True)
    assert (store.get(b"a"), store.get(b"b"), store.get(b"gone")) == (b"2", b"", None)
    store.write([(b"a", None), (b"c", b"3"), (b"c", None), (b"c", b"4")], sync=False)
    assert _dump(store) == {b"b": b"", b"c": b"4"}


def test_a_write_batch_collects_puts_and_deletes(store: Store) -> None:
    batch = WriteBatch(store, sync=True)
    batch.put(b"k", b"v")
    batch.delete(b"k")
    batch.put(b"j", b"w")
    assert batch.changes == [(b"k", b"v"), (b"k", None), (b"j", b"w")]
    assert store.get(b"j") is None  # nothing before write()
    batch.write()
    assert _dump(store) == {b"j": b"w"}


def test_a_write_with_a_key_that_is_not_bytes_applies_nothing(store: Store) -> None:
    store.write([(b"x", b"0")], sync=True)
    bad: list[Change] = [(b"x", b"1"), ("y", b"2")]  # type: ignore[list-item]
    with pytest.raises(TypeError):
        store.write(bad, sync=True)
    assert _dump(store) == {b"x": b"0"}


def test_iterator_scans_a_prefix_in_byte_order_from_a_start(store: Store) -> None:
    keys = [b"a", b"b/", b"b/\x00", b"b/1", b"b/10", b"b/2", b"b/\xff", b"b0", b"c", b"\xff\xff"]
    store.write([(key, key.upper()) for key in reversed(keys)], sync=True)
    assert [k for k, _ in store.iterator()] == keys
    assert list(store.iterator(prefix=b"b/")) == [
        (k, k.upper()) for k in keys if k.startswith(b"b/")
    ]
    assert [k for k, _ in store.iterator(prefix=b"b/", start=b"b/10")] == [
        b"b/10",
        b"b/2",
        b"b/\xff",
    ]
    assert [k for k, _ in store.iterator(prefix=b"b/", start=b"a")] == [
        k for k in keys if k.startswith(b"b/")
    ]
    assert list(store.iterator(prefix=b"b/", start=b"b0")) == []
    assert [k for k, _ in store.iterator(prefix=b"\xff")] == [b"\xff\xff"]
    assert [k for k, _ in store.iterator(start=b"c")] == [b"c", b"\xff\xff"]
    assert list(store.iterator(prefix=b"zz")) == []


def test_an_iterator_sees_the_store_as_of_its_creation(store: Store) -> None:
    store.write([(b"p/1", b"a"), (b"p/2", b"b")], sync=True)
    scan = store.iterator(prefix=b"p/")
    store.write([(b"p/1", None), (b"p/3", b"c"), (b"p/2", b"B")], sync=True)
    assert list(scan) == [(b"p/1", b"a"), (b"p/2", b"b")]


def test_a_snapshot_keeps_what_the_store_held_when_it_was_taken(store: Store) -> None:
    store.write([(b"k1", b"a"), (b"k2", b"b")], sync=True)
    snapshot = store.snapshot()
    store.write([(b"k1", None), (b"k2", b"B"), (b"k3", b"c")], sync=True)
    later = store.snapshot()
    store.write([(b"k3", None)], sync=True)
    assert (snapshot.get(b"k1"), snapshot.get(b"k2"), snapshot.get(b"k3")) == (b"a", b"b", None)
    assert list(snapshot.iterator()) == [(b"k1", b"a"), (b"k2", b"b")]
    assert list(later.iterator(prefix=b"k", start=b"k2")) == [(b"k2", b"B"), (b"k3", b"c")]
    snapshot.close()
    later.close()
    with pytest.raises(StoreClosed):
        snapshot.get(b"k1")
    assert _dump(store) == {b"k2": b"B"}


def test_a_closed_store_refuses_reads_and_writes(tmp_path: Path) -> None:
    for store in (LevelDBStore.open(tmp_path / "db"), MemoryStore()):
        store.close()
        with pytest.raises(StoreClosed):
            store.get(b"k")
        with pytest.raises(StoreClosed):
            store.write([(b"k", b"v")], sync=True)
        with pytest.raises(StoreClosed):
            store.iterator()
        with pytest.raises(StoreClosed):
            store.snapshot()


def test_leveldb_refuses_a_second_opener_and_an_existing_database_when_asked(
    tmp_path: Path,
) -> None:
    first = LevelDBStore.open(tmp_path / "db")
    try:
        with pytest.raises(StoreIOError):  # the lock file
            LevelDBStore.open(tmp_path / "db")
    finally:
        first.close()
    with pytest.raises(StoreError, match="exists"):
        LevelDBStore.open(tmp_path / "db", must_be_new=True)


def test_prefix_end() -> None:
    assert prefix_end(b"b/") == b"b0"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") is None
    assert prefix_end(b"") is None


@pytest.mark.parametrize("seed", range(4))
def test_random_operations_agree_between_leveldb_and_memory(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    alphabet = [b"", b"\x00", b"a", b"b", b"\xff"]

    def key() -> bytes:
        return b"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3)))

    leveldb, memory = LevelDBStore.open(tmp_path / "db"), MemoryStore()
    stores: tuple[Store, Store] = (leveldb, memory)
    snapshots: list[tuple[Snapshot, Snapshot]] = []
    try:
        for step in range(300):
            changes: list[Change] = [
                (key(), None if rng.random() < 0.3 else b"%d" % step)
                for _ in range(rng.randint(1, 4))
            ]
            sync = rng.random() < 0.5
            for store in stores:
                store.write(changes, sync=sync)
            if rng.random() < 0.1:
                snapshots.append((leveldb.snapshot(), memory.snapshot()))
            prefix, start = key()[:1], key() if rng.random() < 0.5 else None
            scans = [list(s.iterator(prefix=prefix, start=start)) for s in stores]
            assert scans[0] == scans[1], (step, prefix, start)
            probe = key()
            assert leveldb.get(probe) == memory.get(probe)
        assert _dump(leveldb) == _dump(memory)
        for pair in snapshots:
            views = [list(view.iterator()) for view in pair]
            assert views[0] == views[1]
            for view in pair:
                view.close()
    finally:
        leveldb.close()


# --- the in-memory store's faults -----------------------------------------------------------------


def test_a_crash_loses_the_writes_since_the_last_synced_one() -> None:
    store = MemoryStore()
    store.write([(b"a", b"1")], sync=False)
    store.write([(b"b", b"2")], sync=True)  # makes the write before it durable too
    store.write([(b"a", b"changed"), (b"c", b"3")], sync=False)
    store.write([(b"b", None)], sync=False)
    assert store.unsynced_writes == 2
    assert _dump(store) == {b"a": b"changed", b"c": b"3"}
    after = store.crash()
    assert _dump(after) == {b"a": b"1", b"b": b"2"}
    assert after.unsynced_writes == 0
    with pytest.raises(StoreClosed):  # the handle of the process that died
        store.get(b"a")
    with pytest.raises(StoreClosed):
        store.crash()


def test_a_crash_may_keep_a_prefix_of_the_unsynced_writes() -> None:
    def written() -> MemoryStore:
        store = MemoryStore()
        store.write([(b"k", b"0")], sync=True)
        for n in range(1, 4):
            store.write([(b"k", b"%d" % n), (b"n%d" % n, b"")], sync=False)
        return store

    for keep in range(4):
        after = written().crash(keep_unsynced=keep)
        expected = {b"k": b"%d" % keep, **{b"n%d" % n: b"" for n in range(1, keep + 1)}}
        assert _dump(after) == expected
    with pytest.raises(ValueError, match="keep_unsynced"):
        written().crash(keep_unsynced=4)


def test_a_crash_leaves_snapshots_of_the_old_handle_alone() -> None:
    store = MemoryStore()
    store.write([(b"k", b"synced")], sync=True)
    store.write([(b"k", b"lost")], sync=False)
    snapshot = store.snapshot()
    after = store.crash()
    assert snapshot.get(b"k") == b"lost"
    assert after.get(b"k") == b"synced"


def test_reopening_keeps_every_write_and_makes_it_durable() -> None:
    store = MemoryStore()
    store.write([(b"a", b"1")], sync=False)
    store.close()  # a closed handle may still be reopened (the process ended)
    reopened = store.reopen()
    assert reopened.get(b"a") == b"1"
    assert reopened.crash().get(b"a") == b"1"  # recovery wrote it into a synced table
    with pytest.raises(StoreClosed):
        store.reopen()  # a newer handle has it


def test_a_failed_write_applies_nothing_and_every_later_write_fails_until_reopened() -> None:
    store = MemoryStore()
    store.write([(b"a", b"1")], sync=True)
    store.fail_next_write("disk full")
    with pytest.raises(StoreIOError, match="disk full") as caught:
        store.write([(b"a", b"2"), (b"b", b"2")], sync=True)
    assert isinstance(caught.value, OSError)
    assert _dump(store) == {b"a": b"1"}
    with pytest.raises(StoreIOError, match="disk full"):
        store.write([(b"c", b"3")], sync=False)
    assert store.get(b"a") == b"1"  # reads still work
    reopened = store.reopen()
    reopened.write([(b"c", b"3")], sync=True)
    assert _dump(reopened) == {b"a": b"1", b"c": b"3"}


# --- LevelDB's synced-write witness: a lost log tail is refused ----------------------------------


def _synced_writes(path: Path, count: int, first: int = 0) -> None:
    store = LevelDBStore.open(path)
    try:
        for i in range(first, first + count):
            store.write([(b"k%04d" % i, bytes(500))], sync=True)
    finally:
        store.close()


def test_a_log_cut_short_after_its_writes_were_synced_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db"
    _synced_writes(path, 50)
    (log,) = path.glob("*.log")
    data = log.read_bytes()
    # About six records' worth from the end: LevelDB alone reopens this, without those writes.
    log.write_bytes(data[: len(data) - 3000])
    with pytest.raises(StoreCorruption) as caught:
        LevelDBStore.open(path)
    assert "lost synced writes: 50 were made durable" in str(caught.value), caught.value
    # The refusal leaves nothing open: it is refused again, the same way.
    with pytest.raises(StoreCorruption):
        LevelDBStore.open(path)


def test_a_witness_that_lags_the_database_or_is_missing_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "db"
    _synced_writes(path, 5)
    witness = path / WITNESS_NAME
    earlier = witness.read_bytes()
    _synced_writes(path, 5, first=5)
    # A power loss may keep the synced database and an older, unsynced witness.
    witness.write_bytes(earlier)
    _synced_writes(path, 1, first=10)
    # A database made before the witness existed has none.
    witness.unlink()
    store = LevelDBStore.open(path)
    assert len(list(store.iterator())) == 11
    store.close()
    assert witness.exists()


def test_one_torn_witness_slot_is_survived_and_two_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "db"
    _synced_writes(path, 7)
    witness = path / WITNESS_NAME
    data = bytearray(witness.read_bytes())
    data[64 + 6] ^= 0xFF  # the slot of the odd counters, which holds the last one (7)
    witness.write_bytes(bytes(data))
    LevelDBStore.open(path).close()  # the other slot (6) verifies, and 6 <= 7
    data = bytearray(witness.read_bytes())
    data[6] ^= 0xFF  # now the even slot too
    witness.write_bytes(bytes(data))
    with pytest.raises(StoreCorruption, match=r"witness \S+ is damaged"):
        LevelDBStore.open(path)


def test_the_synced_write_counter_is_not_a_key_the_store_shows(tmp_path: Path) -> None:
    store = LevelDBStore.open(tmp_path / "db")
    store.write([(b"a", b"1")], sync=True)
    store.write([(b"b", b"2")], sync=False)
    assert list(store.iterator()) == [(b"a", b"1"), (b"b", b"2")]
    snapshot = store.snapshot()
    assert list(snapshot.iterator(prefix=b"\x00")) == []
    snapshot.close()
    store.close()


def _table_bytes(path: Path) -> int:
    return sum(table.stat().st_size for table in path.glob("*.ldb"))


def test_tables_are_written_uncompressed_and_compressed_ones_still_read(tmp_path: Path) -> None:
    path = tmp_path / "db"
    # A database as LevelDB's defaults write it (Snappy), flushed into a table.
    old = plyvel.DB(str(path), create_if_missing=True)
    old.put(b"s/old", b"o" * 1_000_000)
    old.compact_range()
    old.close()
    assert 0 < _table_bytes(path) < 100_000  # Snappy shrank a megabyte of one byte
    store = LevelDBStore.open(path)
    # More than one 4 MiB write buffer: LevelDB flushes the memtable into a table.
    for index in range(6):
        store.write([(b"s/new%d" % index, bytes([index]) * 1_000_000)], sync=False)
    store.write([], sync=True)
    deadline = time.monotonic() + 60  # the flush runs on LevelDB's background thread
    while _table_bytes(path) < 4_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _table_bytes(path) >= 4_000_000  # stored as written: not compressed
    assert store.get(b"s/old") == b"o" * 1_000_000
    assert store.get(b"s/new5") == b"\x05" * 1_000_000
    store.close()
    reopened = LevelDBStore.open(path)
    assert reopened.get(b"s/old") == b"o" * 1_000_000
    assert [key for key, _ in reopened.iterator(prefix=b"s/new")] == [
        b"s/new%d" % index for index in range(6)
    ]
    reopened.close()
