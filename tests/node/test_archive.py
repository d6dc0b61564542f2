"""The as-of index (node/archive.py): point reads and prefix scans at every past height equal
the state replayed from the write sets, over the store alone and under a real ledger, and an
index that is missing or partial is rebuilt when the ledger opens."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibledger.contracts.codec import canonical_decode
from ibledger.node import archive
from ibledger.node import storage_keys as keys
from ibledger.node.ledger import Ledger
from ibledger.node.memory_store import MemoryStore

from .conftest import Directory, make_genesis, register_tx

Writes = Sequence[tuple[bytes, bytes | None]]


def _write_blocks(store: MemoryStore, blocks: Sequence[Writes]) -> None:
    for height, writes in enumerate(blocks):
        store.write(archive.block_changes(store, height, sorted(dict(writes).items())), sync=True)


def _replayed(blocks: Sequence[Writes], height: int) -> dict[bytes, bytes]:
    state: dict[bytes, bytes] = {}
    for writes in blocks[: height + 1]:
        for key, value in dict(writes).items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
    return state


def _scan(view: archive.AsOfState, prefix: bytes) -> dict[bytes, bytes]:
    rows = list(view.scan(prefix))
    assert [key for key, _ in rows] == sorted(key for key, _ in rows), "scans are in key order"
    return dict(rows)


def test_point_reads_and_deletions_at_each_height() -> None:
    store = MemoryStore()
    blocks: list[Writes] = [
        [(b"bill/1", b"issued")],
        [(b"bill/1", b"accepted"), (b"bill/2", b"issued")],
        [(b"bill/1", None)],
        [],
        [(b"bill/1", b"again")],
    ]
    _write_blocks(store, blocks)
    assert archive.indexed_height(store) == 4
    expected = [b"issued", b"accepted", None, None, b"again"]
    for height, value in enumerate(expected):
        view = archive.AsOfState(store, height)
        assert view.get(b"bill/1") == value
        assert view.get(b"bill/2") == (None if height == 0 else b"issued")
        assert view.get(b"bill/") is None  # a prefix is not a key
        assert _scan(view, b"bill/") == _replayed(blocks, height)
    assert archive.AsOfState(store, 10**6).get(b"bill/1") == b"again"


def test_keys_that_are_prefixes_of_each_other_or_hold_zero_bytes() -> None:
    store = MemoryStore()
    tricky = [b"a", b"a\x00", b"a\x00\x01", b"a\x00\xff", b"a\x01", b"ab", b"a\xff", b"b"]
    blocks: list[Writes] = [
        [(key, b"v0-" + key) for key in tricky],
        [(key, b"v1-" + key) for key in tricky[::2]],
        [(key, None) for key in tricky[1::3]],
    ]
    _write_blocks(store, blocks)
    for height in range(3):
        view = archive.AsOfState(store, height)
        state = _replayed(blocks, height)
        for key in tricky:
            assert view.get(key) == state.get(key)
        for prefix in (b"", b"a", b"a\x00", b"a\x00\x01", b"ab", b"b", b"c"):
            assert _scan(view, prefix) == {k: v for k, v in state.items() if k.startswith(prefix)}


_KEYS = st.lists(st.sampled_from(b"ab\x00\x01\xff/"), min_size=1, max_size=4).map(bytes)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(_KEYS, st.one_of(st.none(), st.binary(max_size=3))), max_size=6),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.sampled_from(b"ab\x00/"), max_size=2).map(bytes),
)
def test_every_height_and_prefix_matches_a_replay(blocks: list[Writes], prefix: bytes) -> None:
    store = MemoryStore()
    _write_blocks(store, blocks)
    for height in range(len(blocks)):
        view = archive.AsOfState(store, height)
        state = _replayed(blocks, height)
        assert _scan(view, prefix) == {k: v for k, v in state.items() if k.startswith(prefix)}
        for key in {key for writes in blocks for key, _ in writes}:
            assert view.get(key) == state.get(key)


@pytest.mark.parametrize("reseek_after", [0, 1, 3, archive.RESEEK_AFTER])
def test_scans_over_long_histories_seek_past_them(
    reseek_after: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key written in every block between keys written once: whether a scan steps over the
    versions or seeks past them, it answers each key's latest write up to the height."""
    monkeypatch.setattr(archive, "RESEEK_AFTER", reseek_after)
    store = MemoryStore()
    blocks: list[Writes] = [[(b"k/a", b"a"), (b"k/c", b"c")]]
    for height in range(1, 30):
        writes: list[tuple[bytes, bytes | None]] = [(b"k/b", b"b%d" % height)]
        if height % 7 == 0:
            writes.append((b"k/b\x00", None if height % 2 else b"z%d" % height))
        blocks.append(writes)
    blocks.append([(b"k/b", None), (b"k/d", b"d")])
    _write_blocks(store, blocks)
    for height in range(len(blocks)):
        view = archive.AsOfState(store, height)
        assert _scan(view, b"k/") == _replayed(blocks, height)
        assert view.get(b"k/b") == _replayed(blocks, height).get(b"k/b")


def test_a_block_above_a_gap_does_not_claim_the_heights_below() -> None:
    store = MemoryStore()
    store.write(archive.block_changes(store, 0, [(b"k", b"0")]), sync=True)
    store.write(archive.block_changes(store, 2, [(b"k", b"2")]), sync=True)
    assert archive.indexed_height(store) == 0


def test_a_negative_height_is_refused() -> None:
    with pytest.raises(ValueError):
        archive.AsOfState(MemoryStore(), -1)


# --- under the ledger ---------------------------------------------------------------------------


def _ledger_with_blocks(directory: Directory, store: MemoryStore, blocks: int) -> Ledger:
    ledger = Ledger.open_store(store, make_genesis(directory), verifier_workers=1)
    nonce = 0
    for height in range(1, blocks + 1):
        envelopes = []
        for i in range(2):
            nonce += 1
            envelopes.append(register_tx(directory, f"R{height}X{i}", nonce=nonce))
        header = ledger.next_header(ledger.tip_timestamp_ms + 1000, envelopes)
        ledger.append_block(header, envelopes, certificate=b"cert")
    return ledger


def _stored_write_sets(store: MemoryStore, tip: int) -> list[Writes]:
    return [
        [(key, value) for key, value in canonical_decode(store.get(keys.write_set_key(h)) or b"")]
        for h in range(tip + 1)
    ]


def _current_state(store: MemoryStore) -> dict[bytes, bytes]:
    start = len(keys.STATE)
    return {key[start:]: value for key, value in store.iterator(prefix=keys.STATE)}


def test_the_ledger_indexes_every_block_and_answers_each_height(directory: Directory) -> None:
    store = MemoryStore()
    ledger = _ledger_with_blocks(directory, store, 4)
    assert ledger.history_range() == (0, 4)
    write_sets = _stored_write_sets(store, 4)
    for height in range(5):
        assert _scan(ledger.as_of(height), b"") == _replayed(write_sets, height)
        assert _scan(ledger.as_of(height), b"id/p/") == {
            k: v for k, v in _replayed(write_sets, height).items() if k.startswith(b"id/p/")
        }
    assert _scan(ledger.as_of(4), b"") == _current_state(store)
    assert ledger.as_of(1).get(b"id/p/R3X0") is None
    assert ledger.as_of(3).get(b"id/p/R3X0") == ledger.state().get(b"id/p/R3X0")
    ledger.close()


def test_an_unindexed_ledger_is_indexed_when_opened(directory: Directory) -> None:
    store = MemoryStore()
    ledger = _ledger_with_blocks(directory, store, 3)
    indexed = {k: v for k, v in store.iterator() if archive.is_archive_key(k)}
    ledger.verifier.close()  # keep the store open: it stands for the data directory
    # A ledger written before the index existed: no entries and no record.
    store.write([(key, None) for key in indexed], sync=True)
    assert archive.indexed_height(store) == -1
    reopened = Ledger.open_store(store, make_genesis(directory), verifier_workers=1)
    assert reopened.history_range() == (0, 3)
    assert {k: v for k, v in store.iterator() if archive.is_archive_key(k)} == indexed
    reopened.close()


def test_a_partly_indexed_ledger_resumes_where_indexing_stopped(directory: Directory) -> None:
    store = MemoryStore()
    ledger = _ledger_with_blocks(directory, store, 3)
    indexed = {k: v for k, v in store.iterator() if archive.is_archive_key(k)}
    ledger.verifier.close()
    store.write([(keys.META_ARCHIVE_HEIGHT, keys.encode_height(1))], sync=True)
    assert archive.catch_up(store, 3, sync=True) == 2
    assert {k: v for k, v in store.iterator() if archive.is_archive_key(k)} == indexed
    assert archive.catch_up(store, 3, sync=True) == 0
    store.close()
