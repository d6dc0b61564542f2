"""The replica runtime: the one task that owns the consensus core and drains its effects.

Theory of operation
-------------------
gRPC handlers, the peer transport and the tick timer never touch the ``Replica``; they put inputs
into one bounded inbox.  A single asyncio task takes inputs one at a time, calls the replica, and
carries out the returned effects strictly in order:

* ``Persist`` — written to LevelDB in one synced batch *before* any later effect runs, so no
  vote leaves the node before what backs it is durable (persist-before-send);
* ``Send`` / ``Broadcast`` — handed to the peer transport's bounded per-peer queues (never blocks);
* ``Execute`` — the block goes to the executor (below), and the drain goes on;
* ``FetchBlocks`` — handed to state transfer, which feeds fetched blocks back through the inbox;
* ``StableCheckpoint`` — queued behind the blocks handed to the executor, then handed to the
  node, which stores the certificate beside its block.

**Execution overlaps consensus.**  Committed blocks go, in order, to one executor task that
applies each in a worker thread (the ledger executes it and writes it atomically), answers its
clients (``on_committed``) and feeds its state root back through the inbox as ``Executed``,
which the replica takes like any other input (``on_executed``). The replica needs a root only to
sign a checkpoint, and its votes depend on the order it agreed, not on executed state; waiting
for each block before the next input held every vote behind a large block. The executor queue
is bounded (``execution_max`` blocks): when the executor falls that far behind, the runtime
waits for it before taking its next input, so memory stays bounded and a slow disk slows
consensus rather than piling up blocks. A committed block the executor had not applied when the
node stopped is fetched or re-executed after the restart, as after any crash between commit and
execution. ``TransferredBlocks.done`` resolves once the executor has applied the blocks it
brought.

**A change of validator set.**  When an executed block schedules the next epoch, the node
offers ``EndAt`` (the old set's last height, ``contracts/membership.py``) and the replica orders
up to it. Once the replica has executed that block, the executor has applied it and its root
has gone back to the replica, the runtime hands over: ``hand_over`` (the node) returns the next
set's replica, which orders from there, or ``None`` when this node is not in that set, and the
runtime then takes no more inputs.

Blocking work (LevelDB writes, block execution) runs in worker threads, so the event loop keeps
serving clients and peers; persisting is awaited in effect order. A failure to persist or to
execute is fatal: the node stops rather than vote on state it could not record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ibledger.consensus import (
    Broadcast,
    CheckpointCertificate,
    Commit,
    CommittedBlock,
    Effect,
    EffectDrain,
    Evidence,
    Execute,
    FetchBlocks,
    Persist,
    Prepare,
    PrePrepare,
    Replica,
    RequestRejected,
    Send,
    SignedMessage,
    StableCheckpoint,
    ViewChanged,
    encode_message,
    report_late_root,
)

from . import failpoints
from .ledger import AppliedBlock, Ledger
from .metrics import NodeMetrics
from .phases import PhaseClock
from .vote_log import VoteLog
from .vote_record import VoteRecord, voted_seq

log = logging.getLogger("ibledger.runtime")


@dataclass(frozen=True, slots=True)
class Tick:
    now_ms: int


@dataclass(frozen=True, slots=True)
class PeerMessage:
    message: SignedMessage
    size: int = 0  # encoded bytes, counted against the inbox's byte budget


@dataclass(frozen=True, slots=True)
class ClientRequests:
    requests: tuple[bytes, ...]
    now_ms: int


@dataclass(frozen=True, slots=True)
class TransferredBlocks:
    blocks: tuple[CommittedBlock, ...]
    # Resolved once the replica has judged the blocks and every resulting effect has run.
    done: asyncio.Future[None] | None = None


@dataclass(frozen=True, slots=True)
class Executed:
    """The executor applied block ``seq``: its state root, for the replica."""

    seq: int
    state_root: bytes


@dataclass(frozen=True, slots=True)
class ExecutionFailed:
    """The executor could not apply a block: wakes the runtime, which raises the error it kept."""


@dataclass(frozen=True, slots=True)
class _Barrier:
    """Resolved once the executor has applied everything queued before it."""

    reached: asyncio.Future[None]


_ExecutorItem = CommittedBlock | CheckpointCertificate | _Barrier


@dataclass(frozen=True, slots=True)
class EndAt:
    """The ledger scheduled a change of validator set: the current set ends at ``seq``."""

    seq: int


Input = Tick | PeerMessage | ClientRequests | TransferredBlocks | EndAt | Executed | ExecutionFailed


class StateDiverged(Exception):
    """This node executed to a state root that a stable checkpoint certificate contradicts."""


class Outbound(Protocol):
    """What the runtime needs from the peer transport."""

    def send(self, to: str, data: bytes) -> None: ...

    def broadcast(self, data: bytes) -> None: ...


class ReplicaRuntime:
    def __init__(
        self,
        replica: Replica,
        ledger: Ledger,
        outbound: Outbound,
        *,
        on_committed: Callable[[AppliedBlock, CommittedBlock], None],
        on_fetch: Callable[[FetchBlocks], None],
        on_stable: Callable[[CheckpointCertificate], None] = lambda certificate: None,
        on_view_changed: Callable[[int, str, str], None] = lambda view, primary, cause: None,
        hand_over: Callable[[Replica], Replica | None] | None = None,
        inbox_max: int = 100_000,
        execution_max: int = 8,
        inbox_peer_bytes_max: int = 32 * 1024 * 1024,
        metrics: NodeMetrics | None = None,
        phases: PhaseClock | None = None,
        vote_log: VoteLog | None = None,
        vote_record: VoteRecord | None = None,
    ) -> None:
        self._metrics = metrics
        self._vote_log = vote_log
        self._vote_record = vote_record
        self._phases = phases
        # When the replica last left an active view (monotonic s): view-change durations.
        self._view_left_at: float | None = None
        self.replica = replica
        self._ledger = ledger
        self._outbound = outbound
        self._on_committed = on_committed
        self._on_fetch = on_fetch
        self._on_stable = on_stable
        self._on_view_changed = on_view_changed
        self._hand_over = hand_over
        self.retired = False  # this node is in no later validator set: it takes no inputs
        # Unbounded as a queue: ``offer`` enforces ``inbox_max`` on outside inputs, so the
        # executor's ``Executed`` (bounded by ``execution_max``) can never be dropped.
        self._inbox: asyncio.Queue[Input] = asyncio.Queue()
        self._inbox_max = inbox_max
        self._execution: asyncio.Queue[_ExecutorItem] = asyncio.Queue(maxsize=execution_max)
        # Blocks handed to the executor whose root the replica has not taken yet.
        self._unreported = 0
        # The replica finished its validator set: hand over once execution has caught up.
        self._handing_over = False
        self._execution_error: BaseException | None = None
        # Peer messages waiting in the inbox, in encoded bytes: receivers pause above the
        # budget, so gRPC flow control pushes back on the sender instead of memory growing here.
        self._peer_bytes = 0
        self._peer_bytes_max = inbox_peer_bytes_max
        self._room = asyncio.Event()
        self._room.set()
        self.dropped_inputs = 0
        self.evidence: deque[Evidence] = deque(maxlen=256)
        self.failure: BaseException | None = None

    # --- inputs (any task) -------------------------------------------------------------------

    def offer(self, item: Input) -> bool:
        """Queue an input without waiting; False (and counted) when the inbox is full."""
        if self._inbox.qsize() >= self._inbox_max:
            self.dropped_inputs += 1
            return False
        self._inbox.put_nowait(item)
        if isinstance(item, PeerMessage) and item.size:
            self._peer_bytes += item.size
            if self._peer_bytes > self._peer_bytes_max:
                self._room.clear()
        return True

    async def room(self) -> None:
        """Return once the peer messages waiting in the inbox are within their byte budget."""
        await self._room.wait()

    @property
    def peer_bytes_waiting(self) -> int:
        return self._peer_bytes

    @property
    def backlog(self) -> int:
        return self._inbox.qsize()

    @property
    def execution_backlog(self) -> int:
        """Committed blocks handed to the executor whose state root the replica has not had."""
        return self._unreported

    # --- the owning task ---------------------------------------------------------------------

    async def run(self) -> None:
        executor = asyncio.create_task(self._execute_in_order(), name="block-executor")
        try:
            await self._take_inputs()
        finally:
            executor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await executor

    async def _take_inputs(self) -> None:
        try:
            while True:
                item = await self._inbox.get()
                if isinstance(item, PeerMessage) and item.size:
                    self._peer_bytes -= item.size
                    if self._peer_bytes <= self._peer_bytes_max:
                        self._room.set()
                began = time.perf_counter()
                effects = self._dispatch(item)
                if self._metrics is not None:
                    kind = type(item).__name__
                    self._metrics.consensus_step.labels(kind).observe(time.perf_counter() - began)
                # (Stand-in replicas in tests need not say; they are always in an active view.)
                if self._view_left_at is None and not getattr(self.replica, "view_active", True):
                    self._view_left_at = time.monotonic()
                await self._drain(effects)
                if self._hand_over is not None and not self.retired and self.replica.finished:
                    self._handing_over = True
                if self._handing_over and self._unreported == 0:
                    # Every block of the finished set is applied and its root reported (the
                    # last is a checkpoint: the old set's vote for it has gone out).
                    self._handing_over = False
                    assert self._hand_over is not None
                    following = self._hand_over(self.replica)
                    if following is None:
                        self.retired = True
                    else:
                        self.replica = following
                done = item.done if isinstance(item, TransferredBlocks) else None
                if done is not None and not done.done():
                    # State transfer reads the ledger's height next: after the blocks applied.
                    await self._execution.put(_Barrier(done))
        except asyncio.CancelledError:
            raise
        except StateDiverged as exc:
            # Not a bug of this process to trace: its state is not the network's. Voting or
            # answering from it would spread a fork, so the node stops and says why.
            self.failure = exc
            log.critical("replica stopped: %s", exc)
        except BaseException as exc:
            self.failure = exc
            log.critical("replica runtime stopped: %s", exc, exc_info=True)
            raise

    def _dispatch(self, item: Input) -> list[Effect]:
        replica = self.replica
        if self._execution_error is not None:
            raise self._execution_error
        if isinstance(item, Executed):
            self._unreported -= 1
            if self.retired:
                return []
            return report_late_root(replica, item.seq, item.state_root)
        if self.retired or self._handing_over:
            # A finished set's replica orders nothing more; what arrives for the next set
            # in the moment before the hand-over is retransmitted by its senders.
            return []
        match item:
            case Tick(now_ms):
                return replica.tick(now_ms)
            case PeerMessage(message, _):
                return replica.step(message)
            case ClientRequests(requests, now_ms):
                # The node relays every admitted request to all peers itself (peer.py), so
                # backups need not forward it to the primary as a signed message too.
                return replica.submit_relayed(requests, now_ms)
            case TransferredBlocks(blocks, _):
                failpoints.hit("state-transfer.apply")
                return replica.on_state_transfer(blocks)
            case EndAt(seq):
                return replica.end_at(seq)
        raise AssertionError(f"unknown input {item!r}")

    async def _execute_in_order(self) -> None:
        """The executor: applies committed blocks in order and reports each root back."""
        while True:
            item = await self._execution.get()
            try:
                if isinstance(item, CommittedBlock):
                    root = await self._apply(item)
                    self._inbox.put_nowait(Executed(item.seq, root))
                elif isinstance(item, CheckpointCertificate):
                    self._on_stable(item)
                elif not item.reached.done():
                    item.reached.set_result(None)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                # The runtime raises it at its next input (this one wakes it); until it stops,
                # take what it queues so that it never waits on a full queue.
                self._execution_error = exc
                self._inbox.put_nowait(ExecutionFailed())
                while True:
                    await self._execution.get()

    async def _apply(self, block: CommittedBlock) -> bytes:
        phases = self._phases
        began = time.perf_counter()
        applying = asyncio.ensure_future(asyncio.to_thread(self._ledger.apply_committed, block))
        try:
            applied = await asyncio.shield(applying)
        except asyncio.CancelledError:
            # The node is stopping: let the block's write finish before the ledger closes.
            with contextlib.suppress(BaseException):
                await applying
            raise
        if self._metrics is not None:
            self._metrics.execution.observe(time.perf_counter() - began)
        executed_at = phases.executed(block.seq) if phases is not None else 0.0
        failpoints.hit("execute.before-reply")
        self._on_committed(applied, block)
        if phases is not None:
            phases.notified(block.seq, executed_at)
        return applied.state_root

    async def _cover(self, sm: SignedMessage) -> None:
        # The vote record must cover a vote before it leaves: a node that loses its data
        # directory afterwards then knows not to vote that far again (vote_record.py).
        record = self._vote_record
        if record is None:
            return
        seq = voted_seq(sm)
        if seq is not None and not record.covers(seq):
            await asyncio.to_thread(record.reserve, seq)

    def _observe_broadcast(self, sm: SignedMessage) -> None:
        assert self._phases is not None
        message = sm.message
        if isinstance(message, PrePrepare | Prepare):
            self._phases.proposed(message.seq)
        elif isinstance(message, Commit):
            self._phases.prepared(message.seq)

    async def _drain(self, effects: list[Effect]) -> None:
        drain = EffectDrain(self.replica, effects)
        for effect in drain:
            match effect:
                case Persist(updates):
                    began = time.perf_counter()
                    failpoints.hit("consensus.before-persist")
                    await asyncio.to_thread(self._ledger.persist_consensus, updates)
                    failpoints.hit("consensus.after-persist")
                    if self._metrics is not None:
                        self._metrics.storage.labels("consensus").observe(
                            time.perf_counter() - began
                        )
                case Send(to, message):
                    await self._cover(message)
                    if self._vote_log is not None:
                        self._vote_log.record(message)
                    self._outbound.send(to, encode_message(message))
                case Broadcast(message):
                    await self._cover(message)
                    if self._vote_log is not None:
                        self._vote_log.record(message)
                    self._outbound.broadcast(encode_message(message))
                    if self._phases is not None:
                        self._observe_broadcast(message)
                case Execute(block):
                    if self._phases is not None:
                        self._phases.committed(block.seq, block.block.request_ids)
                    drain.handed_off(effect)
                    self._unreported += 1
                    await self._execution.put(block)
                case FetchBlocks():
                    self._on_fetch(effect)
                case StableCheckpoint(certificate):
                    await self._execution.put(certificate)  # after the block it names
                case ViewChanged(view, primary, cause):
                    seconds = (
                        time.monotonic() - self._view_left_at
                        if self._view_left_at is not None
                        else None
                    )
                    self._view_left_at = None
                    log.info(
                        "view changed",
                        extra={
                            "event": "view-change",
                            "view": view,
                            "primary": primary,
                            "cause": cause,
                            "seconds": round(seconds, 3) if seconds is not None else None,
                        },
                    )
                    if self._metrics is not None and seconds is not None:
                        self._metrics.view_change_duration.observe(seconds)
                    self._on_view_changed(view, primary, cause)
                case Evidence("state-root-divergence", _, _):
                    self.evidence.append(effect)
                    raise StateDiverged(
                        "this node's state root differs from the one 2f+1 validators certified "
                        f"at checkpoint {self.replica.stable_checkpoint.seq}; it stops voting "
                        "and serving. Check its genesis file and software version, then "
                        "rebuild its data directory from a healthy node"
                    )
                case Evidence(kind, offender, _):
                    self.evidence.append(effect)
                    log.warning(
                        "evidence of misbehaviour", extra={"kind": kind, "offender": offender}
                    )
                case RequestRejected(request_id, reason):
                    log.debug(
                        "request rejected by consensus",
                        extra={"request_id": request_id.hex(), "reason": reason},
                    )
                case _:
                    unknown: Any = effect
                    raise AssertionError(f"unknown effect {unknown!r}")
