"""The PBFT replica: the one owner of consensus state and the one place that emits effects.

Messages, ticks and requests come in; `Persist`, `Send`, `Broadcast`, `Execute` and the other
effects go out. The sub-protocols decide in their own modules, each readable against one section
of Castro and Liskov (OSDI'99; TOCS 2002), and hold no reference to the replica or to each other:

- `log`: the message log, the normal-case predicates and certificates (4.2);
- `requests`: the request queue (4.1);
- `checkpoints`: the CHECKPOINT vote table and garbage collection (4.3);
- `view_change`: V, min-s, max-s, O and NEW-VIEW validation, as pure functions (4.4);
- `catch_up`: state transfer towards a checkpoint above us (4.3, TOCS 6);
- `retransmit`: what a STATUS reply carries (TOCS 6);
- `timers`: the request and new-view timeouts with backoff, and the periodic duties (4.5.2);
- `state`: the persisted-record format and its recovery (TOCS 6);
- `body_fetch`: fetching block bodies that certificates name by digest, and serving ours;
- `certificates`: certificate checks and the authentication of every peer message.

The replica applies their answers, one part per sub-protocol, each the only writer of the state
it owns (`replica_core` lists who writes what): `replica_normal` (the three phases and
execution), `replica_requests` (requests and the request timer), `replica_checkpoints` (stable
checkpoints and the watermarks), `replica_transfer` (state transfer, bodies, STATUS replies)
and `replica_view_change` (VIEW-CHANGE and NEW-VIEW). This module holds the entry points, the
tick, dispatch and recovery. The invariants, the deviations from the paper and a glossary from
the paper's symbols to these names are in the package documentation (`consensus/__init__.py`).

Recovery (TOCS 6). Everything a vote depends on is in a `Persist` emitted before the vote, so a
replica restarted from `PersistedState` re-signs only digests it signed before. A CHECKPOINT is
not persisted: a replica that restarts on a checkpoint block above its stable checkpoint signs it
again from the executor's tip (sequence number, block digest, state root), since its lost vote
may be one the quorum needs.

Input from peers is never trusted: every message is authenticated, validated, counted in
`counters` when dropped, and every buffer has a bound from `ReplicaConfig`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import assert_never

from . import state
from .body_fetch import BodyFetcher, BodyServer
from .catch_up import CatchUp
from .certificates import SignatureCache, authentication_failure
from .checkpoints import CheckpointState
from .config import ConfigError, ReplicaConfig
from .crypto import Signer, Verifier
from .effects import Effect
from .log import ExecutedChain, FutureBuffer, MessageLog
from .messages import (
    GENESIS_TIP,
    BlockBody,
    BlockRequest,
    Checkpoint,
    CheckpointCertificate,
    Commit,
    CommittedProof,
    ExecutedTip,
    NewView,
    Prepare,
    PrePrepare,
    RequestForward,
    SignedMessage,
    Status,
    ViewChange,
)
from .replica_view_change import ViewChanging
from .requests import RequestQueue, RequestValidator
from .state import PersistedState
from .timers import Timers
from .view_change import ViewState, compute_new_view_order

__all__ = ["Replica", "ReplicaStatus", "RequestValidator", "compute_new_view_order"]

_SIG_CACHE_MAX = 8192


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    replica_id: str
    view: int
    view_active: bool
    primary: str
    last_executed: int
    stable_seq: int
    watermark_low: int
    watermark_high: int
    pending_requests: int
    catching_up: bool


class Replica(ViewChanging):
    """One PBFT replica. Not thread-safe: one owner calls its methods and drains the effects."""

    def __init__(
        self,
        config: ReplicaConfig,
        replica_id: str,
        signer: Signer,
        verifier: Verifier,
        persisted: PersistedState | None = None,
        last_executed: ExecutedTip | None = None,
        *,
        request_validator: RequestValidator | None = None,
    ) -> None:
        if replica_id not in config.members:
            raise ConfigError(f"{replica_id!r} is not a member")
        if signer.replica_id != replica_id:
            raise ConfigError("signer belongs to another replica")
        self._config = config
        self._id = replica_id
        self._members = frozenset(config.members)
        self._member_index = {m: i for i, m in enumerate(config.members)}
        self._signer = signer
        self._verify = SignatureCache(verifier, _SIG_CACHE_MAX).verify
        self._request_validator = request_validator
        self.counters: Counter[str] = Counter()

        tip = last_executed or GENESIS_TIP
        if tip.seq < config.base.seq:
            raise ConfigError(
                f"executed tip {tip.seq} is below the validator set's base {config.base.seq}"
            )
        self._chain = ExecutedChain(tip.seq, tip.digest, tip.timestamp_ms)
        self._log = MessageLog(next_seq=tip.seq + 1, max_accepted=tip.seq)
        # The base is trusted, not certified: there is nothing to hand out for it.
        self._cp = CheckpointState(stable=config.base, reported=config.base.seq)
        self._vs = ViewState()
        self._catch_up = CatchUp()
        self._requests = RequestQueue()
        self._timers = Timers.for_config(config)
        self._fetcher = BodyFetcher(
            replica_id, config.bodies_per_request_max, config.retransmit_ticks
        )
        self._future = FutureBuffer(max(1, config.future_messages_max // config.n))
        self._status_replied: dict[str, int] = {}
        self._body_server = BodyServer(
            config.bodies_per_request_max,
            config.retransmit_ticks,
            config.n * config.watermark_window,
        )
        self._tick = 0
        self._now_ms = 0
        self._started = False
        self._dirty: dict[bytes, bytes | None] = {}
        if persisted is not None and persisted.records:
            self._restore(persisted)
        self._vote_for_restart_tip(tip)

    # ------------------------------------------------------------------ public properties

    @property
    def replica_id(self) -> str:
        return self._id

    @property
    def config(self) -> ReplicaConfig:
        return self._config

    @property
    def view(self) -> int:
        return self._vs.view

    @property
    def view_active(self) -> bool:
        return self._vs.active

    @property
    def last_executed(self) -> int:
        return self._chain.seq

    @property
    def stable_checkpoint(self) -> CheckpointCertificate:
        return self._cp.stable

    @property
    def watermark_low(self) -> int:
        return self._cp.stable.seq

    @property
    def watermark_high(self) -> int:
        return self._high()

    @property
    def end_seq(self) -> int | None:
        """The last sequence number this validator set orders, once a change is scheduled."""
        return self._log.end_seq

    @property
    def finished(self) -> bool:
        """True once the set's last block executed: the node hands over to the next set."""
        return self._log.end_seq is not None and self._chain.seq >= self._log.end_seq

    def status(self) -> ReplicaStatus:
        return ReplicaStatus(
            self._id,
            self._vs.view,
            self._vs.active,
            self.primary,
            self._chain.seq,
            self._cp.stable.seq,
            self.watermark_low,
            self.watermark_high,
            len(self._requests),
            self.catching_up,
        )

    def is_prepared(self, seq: int) -> bool:
        """prepared(m, v, n, i) of section 4.2 for the current view."""
        slot = self._log.slots.get(seq)
        return slot is not None and slot.prepared

    def is_committed_local(self, seq: int) -> bool:
        """committed-local(m, v, n, i): a commit certificate and the body are known."""
        slot = self._log.slots.get(seq)
        return (
            slot is not None
            and slot.commit_cert is not None
            and (slot.committed_block is not None or seq <= self._chain.seq)
        )

    # ------------------------------------------------------------------ entry points

    def tick(self, now_ms: int) -> list[Effect]:
        """Advance one logical tick; `now_ms` is the node's wall clock (for block timestamps)."""
        out: list[Effect] = []
        self._tick += 1
        self._now_ms = now_ms
        tick, timers = self._tick, self._timers
        if not self._started:
            self._started = True
            self._on_first_tick(out)
        self._tick_catch_up(out)
        if self._vs.active:
            if not self.finished:  # what is still queued is the next set's to order
                self._tick_requests(out)
        else:
            self._tick_view_change(out)
        self._request_bodies(out)
        if timers.status.due(tick):
            timers.status.mark(tick)
            status = Status(self._vs.view, self._vs.active, self._chain.seq, self._cp.stable.seq)
            self._broadcast(out, self._sign(status))
        return self._finish(out)

    def end_at(self, seq: int) -> list[Effect]:
        """The ledger scheduled a change of membership: this set orders nothing above `seq`.

        The node calls it after executing the block that scheduled the change, at height h,
        with seq >= h + watermark_window. A replica that has not yet executed h has a stable
        checkpoint below h, so it accepts nothing above h - 1 + watermark_window either: no
        correct replica prepares above `seq`, whichever of the two it is. Until `seq` the
        primary proposes empty blocks when it has no requests, so the set reaches its end
        without waiting for load."""
        out: list[Effect] = []
        self._close_at(seq)
        self._maybe_propose(out)
        return self._finish(out)

    def step(self, message: SignedMessage) -> list[Effect]:
        """Handle one authenticated-or-not peer message (already decoded)."""
        out: list[Effect] = []
        failure = authentication_failure(message, self._id, self._members, self._verify)
        if failure is not None:
            self._drop(failure)
        else:
            self._dispatch(message, out)
        return self._finish(out)

    # ------------------------------------------------------------------ dispatch and recovery

    def _dispatch(self, sm: SignedMessage, out: list[Effect]) -> None:
        message = sm.message
        match message:
            case PrePrepare():
                self._on_pre_prepare(sm, message, out)
            case Prepare():
                self._on_prepare(sm, message, out)
            case Commit():
                self._on_commit(sm, message, out)
            case Checkpoint():
                self._on_checkpoint(sm, message, out)
            case ViewChange():
                self._on_view_change(sm, message, out)
            case NewView():
                self._on_new_view(sm, message, out)
            case CommittedProof():
                self._on_committed_proof(sm, message, out)
            case RequestForward():
                self._on_request_forward(sm, message, out)
            case Status():
                self._on_status(sm, message, out)
            case BlockRequest():
                self._on_block_request(sm, message, out)
            case BlockBody():
                self._on_block_body(sm, message, out)
            case _:
                assert_never(message)

    def _on_first_tick(self, out: list[Effect]) -> None:
        for vote, _ in self._cp.own_checkpoints.values():
            self._broadcast(out, vote)
        if not self._vs.active and not self.below_vote_floor:
            self._broadcast(out, self._build_view_change())
        if self.catching_up:
            self._emit_fetch(out)

    def _restore(self, persisted: PersistedState) -> None:
        restored = state.restore(
            persisted,
            last_executed=self._chain.seq,
            own_id=self._id,
            cfg=self._config,
            sign=self._sign,
        )
        # In this order: the log's floor is the stable checkpoint, catch-up's target too.
        self._restore_view(restored)
        self._restore_stable(restored)
        self._restore_log(restored)
        self._restore_catch_up()
