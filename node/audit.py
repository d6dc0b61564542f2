"""The node's audit log: refused peers, refused client requests and governance actions, kept in
an append-only, hash-chained file per node, with the chain head signed by the validator key.

Theory of operation
-------------------
**Records.** One record per line, in canonical JSON (sorted keys, no spaces, ASCII only)::

    {"fields":{...},"hash":H,"kind":K,"prev":P,"seq":N,"time_ms":T}

``H`` is the hex SHA-256 of ``DOMAIN || canonical JSON of the record without "hash"``, so it
covers the previous record's hash ``P``; the first record has ``seq`` 0 and ``P`` = 64 zeros.
A line must be byte for byte the canonical encoding of what it parses to, so a changed byte
anywhere in a line (even white space) breaks that line.  Kinds:

* ``peer.refused`` — a peer call refused (not a validator, another genesis, malformed frame);
* ``client.refused`` — a client request refused, by code (admission codes, ``MALFORMED_REQUEST``
  at the gRPC edge, API argument errors);
* ``governance`` — a committed event whose kind starts with ``identity.`` or ``governance.``,
  with the block height, transaction id, sender and the event's attributes;
* ``audit.open``, ``audit.head``, ``audit.segment``, ``audit.removed``, ``audit.dropped``,
  ``audit.close`` — the log's own life (see below).

**Bounded under attack.** Refusals are aggregated per key ``(kind, reason, caller)`` (the caller
is the peer's validator id when TLS names one, else its network address without the port) in
windows of ``aggregate_interval_ms``: the first refusal of a key is written at once unless the
same key was refused in the previous window; every further one in the window is only counted,
and when the window ends one record per key gives the count, the first and last time and the
first example held back.  A sustained flood from one caller therefore costs one record per
window.  At most ``callers_max`` keys are tracked per window; beyond that refusals are counted
under the caller ``(other callers)``.  Governance records are never aggregated (their rate is
bounded by the chain).  Strings in fields are cut to ``STRING_CHARS_MAX`` characters and lists
and tables to ``ITEMS_MAX`` entries.

**Segments.** Records go to ``audit-NNNNNNNN.jsonl`` files in the log directory.  When a segment
reaches ``segment_bytes_max`` a signed head closes it and the chain continues in the next one
(its first record, ``audit.segment``, links to the last hash of the previous).  When more than
``segments_max`` segments exist the oldest is deleted and an ``audit.removed`` record states its
name, its sequence range and its last hash: total size stays below about
``segments_max * segment_bytes_max``; archive segments elsewhere to keep them longer.

**Durability.** A writer thread (never the event loop) takes queued records in batches (at most
``WRITE_BATCH_S`` after the first of a batch was queued, sooner when ``WRITE_BATCH_RECORDS`` are
waiting: waking a second thread per record would take the interpreter lock from the event loop
at every block), writes and flushes each batch to the operating system, and fsyncs at most
once per ``FSYNC_INTERVAL_S`` (the ledger's own synced writes share the disk), and always before
a segment closes and on close.  ``kill -9`` loses nothing the thread had written; a power loss
may lose the last second and leave a torn last line.  Files are created ``0600`` in a
``0700`` directory.  A write error stops the log (logged once, counted as ``broken``); the node
keeps running.

**Restart.** Opening the log reads the last segment: the chain continues from its last complete
record.  A torn last line (no newline at the end of the file) is never taken as a record: it is
cut off, and the ``audit.open`` record that starts the new run states its segment, offset,
length and SHA-256 (``torn_tail``), so the cut is itself in the chain.  If the last complete
line is not a valid record (the file was damaged or edited), a new segment starts a fresh chain
whose ``audit.open`` says so; ``audit verify`` reports the damage in the old segment.

**Signed heads.** Every ``head_interval_ms`` (when there are new records), soon after a governance
record (at most one such head per ``GOVERNANCE_HEAD_MIN_S``: a chain that carries governance in
every block must not sign a head per block), before a segment is closed and on a clean stop, an
``audit.head`` record signs ``HEAD_DOMAIN || canonical JSON of {"hash", "node", "seq"}`` of
the record just before it with the node's validator key, whose public key is in genesis.
Someone who rewrites the whole chain without the key cannot produce these signatures, so
``audit verify --genesis`` catches a rewrite up to the last signed head.

**Not detected from the files alone.** Removing whole records from the end back to a signed
head, and deleting the oldest segments (the remaining chain then starts mid-way, which ``audit
verify`` states).  With ``--require-signed``, records after the last signed head count as a
failure (right for a cleanly stopped node or a closed segment); with ``--anchor SEQ:HASH`` kept
from an earlier verification, the log must still hold that record, which catches a cut end and
any rewrite up to it, even by the holder of the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import clock

log = logging.getLogger("ibledger.audit")

DOMAIN = b"ibledger/audit/v1\x00"
HEAD_DOMAIN = b"ibledger/audit-head/v1\x00"
ZERO_HASH = "0" * 64
SEGMENT_PATTERN = re.compile(r"audit-([0-9]{8})\.jsonl")
RECORD_KEYS = frozenset({"fields", "hash", "kind", "prev", "seq", "time_ms"})
GOVERNANCE_PREFIXES = ("identity.", "governance.")
OTHER_CALLERS = "(other callers)"
STRING_CHARS_MAX = 512
ITEMS_MAX = 32
DEPTH_MAX = 4
FSYNC_INTERVAL_S = 1.0
WRITE_BATCH_S = 0.2
WRITE_BATCH_RECORDS = 1_000
GOVERNANCE_HEAD_MIN_S = 1.0
HEAD_RECORDS_MAX = 10_000  # a head at least this often, whatever the interval
TAIL_CHUNK_BYTES = 64 * 1024

SEGMENT_BYTES_DEFAULT = 64 * 1024 * 1024
SEGMENTS_DEFAULT = 16
AGGREGATE_INTERVAL_MS_DEFAULT = 10_000
HEAD_INTERVAL_MS_DEFAULT = 60_000
CALLERS_DEFAULT = 256
QUEUE_DEFAULT = 10_000


@dataclass(frozen=True, slots=True)
class AuditSettings:
    segment_bytes_max: int = SEGMENT_BYTES_DEFAULT
    segments_max: int = SEGMENTS_DEFAULT
    aggregate_interval_ms: int = AGGREGATE_INTERVAL_MS_DEFAULT
    head_interval_ms: int = HEAD_INTERVAL_MS_DEFAULT
    callers_max: int = CALLERS_DEFAULT
    queue_max: int = QUEUE_DEFAULT


# --- format ----------------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def record_hash(body: Mapping[str, Any]) -> str:
    """The hash of a record without its ``hash`` key."""
    return hashlib.sha256(DOMAIN + canonical_json(body)).hexdigest()


def encode_record(
    seq: int, time_ms: int, kind: str, fields: Mapping[str, Any], prev: str
) -> tuple[bytes, str]:
    """The record's line (with its newline) and its hash.

    The fields are encoded once and spliced: the record's keys in sorted order are ``fields``,
    ``hash``, ``kind``, ``prev``, ``seq``, ``time_ms``, so the hashed body and the line differ
    only by the ``hash`` member after the fields (byte for byte what encoding both whole gives).
    """
    head = b'{"fields":' + canonical_json(fields if type(fields) is dict else dict(fields))
    rest = b',"kind":%b,"prev":%b,"seq":%d,"time_ms":%d}' % (
        canonical_json(kind),
        canonical_json(prev),
        seq,
        time_ms,
    )
    digest = hashlib.sha256(DOMAIN + head + rest).hexdigest()
    return head + b',"hash":"' + digest.encode("ascii") + b'"' + rest + b"\n", digest


def head_signing_bytes(node_id: str, seq: int, digest: str) -> bytes:
    return HEAD_DOMAIN + canonical_json({"hash": digest, "node": node_id, "seq": seq})


def bounded(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON data of bounded size: bytes as hex, long strings and lists cut."""
    # Fast paths for the plain data of events (a record per governance event): exact types
    # only, and tables within bounds whose keys are short strings, which need no sorting (the
    # canonical encoding sorts keys) and cannot collide once cut.  Anything else takes the
    # general rule below, with the same result.
    kind = type(value)
    if kind is str:
        return value if len(value) <= STRING_CHARS_MAX else value[:STRING_CHARS_MAX] + "..."
    if kind is int or kind is bool or value is None:
        return value
    if depth < DEPTH_MAX:
        if kind is dict and len(value) <= ITEMS_MAX:
            table: dict[str, Any] = {}
            for key, item in value.items():
                if type(key) is not str or len(key) > STRING_CHARS_MAX:
                    break
                table[key] = bounded(item, depth + 1)
            else:
                return table
        elif (kind is list or kind is tuple) and len(value) <= ITEMS_MAX:
            return [bounded(item, depth + 1) for item in value]
    return _bounded_general(value, depth)


def _bounded_general(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, bytes):
        value = value.hex()
    if isinstance(value, str):
        return value if len(value) <= STRING_CHARS_MAX else value[:STRING_CHARS_MAX] + "..."
    if depth >= DEPTH_MAX:
        return bounded(repr(value), depth)
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda item: str(item[0]))
        table = {str(k)[:STRING_CHARS_MAX]: bounded(v, depth + 1) for k, v in items[:ITEMS_MAX]}
        if len(items) > ITEMS_MAX:
            table["(more)"] = len(items) - ITEMS_MAX
        return table
    if isinstance(value, list | tuple):
        listed = [bounded(v, depth + 1) for v in value[:ITEMS_MAX]]
        if len(value) > ITEMS_MAX:
            listed.append(f"(and {len(value) - ITEMS_MAX} more)")
        return listed
    return bounded(str(value), depth)


def caller_of(peer: str | None) -> str:
    """A gRPC peer string without its port: a reconnecting caller stays one caller."""
    if not peer:
        return "(unknown)"
    if peer.startswith("ipv6:[") and "]" in peer:
        return peer[: peer.index("]") + 1]
    if peer.startswith("ipv4:"):
        return peer.rsplit(":", 1)[0]
    return peer[:128]


def segment_name(number: int) -> str:
    return f"audit-{number:08d}.jsonl"


def segments_in(directory: Path) -> list[Path]:
    """The segment files of a log directory, oldest first."""
    found = []
    for path in directory.iterdir():
        match = SEGMENT_PATTERN.fullmatch(path.name)
        if match is not None and path.is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


class RecordError(ValueError):
    """A line that is not a valid record; the message says why."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise RecordError(f"the key {key!r} appears twice")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise RecordError(f"{name} is not JSON data")


def parse_record(line: bytes) -> dict[str, Any]:
    """Parse one line (without its newline) and check that it is a well-formed record whose
    hash matches its content; raises RecordError."""
    try:
        record = json.loads(
            line.decode("ascii"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants
        )
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"not a JSON record ({exc})") from None
    if not isinstance(record, dict) or set(record) != RECORD_KEYS:
        raise RecordError(f"a record has exactly the keys {', '.join(sorted(RECORD_KEYS))}")
    seq, time_ms = record["seq"], record["time_ms"]
    for name, value in (("seq", seq), ("time_ms", time_ms)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise RecordError(f"{name} must be a non-negative integer")
    if not isinstance(record["kind"], str) or not isinstance(record["fields"], dict):
        raise RecordError("kind must be a string and fields a table")
    for name in ("prev", "hash"):
        value = record[name]
        if not isinstance(value, str) or re.fullmatch(r"[0-9a-f]{64}", value) is None:
            raise RecordError(f"{name} must be 64 lower-case hexadecimal characters")
    if canonical_json(record) != line:
        raise RecordError("the line is not in canonical form (it was edited)")
    body = {k: v for k, v in record.items() if k != "hash"}
    if record_hash(body) != record["hash"]:
        raise RecordError("its hash does not match its content (it was altered)")
    return record


# --- writing ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Held:
    """Refusals of one key in the current window that are counted, not yet written."""

    count: int = 0
    first_ms: int = 0
    last_ms: int = 0
    example: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class _Tail:
    """Where an existing segment ends."""

    segment: int
    seq: int | None  # of its last complete record; None if it has none
    prev: str
    torn: dict[str, Any] | None = None
    damaged: str | None = None


def _read_tail(path: Path, number: int) -> _Tail:
    """Find the last complete record of a segment; cut a torn last line off (described)."""
    with path.open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        end = size
        data = b""
        # Back up in chunks until the bytes read hold two newlines (the last complete line's
        # start and end) or the file's start.
        while end > 0 and data.count(b"\n") < 2:
            start = max(0, end - TAIL_CHUNK_BYTES)
            handle.seek(start)
            data = handle.read(end - start) + data
            end = start
        torn: dict[str, Any] | None = None
        last_newline = data.rfind(b"\n")
        if last_newline + 1 < len(data):
            torn_bytes = data[last_newline + 1 :]
            offset = size - len(torn_bytes)
            torn = {
                "segment": path.name,
                "offset": offset,
                "bytes": len(torn_bytes),
                "sha256": hashlib.sha256(torn_bytes).hexdigest(),
            }
            handle.truncate(offset)
            handle.flush()
            os.fsync(handle.fileno())
        if last_newline < 0:
            return _Tail(number, None, ZERO_HASH, torn)
        line_start = data.rfind(b"\n", 0, last_newline) + 1
        line = data[line_start:last_newline]
    try:
        record = parse_record(line)
    except RecordError as exc:
        return _Tail(number, None, ZERO_HASH, torn, damaged=f"{path.name}: {exc}")
    return _Tail(number, record["seq"], record["hash"], torn)


@dataclass(slots=True)
class _Recorded:
    """What a segment says about governance: the ledger height it was recorded through, and
    the governance records written beyond that height (so a replay does not repeat them)."""

    ledger_height: int | None = None
    beyond: Counter[tuple[int, str, str]] = field(default_factory=Counter)

    def take(self, key: tuple[int, str, str]) -> bool:
        """True (once per record) if governance ``(height, tx_id hex, event)`` is written."""
        if self.beyond[key] > 0:
            self.beyond[key] -= 1
            return True
        return False


def _scan_governance(path: Path) -> _Recorded:
    recorded = _Recorded()
    with path.open("rb") as handle:
        for line in handle:
            try:
                record = json.loads(line)
                kind, fields = record["kind"], record["fields"]
            except (ValueError, KeyError, TypeError):
                continue
            if not isinstance(fields, dict):
                continue
            marker = fields.get("ledger_height")
            if isinstance(marker, int) and kind.startswith("audit."):
                recorded.ledger_height = max(marker, recorded.ledger_height or 0)
                recorded.beyond = Counter(
                    {k: n for k, n in recorded.beyond.items() if k[0] > marker}
                )
            elif kind == "governance":
                key = (fields.get("height"), fields.get("tx_id"), fields.get("event"))
                if isinstance(key[0], int) and isinstance(key[1], str):
                    recorded.beyond[key] += 1  # type: ignore[index]
    return recorded


_GOVERNANCE_BATCH = "(governance batch)"  # a queue entry's kind: a block's events, not a record


@dataclass(frozen=True, slots=True)
class _GovernanceBatch:
    """A block's governance events and their senders, queued as they are."""

    height: int
    events: tuple[tuple[Mapping[str, Any], str], ...]
    replayed: bool

    def records(self) -> Iterable[dict[str, Any]]:
        """The fields of each event's ``governance`` record."""
        for event, sender in self.events:
            fields = {
                "height": self.height,
                "tx_id": event["tx_id"].hex(),
                "tx_index": event["tx_index"],
                "sender": bounded(sender),
                "event": bounded(event["kind"]),
                "attrs": bounded(event["attrs"]),
            }
            if self.replayed:
                fields["replayed"] = True
            yield fields


class AuditLog:
    """One node's audit log; ``refused`` and ``governance_events`` are cheap calls from the
    event loop, a writer thread builds the governance records and does the I/O."""

    def __init__(
        self,
        directory: Path,
        node_id: str,
        sign: Callable[[bytes], bytes],
        settings: AuditSettings,
        *,
        clock_ms: Callable[[], int],
        monotonic: Callable[[], float],
    ) -> None:
        self.directory = directory
        self.node_id = node_id
        self.settings = settings
        self._sign = sign
        self._clock_ms = clock_ms
        self._monotonic = monotonic
        self._cond = threading.Condition()
        # (kind, fields, time_ms); kind _GOVERNANCE_BATCH holds a _GovernanceBatch as fields.
        self._pending: deque[tuple[str, Any, int]] = deque()
        self._pending_records = 0  # what the pending entries will write
        self._window: dict[tuple[str, str, str], _Held] = {}
        self._previous_window: set[tuple[str, str, str]] = set()
        self._window_end = monotonic() + settings.aggregate_interval_ms / 1000
        self._submitted = 0
        self._written = 0
        self._dropped = 0
        self._stopping = False
        self._head_requested = False  # sign at the next batch
        self._governance_head = False  # sign once GOVERNANCE_HEAD_MIN_S has passed since the last
        self._write_due = 0.0
        self._flush_target = 0
        self.broken = False
        self.recorded = _Recorded()
        self.ledger_height: int | None = None
        # Writer-thread state.
        self._segment = 1
        self._seq = 0
        self._prev = ZERO_HASH
        self._size = 0
        self._handle: Any = None
        self._since_head = 0
        self._head_due = monotonic() + settings.head_interval_ms / 1000
        self._head_written_at = monotonic()
        self._fsync_due = 0.0
        self._unsynced = False
        self._thread: threading.Thread | None = None

    @classmethod
    def open(
        cls,
        directory: Path,
        node_id: str,
        sign: Callable[[bytes], bytes],
        settings: AuditSettings | None = None,
        *,
        clock_ms: Callable[[], int] = clock.now_ms,
        monotonic: Callable[[], float] = time.monotonic,
        start: bool = True,
    ) -> AuditLog:
        """Open (or create) the log in ``directory`` and write its ``audit.open`` record."""
        settings = settings or AuditSettings()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        tails: list[_Tail] = []
        recorded = _Recorded()
        # Back from the newest segment to the last complete record: a crash may leave the
        # newest one empty or holding only a torn line.
        for path in reversed(segments_in(directory)):
            number = int(path.name[len("audit-") : -len(".jsonl")])
            tails.append(_read_tail(path, number))
            if tails[-1].seq is not None or tails[-1].damaged is not None:
                recorded = _scan_governance(path)
                break
        audit = cls(directory, node_id, sign, settings, clock_ms=clock_ms, monotonic=monotonic)
        audit.recorded = recorded
        audit.ledger_height = recorded.ledger_height
        if tails:
            audit._segment = tails[0].segment
            if tails[-1].damaged is not None:
                audit._segment += 1  # a fresh chain; the damaged one stays as it is
            elif tails[-1].seq is not None:
                audit._seq, audit._prev = tails[-1].seq + 1, tails[-1].prev
        audit._open_segment()
        fields: dict[str, Any] = {"node": node_id, "torn_tail": tails[0].torn if tails else None}
        if tails and tails[-1].damaged is not None:
            fields["previous_chain_damaged"] = tails[-1].damaged
        audit._write("audit.open", fields, clock_ms())
        audit._sync()
        if start:
            audit._thread = threading.Thread(target=audit._run, name="audit-writer", daemon=True)
            audit._thread.start()
        return audit

    # --- called from the node ------------------------------------------------------------------

    def client_refused(self, code: str, peer: str, details: Mapping[str, Any]) -> None:
        """A public API call refused with ``code`` (the API edge's report), by caller address."""
        self.refused("client.refused", code, caller_of(peer), **details)

    def malformed(self, kind: str, method: str, peer: str, size: int) -> None:
        """A request that did not decode (``client.refused`` or ``peer.refused``)."""
        self.refused(kind, "MALFORMED_REQUEST", caller_of(peer), method=method, bytes=size)

    def refused(self, kind: str, reason: str, caller: str, /, **example: Any) -> None:
        """Note one refusal; see the aggregation rule in the module docstring."""
        now_ms = self._clock_ms()
        with self._cond:
            key = (kind, reason, caller)
            held = self._window.get(key)
            if held is None and len(self._window) >= self.settings.callers_max:
                key = (kind, "*", OTHER_CALLERS)
                example = {"reason": reason, "caller": caller, **example}
                held = self._window.get(key)
            if held is None:
                held = self._window[key] = _Held()
                if key not in self._previous_window:
                    fields = {"reason": key[1], "caller": key[2], "count": 1}
                    self._enqueue(kind, fields | {"example": bounded(example)}, now_ms, True)
                    return
            if held.count == 0:
                held.first_ms = now_ms
                held.example = bounded(example)
            held.count += 1
            held.last_ms = now_ms

    def governance(
        self,
        *,
        height: int,
        tx_id: bytes,
        tx_index: int,
        sender: str,
        event: str,
        attrs: Any,
        replayed: bool = False,
    ) -> None:
        """A committed governance event; ``replayed`` when read back from the ledger at start."""
        event_data = {"kind": event, "tx_id": tx_id, "tx_index": tx_index, "attrs": attrs}
        self.governance_events(height, [(event_data, sender)], replayed=replayed)

    def governance_events(
        self,
        height: int,
        events: Sequence[tuple[Mapping[str, Any], str]],
        *,
        replayed: bool = False,
    ) -> None:
        """The committed governance events of one block, each with its sender: one record each.

        The events (as stored with the block, never changed afterwards) are only queued here;
        the writer thread builds their records, so a block's governance costs the commit path
        one queue entry, not a bounded copy of every event's attributes.  All records of the
        block carry the time at which it was handed over."""
        if not events:
            return
        batch = _GovernanceBatch(height, tuple(events), replayed)
        with self._cond:
            self._enqueue_batch(batch, self._clock_ms())
            # Sign soon: a governance action should not wait a whole interval to be vouched for.
            self._governance_head = True

    def gap(self, first_height: int, last_height: int) -> None:
        """Governance of these blocks is not in the log (too far back to replay)."""
        fields = {"first_height": first_height, "last_height": last_height}
        with self._cond:
            self._enqueue("audit.gap", fields, self._clock_ms(), False)

    def governed_through(self, height: int) -> None:
        """Every governance event up to ``height`` has been handed to the log."""
        with self._cond:
            self.ledger_height = height

    def sign_head(self) -> None:
        """Have the writer sign the chain head with its next batch."""
        with self._cond:
            self._head_requested = True
            self._cond.notify_all()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything noted so far is written to the operating system."""
        if self._thread is None:
            self._drain(stopping=False)
            return True
        with self._cond:
            target = self._submitted
            self._flush_target = max(self._flush_target, target)
            self._cond.notify_all()
            return self._cond.wait_for(
                lambda: self._written >= target or self.broken, timeout=timeout_s
            )

    def roll_window(self) -> None:
        """End the aggregation window now (the writer does it every interval)."""
        with self._cond:
            self._roll_window_locked()
            self._cond.notify_all()

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is held (aggregates included), a signed head and ``audit.close``."""
        with self._cond:
            self._roll_window_locked()
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
        else:
            self._drain(stopping=True)

    # --- queue -----------------------------------------------------------------------------------

    def _enqueue(self, kind: str, fields: dict[str, Any], time_ms: int, droppable: bool) -> None:
        if droppable and self._pending_records >= self.settings.queue_max:
            self._dropped += 1
            return
        self._append((kind, fields, time_ms), 1)

    def _enqueue_batch(self, batch: _GovernanceBatch, time_ms: int) -> None:
        self._append((_GOVERNANCE_BATCH, batch, time_ms), len(batch.events))

    def _append(self, entry: tuple[str, Any, int], records: int) -> None:
        if not self._pending:
            self._write_due = self._monotonic() + WRITE_BATCH_S
        self._pending.append(entry)
        self._pending_records += records
        self._submitted += 1
        if self._pending_records >= WRITE_BATCH_RECORDS:
            self._cond.notify_all()

    def _roll_window_locked(self) -> None:
        for (kind, reason, caller), held in sorted(self._window.items()):
            if held.count:
                fields = {
                    "reason": reason,
                    "caller": caller,
                    "count": held.count,
                    "aggregated": True,
                    "first_ms": held.first_ms,
                    "last_ms": held.last_ms,
                    "window_ms": self.settings.aggregate_interval_ms,
                    "example": held.example,
                }
                self._enqueue(kind, fields, held.last_ms, False)
        self._previous_window = set(self._window)
        self._window = {}
        self._window_end = self._monotonic() + self.settings.aggregate_interval_ms / 1000

    # --- writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._head_requested:
                    now = self._monotonic()
                    if now >= self._window_end:
                        self._roll_window_locked()
                        continue
                    if self._pending and (
                        self._written < self._flush_target
                        or self._pending_records >= WRITE_BATCH_RECORDS
                    ):
                        break
                    # Only timers with work behind them: an idle writer sleeps until the window.
                    due = self._window_end
                    if self._pending:
                        due = min(due, self._write_due)
                    if self._governance_head and not self.broken:
                        due = min(due, self._head_written_at + GOVERNANCE_HEAD_MIN_S)
                    if self._since_head and not self.broken:
                        due = min(due, self._head_due)
                    if self._unsynced and not self.broken:
                        due = min(due, self._fsync_due)
                    if now >= due:
                        break
                    self._cond.wait(due - now)
                stopping = self._stopping
            self._drain(stopping)
            if stopping:
                return

    def _drain(self, stopping: bool) -> None:
        with self._cond:
            batch = list(self._pending)
            self._pending.clear()
            self._pending_records = 0
            dropped, self._dropped = self._dropped, 0
            ledger_height = self.ledger_height
            head_requested, self._head_requested = self._head_requested, False
            now = self._monotonic()
            if self._governance_head and now >= self._head_written_at + GOVERNANCE_HEAD_MIN_S:
                head_requested, self._governance_head = True, False
        try:
            if self.broken:
                return
            if dropped:
                self._write("audit.dropped", {"count": dropped}, self._clock_ms())
            for kind, fields, time_ms in batch:
                if kind is _GOVERNANCE_BATCH:
                    for record_fields in fields.records():
                        self._write("governance", record_fields, time_ms)
                else:
                    self._write(kind, fields, time_ms)
            now = self._monotonic()
            if (
                self._since_head
                and not stopping
                and (
                    head_requested or now >= self._head_due or self._since_head >= HEAD_RECORDS_MAX
                )
            ):
                self._write_head(ledger_height)
            if stopping:
                self._write("audit.close", {"ledger_height": ledger_height}, self._clock_ms())
                self._write_head(ledger_height)
            self._handle.flush()
            if self._unsynced and (stopping or now >= self._fsync_due):
                self._sync()
            if stopping:
                self._handle.close()
        except Exception:
            # The node keeps running without its audit log rather than stop over it.
            log.exception("the audit log cannot be written; no further records are kept")
            self.broken = True
            with contextlib.suppress(Exception):
                self._handle.close()
        finally:
            with self._cond:
                self._written += len(batch)
                self._cond.notify_all()

    def _write(self, kind: str, fields: Mapping[str, Any], time_ms: int) -> None:
        line, digest = encode_record(self._seq, time_ms, kind, fields, self._prev)
        self._handle.write(line)
        self._seq += 1
        self._prev = digest
        self._size += len(line)
        self._since_head += 1
        if not self._unsynced:
            self._unsynced = True
            self._fsync_due = self._monotonic() + FSYNC_INTERVAL_S
        if self._size >= self.settings.segment_bytes_max and not kind.startswith("audit."):
            self._rotate()

    def _write_head(self, ledger_height: int | None) -> None:
        signed_seq, signed_hash = self._seq - 1, self._prev
        signature = self._sign(head_signing_bytes(self.node_id, signed_seq, signed_hash))
        fields = {
            "node": self.node_id,
            "signed_seq": signed_seq,
            "signed_hash": signed_hash,
            "signature": signature.hex(),
            "ledger_height": ledger_height,
        }
        self._write("audit.head", fields, self._clock_ms())
        self._since_head = 0
        self._head_written_at = self._monotonic()
        self._head_due = self._head_written_at + self.settings.head_interval_ms / 1000

    def _sync(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._unsynced = False

    def _open_segment(self) -> None:
        path = self.directory / segment_name(self._segment)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._handle = os.fdopen(fd, "ab")
        self._size = os.fstat(fd).st_size

    def _rotate(self) -> None:
        self._write_head(self.ledger_height)
        self._sync()
        self._handle.close()
        previous = segment_name(self._segment)
        self._segment += 1
        self._open_segment()
        fields = {"previous_segment": previous, "ledger_height": self.ledger_height}
        self._write("audit.segment", fields, self._clock_ms())
        self._prune()

    def _prune(self) -> None:
        segments = segments_in(self.directory)
        while len(segments) > self.settings.segments_max:
            oldest = segments.pop(0)
            first, last = _seq_range(oldest)
            oldest.unlink()
            fields = {"segment": oldest.name, "first_seq": first, "last_seq": last[0]}
            self._write("audit.removed", fields | {"last_hash": last[1]}, self._clock_ms())


def _seq_range(path: Path) -> tuple[int | None, tuple[int | None, str | None]]:
    first: int | None = None
    last: tuple[int | None, str | None] = (None, None)
    with path.open("rb") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if first is None:
                first = record.get("seq")
            last = (record.get("seq"), record.get("hash"))
    return first, last


# --- verifying -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    seq: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "seq": self.seq, "message": self.message}


@dataclass(slots=True)
class Report:
    files: list[str] = field(default_factory=list)
    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    starts_mid_chain: bool = False
    node: str | None = None
    signatures_checked: bool = False
    heads: int = 0
    signed_through_seq: int | None = None
    unsigned_records: int = 0
    torn_tails: list[dict[str, Any]] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "files": self.files,
            "records": self.records,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "starts_mid_chain": self.starts_mid_chain,
            "node": self.node,
            "signatures_checked": self.signatures_checked,
            "heads": self.heads,
            "signed_through_seq": self.signed_through_seq,
            "unsigned_records": self.unsigned_records,
            "torn_tails": self.torn_tails,
            "kinds": dict(sorted(self.kinds.items())),
            "problem": None if self.problem is None else self.problem.to_dict(),
        }


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given; a directory stands for its segments, oldest first."""
    files: list[Path] = []
    for path in paths:
        files.extend(segments_in(path) if path.is_dir() else [path])
    return files


def verify(
    paths: Sequence[Path],
    *,
    verify_signature: Callable[[str, bytes, bytes], bool] | None = None,
    node_id: str | None = None,
    require_signed: bool = False,
    anchor: tuple[int, str] | None = None,
) -> Report:
    """Check the chain through ``paths`` (segment files in order) and stop at the first problem.

    ``verify_signature(node, message, signature)`` checks head signatures; without it heads are
    checked for their place in the chain only.  With ``require_signed``, records after the last
    signed head are a problem.  ``anchor`` is a ``(seq, hash)`` seen in an earlier verification:
    the log must still hold that record, which catches records cut from its end since.
    """
    report = Report(signatures_checked=verify_signature is not None)
    files = expand_paths(paths)
    if not files:
        report.problem = Problem("", 0, None, "no audit segment files were found")
        return report
    prev_seq: int | None = None
    prev_hash: str | None = None
    prev_where = ""
    for path in files:
        report.files.append(str(path))
        try:
            data = path.read_bytes()
        except OSError as exc:
            report.problem = Problem(str(path), 0, None, f"cannot be read: {exc.strerror}")
            return report
        lines = data.split(b"\n")
        torn = lines.pop()  # what follows the last newline: empty in an intact file
        for number, line in enumerate(lines, start=1):
            where = f"{path.name} line {number}"
            record, broken = _check_line(report, line, prev_seq, prev_hash, prev_where)
            if record is None:
                seq, message = broken or (None, "unreadable")
                report.problem = Problem(str(path), number, seq, message)
                return report
            prev_seq, prev_hash, prev_where = report.last_seq, report.last_hash, where
            bad_head = _check_head(report, record, verify_signature, node_id)
            if bad_head is not None:
                report.problem = Problem(str(path), number, record["seq"], bad_head)
                return report
            if anchor is not None and record["seq"] == anchor[0] and record["hash"] != anchor[1]:
                report.problem = Problem(
                    str(path),
                    number,
                    record["seq"],
                    f"the anchor says seq {anchor[0]} has hash {anchor[1][:16]}..., the log holds "
                    f"{record['hash'][:16]}...: the chain was rewritten from there",
                )
                return report
        if torn:
            report.problem = Problem(
                str(path),
                len(lines) + 1,
                None if prev_seq is None else prev_seq + 1,
                f"the last line is incomplete ({len(torn)} bytes without a newline): a crash "
                "while writing, or a cut; the node records and removes it when it next starts",
            )
            return report
    if anchor is not None and not (
        report.first_seq is not None
        and report.last_seq is not None
        and report.first_seq <= anchor[0] <= report.last_seq
    ):
        where = (
            f"the log ends at seq {report.last_seq}: records were cut from its end"
            if report.last_seq is None or anchor[0] > report.last_seq
            else f"the log starts at seq {report.first_seq}: give the older segments too"
        )
        report.problem = Problem(
            report.files[-1], 0, anchor[0], f"the anchor seq is absent; {where}"
        )
        return report
    if require_signed and report.unsigned_records:
        report.problem = Problem(
            report.files[-1],
            0,
            report.last_seq,
            f"{report.unsigned_records} records after the last signed head "
            f"(signed through seq {report.signed_through_seq}): they may have been added or "
            "rewritten by someone without the node's key",
        )
    return report


def _check_line(
    report: Report, line: bytes, prev_seq: int | None, prev_hash: str | None, prev_where: str
) -> tuple[dict[str, Any] | None, tuple[int | None, str] | None]:
    """The record on ``line`` if it extends the chain, else where and why it does not."""
    expected = None if prev_seq is None else prev_seq + 1
    try:
        record = parse_record(line)
    except RecordError as exc:
        return None, (expected, str(exc))
    seq = record["seq"]
    if prev_seq is None:
        if seq == 0 and record["prev"] != ZERO_HASH:
            return None, (seq, "the first record (seq 0) must link to 64 zeros")
        report.first_seq = seq
        report.starts_mid_chain = seq != 0
    elif seq > prev_seq + 1:
        missing = f"seq {prev_seq + 1}" + (f" to {seq - 1}" if seq > prev_seq + 2 else "")
        return None, (
            prev_seq + 1,
            f"entry {missing} is missing here (removed or moved): seq {seq} follows seq {prev_seq}",
        )
    elif seq <= prev_seq:
        return None, (
            prev_seq + 1,
            f"entries are out of order or repeated: seq {seq} follows seq {prev_seq}",
        )
    elif record["prev"] != prev_hash:
        return None, (
            seq - 1,
            f"entry seq {seq} does not link to entry seq {prev_seq} ({prev_where}): that entry "
            "was altered or replaced",
        )
    report.records += 1
    report.last_seq = seq
    report.last_hash = record["hash"]
    report.kinds[record["kind"]] = report.kinds.get(record["kind"], 0) + 1
    report.unsigned_records += 1
    if record["kind"] == "audit.open" and isinstance(record["fields"].get("torn_tail"), dict):
        report.torn_tails.append(record["fields"]["torn_tail"] | {"recorded_at_seq": seq})
    return record, None


def _check_head(
    report: Report,
    record: dict[str, Any],
    verify_signature: Callable[[str, bytes, bytes], bool] | None,
    node_id: str | None,
) -> str | None:
    if record["kind"] != "audit.head":
        return None
    fields, seq = record["fields"], record["seq"]
    node, signature = fields.get("node"), fields.get("signature")
    if fields.get("signed_seq") != seq - 1 or fields.get("signed_hash") != record["prev"]:
        return f"the head at seq {seq} does not sign the record before it"
    if not isinstance(node, str) or not isinstance(signature, str):
        return f"the head at seq {seq} lacks its node or signature"
    if node_id is not None and node != node_id:
        return f"the head at seq {seq} is signed as {node!r}, not {node_id!r}"
    if report.node is not None and node != report.node:
        return f"the head at seq {seq} names {node!r}; earlier heads name {report.node!r}"
    report.node = node
    if verify_signature is not None:
        try:
            signature_bytes = bytes.fromhex(signature)
        except ValueError:
            signature_bytes = b""
        message = head_signing_bytes(node, seq - 1, record["prev"])
        if not verify_signature(node, message, signature_bytes):
            return (
                f"the head at seq {seq} has a signature that does not verify with {node}'s key: "
                f"the chain up to seq {seq - 1} was rewritten"
            )
    report.heads += 1
    report.signed_through_seq = seq - 1
    report.unsigned_records = 0  # a head needs no signature of its own: it only vouches
    return None


def read_records(
    paths: Sequence[Path],
) -> Iterable[tuple[str, int, dict[str, Any] | None, str | None]]:
    """Every line of the segments as ``(file, line, record, problem)``: the record as it reads
    (None if it is not JSON at all) and why it is not a valid record, if it is not."""
    for path in expand_paths(paths):
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                raw = line.rstrip(b"\n")
                try:
                    yield str(path), number, parse_record(raw), None
                except RecordError as exc:
                    try:
                        record = json.loads(raw)
                    except ValueError:
                        record = None
                    if not isinstance(record, dict) or not isinstance(record.get("fields"), dict):
                        record = None
                    yield str(path), number, record, str(exc)
