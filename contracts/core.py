"""Execution primitives shared by every contract module: the state boundary and the write buffer.

Theory of operation
-------------------
The ledger hands the contracts a read-only ``StateView`` (within a block, an overlay on which the
writes of earlier transactions of the block are already visible). A transaction runs against a
``Store``: reads go to the transaction's own pending writes first and then to the view; writes
and events are buffered. Only when the handler returns normally does the runtime publish the
buffer as the ``Outcome``; a ``ContractError`` discards it, so a rejected transaction writes
nothing.

Every value written is canonical MessagePack (``codec``), so equal states are equal bytes on
every replica. ``Store.writes()`` is sorted by key; events keep emission order, which is itself a
function of the input only (handlers never iterate an unsorted collection).

History: ``Store.emit`` appends the event to the outcome and, for every scope it names, writes a
history entry under ``hist/<scope>/<height:016d>/<tx_index:06d>/<n:04d>``. Heights and indexes are
zero-padded so that a prefix scan returns entries in ledger order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .calendar import BusinessCalendar, Parameters
from .codec import canonical_decode, canonical_encode
from .overlay import merge_scan

__all__ = [
    "Call",
    "Env",
    "Event",
    "Outcome",
    "Participant",
    "StateView",
    "Store",
    "TxContext",
    "business_day",
]

MS_PER_DAY = 86_400_000
# Business dates are Asia/Shanghai (UTC+8, no daylight saving since 1991).
SHANGHAI_OFFSET_MS = 8 * 3_600_000


class StateView(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """All (key, value) pairs whose key starts with ``prefix``, sorted by key."""
        ...


@dataclass(frozen=True, slots=True)
class TxContext:
    chain_id: str
    height: int
    timestamp_ms: int  # agreed block time, UTC milliseconds
    tx_index: int
    tx_id: bytes
    sender: str  # participant id from the signed payload
    signer_key_id: bytes  # fingerprint of the key that signed the envelope
    nonce: int | None = None  # the payload's nonce; None where no envelope exists (tests, tools)
    suite: str = "ed25519-sha256"  # the chain's crypto suite (genesis): keys of another are refused


@dataclass(frozen=True, slots=True)
class Call:
    operation: str
    args: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    attrs: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    code: str
    message: str
    writes: tuple[tuple[bytes, bytes | None], ...]
    events: tuple[Event, ...]

    @property
    def ok(self) -> bool:
        return self.code == "OK"


@dataclass(frozen=True, slots=True)
class Participant:
    id: str
    name: str
    roles: frozenset[str]
    lei: str | None
    uscc: str | None
    bic: str | None
    cnaps: str | None
    active: bool
    keys: tuple[str, ...]  # key ids (hex), sorted

    def has(self, role: str) -> bool:
        return role in self.roles


def business_day(timestamp_ms: int) -> int:
    """Day number (days since 1970-01-01) of the Asia/Shanghai calendar date at ``timestamp_ms``."""
    return (timestamp_ms + SHANGHAI_OFFSET_MS) // MS_PER_DAY


class Store:
    """Transaction-local read-your-writes buffer over a ``StateView``."""

    __slots__ = ("_ctx", "_events", "_hist_seq", "_view", "_writes")

    def __init__(self, view: StateView, ctx: TxContext | None = None) -> None:
        self._view = view
        self._ctx = ctx
        self._writes: dict[bytes, bytes | None] = {}
        self._events: list[Event] = []
        self._hist_seq = 0

    # -- reads ----------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        if key in self._writes:
            return self._writes[key]
        return self._view.get(key)

    def get_obj(self, key: bytes) -> object:
        """The decoded value under ``key``; callers parse it into their record type."""
        raw = self.get(key)
        return None if raw is None else canonical_decode(raw)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """The view's sorted scan with this transaction's pending writes applied."""
        return merge_scan(self._view.scan(prefix), self._writes, prefix)

    def scan_objs(self, prefix: bytes) -> Iterator[tuple[bytes, object]]:
        for key, raw in self.scan(prefix):
            yield key, canonical_decode(raw)

    # -- writes ---------------------------------------------------------------------------
    def put(self, key: bytes, obj: Any) -> None:
        self._writes[key] = canonical_encode(obj)

    def delete(self, key: bytes) -> None:
        self._writes[key] = None

    def emit(self, kind: str, attrs: Mapping[str, Any], scopes: Sequence[str] = ()) -> None:
        """Record an event and one history entry per scope (e.g. ``b/<package>``)."""
        event = Event(kind, dict(attrs))
        self._events.append(event)
        ctx = self._ctx
        if ctx is None or not scopes:
            return
        entry = {
            "kind": kind,
            "attrs": dict(attrs),
            "height": ctx.height,
            "timestamp_ms": ctx.timestamp_ms,
            "tx_id": ctx.tx_id,
            "tx_index": ctx.tx_index,
            "sender": ctx.sender,
        }
        seq = self._hist_seq
        self._hist_seq += 1
        suffix = f"/{ctx.height:016d}/{ctx.tx_index:06d}/{seq:04d}".encode()
        for scope in sorted(set(scopes)):
            self.put(b"hist/" + scope.encode() + suffix, entry)

    def writes(self) -> tuple[tuple[bytes, bytes | None], ...]:
        return tuple(sorted(self._writes.items()))

    def events(self) -> tuple[Event, ...]:
        return tuple(self._events)


@dataclass(slots=True)
class Env:
    """What a handler sees: the store, the context, the verified sender and today's date."""

    store: Store
    ctx: TxContext
    sender: Participant
    today: int  # business day number derived from ctx.timestamp_ms
    # Per-transaction memo of the genesis reference data, loaded on first use.
    calendar: BusinessCalendar | None = None
    params: Parameters | None = None
