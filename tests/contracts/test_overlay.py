"""The one scan merge: pending writes over a sorted view, against a plain dict model."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ibledger.contracts.codec import canonical_encode
from ibledger.contracts.core import Store
from ibledger.contracts.overlay import BlockOverlay, merge_scan
from ibledger.contracts.testing import MemoryState

KEYS = st.lists(st.sampled_from(b"abc"), max_size=3).map(bytes)
VALUES = st.binary(min_size=1, max_size=2)
BASE = st.dictionaries(KEYS, VALUES, max_size=12)
PENDING = st.dictionaries(KEYS, st.none() | VALUES, max_size=12)
PREFIX = st.lists(st.sampled_from(b"abc"), max_size=2).map(bytes)


def model(
    base: dict[bytes, bytes], pending: dict[bytes, bytes | None], prefix: bytes
) -> list[tuple[bytes, bytes]]:
    merged = dict(base)
    for key, value in pending.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return sorted((k, v) for k, v in merged.items() if k.startswith(prefix))


@given(BASE, PENDING, PREFIX)
def test_merge_scan_is_the_dict_merge_in_key_order(
    base: dict[bytes, bytes], pending: dict[bytes, bytes | None], prefix: bytes
) -> None:
    view = MemoryState(base.items())
    assert list(merge_scan(view.scan(prefix), pending, prefix)) == model(base, pending, prefix)


@given(BASE, PENDING, st.dictionaries(KEYS, st.none() | st.integers(0, 9), max_size=8), PREFIX)
def test_store_over_block_overlay_sees_both_layers(
    base: dict[bytes, bytes],
    block: dict[bytes, bytes | None],
    tx: dict[bytes, int | None],
    prefix: bytes,
) -> None:
    overlay = BlockOverlay(MemoryState(base.items()))
    overlay.apply(block.items())
    store = Store(overlay)
    for key, number in tx.items():
        if number is None:
            store.delete(key)
        else:
            store.put(key, number)
    encoded = {key: None if n is None else canonical_encode(n) for key, n in tx.items()}
    after_block = dict(model(base, block, b""))
    assert list(store.scan(prefix)) == model(after_block, encoded, prefix)
    assert list(overlay.scan(prefix)) == model(base, block, prefix)
    assert overlay.writes() == tuple(sorted(block.items()))
