"""Point-in-time reads of the asset registry: a versioned index kept in contract state.

Theory of operation
-------------------
The state holds only the latest value of a key. So that the regulator can ask a question "as of
height h" (docs/domain.md C.4), the runtime adds, for every write of a key under one of
``VERSIONED_PREFIXES`` by a successful transaction, one more write::

    ver/<key>@<height:016d>  ->  0x01 + value      (the key was set at that height)
                             ->  0x00              (the key was deleted at that height)

A later transaction of the same block writing the same key overwrites the entry, so an entry is
the key's value at the end of its block. The entries are ordinary state: in the block's write
set, hence in the state root, and byte-identical on every replica because they are a function of
the writes alone.

``AsOfView(state, height)`` is a ``StateView`` that answers a versioned key with the entry of the
highest height <= ``height`` (no entry: the key did not exist yet) and every other key from the
current state. Everything else a look-through reads (the genesis parameters, the viewer's
participant record) is either immutable or deliberately current: authorisation is by the
viewer's role now, not then.

Cost: one extra key per versioned key written per block (the holdings a transfer moves, the
instrument record an issue changes); a point read scans the versions of one key, a prefix scan
the versions of every key under the prefix, so reads grow with the history of the keys read,
not with the whole ledger. Nothing is pruned: like the event history, versions are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .core import StateView

__all__ = ["VERSIONED_PREFIXES", "VERSION_PREFIX", "AsOfView", "with_versions"]

VERSION_PREFIX = b"ver/"
# Instrument records, holdings and the holder index: what the look-through queries read.
VERSIONED_PREFIXES = (b"asset/i/", b"asset/h/", b"asset/hh/")
_SEPARATOR = b"@"  # never in an ISIN or a participant id (args.ID_PATTERN)
_HEIGHT_DIGITS = 16
_SET = b"\x01"
_DELETED = b"\x00"


def _versioned(key: bytes) -> bool:
    return key.startswith(VERSIONED_PREFIXES)


def version_key(key: bytes, height: int) -> bytes:
    assert _SEPARATOR not in key, "a versioned key never contains the version separator"
    return VERSION_PREFIX + key + _SEPARATOR + f"{height:0{_HEIGHT_DIGITS}d}".encode()


def with_versions(
    writes: Iterable[tuple[bytes, bytes | None]], height: int
) -> tuple[tuple[bytes, bytes | None], ...]:
    """``writes`` plus the version entry of each versioned key, sorted by key."""
    result = dict(writes)
    for key, value in list(result.items()):
        if _versioned(key):
            result[version_key(key, height)] = _DELETED if value is None else _SET + value
    return tuple(sorted(result.items()))


def _split(version: bytes) -> tuple[bytes, int]:
    """(key, height) of a version entry's key."""
    body = version[len(VERSION_PREFIX) :]
    cut = len(body) - _HEIGHT_DIGITS - 1
    assert body[cut : cut + 1] == _SEPARATOR, "a version key ends in @<height>"
    return body[:cut], int(body[cut + 1 :])


class AsOfView:
    """The registry as it was at the end of block ``height`` (see the module docstring)."""

    __slots__ = ("_height", "_state")

    def __init__(self, state: StateView, height: int) -> None:
        self._state = state
        self._height = height

    @property
    def height(self) -> int:
        return self._height

    def get(self, key: bytes) -> bytes | None:
        if not _versioned(key):
            return self._state.get(key)
        latest: bytes | None = None
        for version, entry in self._state.scan(VERSION_PREFIX + key + _SEPARATOR):
            if _split(version)[1] > self._height:
                break  # entries of one key are in height order
            latest = entry
        return None if latest is None or latest == _DELETED else latest[1:]

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        if not _versioned(prefix):
            assert not any(p.startswith(prefix) for p in VERSIONED_PREFIXES), (
                "a scan as of a height covers versioned keys wholly or not at all"
            )
            yield from self._state.scan(prefix)
            return
        latest: dict[bytes, bytes] = {}
        for version, entry in self._state.scan(VERSION_PREFIX + prefix):
            key, height = _split(version)
            if height <= self._height:
                latest[key] = entry  # heights of one key come in increasing order
        for key in sorted(latest):
            if latest[key] != _DELETED:
                yield key, latest[key][1:]
