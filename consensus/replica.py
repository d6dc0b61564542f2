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

The replica applies their answers: it alone writes its fields, signs, and appends effects, so
the fields the view change's safety depends on (view, stable checkpoint, prepared certificates,
the accepted log) are written only here. The invariants, the deviations from the paper and a
glossary from the paper's symbols to these names are in the package documentation
(`consensus/__init__.py`).

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
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, assert_never

from . import state, view_change
from .body_fetch import PURPOSE_COMMIT, PURPOSE_VIEW_CHANGE, BodyFetcher, BodyServer
from .catch_up import CatchUp, fetch_order, transfer_run
from .certificates import SignatureCache, authentication_failure, check_commit_proof
from .checkpoints import CheckpointVotes, plan_collection, stable_proof, tally
from .codec import signing_bytes
from .config import ConfigError, ReplicaConfig
from .crypto import Signer, Verifier
from .effects import (
    Broadcast,
    Effect,
    Evidence,
    Execute,
    Persist,
    RequestRejected,
    Send,
    ViewChanged,
)
from .log import (
    ACCEPT,
    BUFFER,
    EQUIVOCATION,
    IGNORE,
    STASH,
    FutureBuffer,
    Slot,
    admit_pre_prepare,
    chain_timestamp,
    commit_certificate,
    commit_verdict,
    pre_prepare_of,
    pre_prepare_verdict,
    prepare_verdict,
    prepared_certificate,
    vote_of,
)
from .messages import (
    GENESIS_CHECKPOINT,
    GENESIS_TIP,
    Block,
    BlockBody,
    BlockRequest,
    Checkpoint,
    CheckpointCertificate,
    Commit,
    CommitCertificate,
    CommittedBlock,
    CommittedProof,
    ExecutedTip,
    Message,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    RequestForward,
    SignedMessage,
    Status,
    ViewChange,
    agreed_timestamp,
)
from .requests import (
    REFUSED_DUPLICATE,
    REFUSED_SIZE,
    RequestQueue,
    RequestValidator,
    forward_too_large,
)
from .retransmit import plan_status_reply
from .state import PersistedState, Record
from .timers import Timers
from .view_change import MissingBody, compute_new_view_order

__all__ = ["Replica", "ReplicaStatus", "RequestValidator", "compute_new_view_order"]

_SIG_CACHE_MAX = 8192


def _discard_through(by_seq: dict[int, Any], seq: int) -> None:
    for key in [k for k in by_seq if k <= seq]:
        del by_seq[key]


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


class Replica:
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
        # The executed chain: the last block applied, its digest and agreed time.
        self._last_executed = tip.seq
        self._last_digest = tip.digest
        self._last_ts = tip.timestamp_ms
        # View (v) and what the view change reads and writes.
        self._view = 0
        self._view_active = True
        self._new_view_msg: SignedMessage | None = None
        self._nv_waiting: SignedMessage | None = None  # a valid NEW-VIEW whose bodies are coming
        self._nv_sent_for = -1
        self._own_vc: SignedMessage | None = None
        self._view_changes: dict[str, SignedMessage] = {}
        # The message log: slots in (h, H], P, bodies by digest, pre-prepares awaiting n-1.
        self._stable = GENESIS_CHECKPOINT
        self._slots: dict[int, Slot] = {}
        self._prepared: dict[int, tuple[PreparedCertificate, Block]] = {}
        self._bodies: dict[bytes, Block] = {}
        self._waiting_pps: dict[int, SignedMessage] = {}
        self._next_seq = tip.seq + 1
        self._max_accepted_seq = tip.seq
        # Checkpoints: votes, roots awaited from the executor, our own roots and votes.
        self._view_change_cause = "new-view-received"
        self._checkpoint_votes = CheckpointVotes()
        self._awaiting_root: dict[int, bytes] = {}
        self._own_roots: dict[int, bytes] = {}
        self._own_checkpoints: dict[int, tuple[SignedMessage, int]] = {}  # vote, tick signed
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
        if (
            tip.seq > self._stable.seq
            and tip.seq % config.checkpoint_interval == 0
            and tip.state_root
        ):
            # The vote for the executed tip may have died with the previous process; without it
            # the checkpoint that opens the window may lack a quorum (rebroadcast on first tick).
            self._own_roots[tip.seq] = tip.state_root
            vote = self._sign_checkpoint(Checkpoint(tip.seq, tip.digest, tip.state_root))
            self._checkpoint_votes.set_own(tip.seq, self._id, vote)

    # ------------------------------------------------------------------ public properties

    @property
    def replica_id(self) -> str:
        return self._id

    @property
    def config(self) -> ReplicaConfig:
        return self._config

    @property
    def view(self) -> int:
        return self._view

    @property
    def view_active(self) -> bool:
        return self._view_active

    @property
    def primary(self) -> str:
        return self._config.primary(self._view)

    @property
    def is_primary(self) -> bool:
        return self.primary == self._id

    @property
    def last_executed(self) -> int:
        return self._last_executed

    @property
    def stable_checkpoint(self) -> CheckpointCertificate:
        return self._stable

    @property
    def watermark_low(self) -> int:
        return self._stable.seq

    @property
    def watermark_high(self) -> int:
        return self._stable.seq + self._config.watermark_window

    @property
    def catching_up(self) -> bool:
        return self._catch_up.behind(self._last_executed)

    def status(self) -> ReplicaStatus:
        return ReplicaStatus(
            self._id,
            self._view,
            self._view_active,
            self.primary,
            self._last_executed,
            self._stable.seq,
            self.watermark_low,
            self.watermark_high,
            len(self._requests),
            self.catching_up,
        )

    def is_prepared(self, seq: int) -> bool:
        """prepared(m, v, n, i) of section 4.2 for the current view."""
        slot = self._slots.get(seq)
        return slot is not None and slot.prepared

    def is_committed_local(self, seq: int) -> bool:
        """committed-local(m, v, n, i): a commit certificate and the body are known."""
        slot = self._slots.get(seq)
        return (
            slot is not None
            and slot.commit_cert is not None
            and (slot.committed_block is not None or seq <= self._last_executed)
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
        if self.catching_up and timers.fetch.due(tick):
            self._emit_fetch(out)
        if (
            timers.lag.expired(tick, self._config.fetch_retry_ticks)
            and self._catch_up.lag_target > self._last_executed
        ):
            timers.lag.stop()
            self._begin_catch_up(self._catch_up.lag_target, self._catch_up.lag_hint, out)
        if self._view_active:
            self._maybe_propose(out)
            waiting = self._waiting_for_execution() and not self.catching_up
            if not waiting:
                timers.request.stop()
            elif not timers.request.running:
                timers.request.start(tick)
            elif timers.request.expired(tick, timers.backoff.duration()):
                self.counters["view-change-timeout"] += 1
                self._start_view_change(self._view + 1, out, timeout=True, cause="request-timeout")
            if self._view_active and not self.is_primary and timers.forward.due(tick):
                # A request the primary has not proposed in time goes to every replica, so
                # that all backups start their view-change timers (a silent primary, B9).
                self._forward_pending(
                    out, min_age_ticks=self._config.retransmit_ticks, everyone=True
                )
        else:
            if timers.new_view.expired(tick, timers.backoff.duration()):
                self.counters["new-view-timeout"] += 1
                self._start_view_change(self._view + 1, out, timeout=True, cause="new-view-timeout")
            elif timers.view_change_resend.due(tick) and self._own_vc:
                timers.view_change_resend.mark(tick)
                self._broadcast(out, self._own_vc)
            if not self._view_active:
                self._check_view_change_quorum(out)
        self._request_bodies(out)
        if timers.status.due(tick):
            timers.status.mark(tick)
            status = Status(self._view, self._view_active, self._last_executed, self._stable.seq)
            self._broadcast(out, self._sign(status))
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

    def submit(self, request: bytes, now_ms: int, *, forward: bool = True) -> list[Effect]:
        """Queue an opaque client request (id = chain hash of the bytes); backups forward it.

        ``forward=False`` is for a node that has already relayed the request to every replica
        itself (the primary included): the backup only queues it and starts its timers; if the
        primary still has not proposed it after ``retransmit_ticks``, the usual retransmission
        sends it to everyone (section 4.1's client retransmission)."""
        out: list[Effect] = []
        self._now_ms = now_ms
        rid = self._add_request(request, out)
        if rid is not None:
            if self._view_active and self.is_primary:
                self._maybe_propose(out)
            elif self._view_active and forward:
                forwarded = RequestForward((self._requests.request(rid),))
                self._send(out, self.primary, self._sign(forwarded))
        return self._finish(out)

    def submit_relayed(self, requests: Iterable[bytes], now_ms: int) -> list[Effect]:
        """Queue requests that the node has already relayed to every replica (``submit`` with
        ``forward=False``), all before any proposal, so that a batch arriving together is
        proposed together rather than its first request alone."""
        out: list[Effect] = []
        self._now_ms = now_ms
        queued = False
        for request in requests:
            queued = self._add_request(request, out) is not None or queued
        if queued and self._view_active and self.is_primary:
            self._maybe_propose(out)
        return self._finish(out)

    def on_executed(self, seq: int, state_root: bytes) -> list[Effect]:
        """The executor applied block `seq`; only checkpoint sequence numbers matter."""
        out: list[Effect] = []
        digest = self._awaiting_root.pop(seq, None)
        if digest is None:
            return out
        if seq <= self._stable.seq:
            if seq == self._stable.seq and state_root != self._stable.state_root:
                self._divergence(out)
            return self._finish(out)
        self._own_roots[seq] = state_root
        checkpoint = self._sign_checkpoint(Checkpoint(seq, digest, state_root))
        self._broadcast(out, checkpoint)
        self._add_checkpoint_vote(checkpoint, out)
        return self._finish(out)

    def on_state_transfer(self, blocks: Iterable[CommittedBlock]) -> list[Effect]:
        """Blocks fetched from peers; only the block and its commit certificate are trusted."""
        out: list[Effect] = []
        limit = 4 * self._config.watermark_window
        run, stopped = transfer_run(blocks, self._last_executed, limit, self._valid_commit_proof)
        if stopped is not None:
            self.counters[stopped] += 1
        for cb in run:
            self._execute(cb.block, cb.certificate, out)
        if run:
            self._try_execute(out)
            self._after_progress(out)
            if self.catching_up:
                self._emit_fetch(out)
        return self._finish(out)

    # ------------------------------------------------------------------ plumbing

    def _finish(self, out: list[Effect]) -> list[Effect]:
        self._flush(out)
        return out

    def _flush(self, out: list[Effect]) -> None:
        if self._dirty:
            out.append(Persist(tuple(self._dirty.items())))
            self._dirty = {}

    def _broadcast(self, out: list[Effect], sm: SignedMessage) -> None:
        self._flush(out)
        out.append(Broadcast(sm))

    def _send(self, out: list[Effect], to: str, sm: SignedMessage) -> None:
        self._flush(out)
        out.append(Send(to, sm))

    def _sign(self, message: Message) -> SignedMessage:
        data = signing_bytes(message, self._id)
        return SignedMessage(message, self._id, self._signer.sign(data))

    def _drop(self, reason: str) -> None:
        self.counters["drop-" + reason] += 1

    def _put(self, record: Record) -> None:
        self._dirty[record[0]] = record[1]

    def _delete(self, key: bytes) -> None:
        self._dirty[key] = None

    def _can_vote(self) -> bool:
        return self._view_active and not self.catching_up

    def _high(self) -> int:
        return self._stable.seq + self._config.watermark_window

    def _waiting_for_execution(self) -> bool:
        return bool(self._requests) or self._max_accepted_seq > self._last_executed

    def _slot(self, seq: int) -> Slot:
        slot = self._slots.get(seq)
        if slot is None:
            slot = self._slots[seq] = Slot(seq)
        return slot

    def _chain_ts(self, seq: int) -> int | None:
        return chain_timestamp(self._slots, seq, self._last_executed, self._last_ts)

    def _store_body(self, block: Block) -> None:
        if block.digest not in self._bodies:
            # Bodies are only stored for blocks inside the window, which bounds this map.
            self._bodies[block.digest] = block

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

    def _refuse(self, sm: SignedMessage, verdict: str) -> None:
        if verdict == BUFFER:
            if not self._future.add(sm):
                self._drop("future-buffer-full")
        elif verdict != IGNORE:
            self._drop(verdict)

    def _replay_future(self, out: list[Effect]) -> None:
        for sm in self._future.take():
            self._dispatch(sm, out)

    # ------------------------------------------------------------------ requests

    def _add_request(self, request: bytes, out: list[Effect]) -> bytes | None:
        rid, refused = self._requests.admit(
            request, self._tick, self._config, self._request_validator
        )
        if refused == REFUSED_SIZE:
            self._drop("request-size")
        elif refused is not None:
            self.counters["request-" + refused] += 1
            if refused != REFUSED_DUPLICATE:
                assert rid is not None
                out.append(RequestRejected(rid, refused))
        return None if refused is not None else rid

    def _on_request_forward(self, sm: SignedMessage, m: RequestForward, out: list[Effect]) -> None:
        if forward_too_large(m, self._config):
            self._drop("forward-too-large")
            return
        for request in m.requests:
            self._add_request(request, out)
        if self._view_active and self.is_primary:
            self._maybe_propose(out)

    def _forward_pending(
        self, out: list[Effect], min_age_ticks: int, everyone: bool = False
    ) -> None:
        self._timers.forward.mark(self._tick)
        batch = self._requests.forward_batch(self._tick, min_age_ticks, self._config)
        if batch:
            forward = self._sign(RequestForward(tuple(batch)))
            if everyone:
                self._broadcast(out, forward)
            else:
                self._send(out, self.primary, forward)

    def _maybe_propose(self, out: list[Effect]) -> None:
        if not (self._view_active and self.is_primary and not self.catching_up):
            return
        cfg = self._config
        if self._next_seq <= self._last_executed:
            self._next_seq = self._last_executed + 1
        while self._requests.has_proposable:
            seq = self._next_seq
            if not self._requests.ready_to_propose(self._tick, cfg, seq - 1 - self._last_executed):
                return
            if seq > self._high():
                return
            previous = self._chain_ts(seq - 1)
            if previous is None:
                self.counters["propose-no-predecessor"] += 1
                return
            timestamp = max(self._now_ms, previous + 1)
            if timestamp > self._now_ms + cfg.timestamp_skew_ms:
                return  # wait until the clock catches up with the parent's time
            block = Block(seq, timestamp, self._requests.next_batch(cfg), cfg.hash_fn)
            pp = self._sign(PrePrepare(self._view, seq, block.digest, block))
            slot = self._slot(seq)
            self._accept(slot, pp, block, from_new_view=False)
            self._next_seq = seq + 1
            self._broadcast(out, pp)
            self._check_prepared(slot, out)

    # ------------------------------------------------------------------ normal case

    def _accept(self, slot: Slot, pp: SignedMessage, block: Block, from_new_view: bool) -> None:
        message = pre_prepare_of(pp)
        if message.block is not block:
            pp = replace(pp, message=replace(message, block=block))
        slot.pre_prepare = pp
        slot.block = block
        slot.from_new_view = from_new_view
        slot.accepted_tick = self._tick
        slot.eff_ts = None
        self._chain_ts(slot.seq)
        self._store_body(block)
        if slot.seq > self._max_accepted_seq:
            self._max_accepted_seq = slot.seq
        self._requests.in_flight(block.request_ids, slot.seq)
        self._put(state.pre_prepare_record(slot.seq, from_new_view, pp))

    def _on_pre_prepare(self, sm: SignedMessage, pp: PrePrepare, out: list[Effect]) -> None:
        verdict = pre_prepare_verdict(
            pp,
            sm.sender,
            view=self._view,
            view_active=self._view_active,
            primary=self.primary,
            floor=max(self._last_executed, self._stable.seq),
            high=self._high(),
            window=self._config.watermark_window,
        )
        if verdict is not None:
            self._refuse(sm, verdict)
            return
        seq = pp.seq
        admission = admit_pre_prepare(
            pp,
            slots=self._slots,
            stash=self._waiting_pps,
            catching_up=self.catching_up,
            bodies=self._bodies,
            cfg=self._config,
            validator=self._request_validator,
            last_executed=self._last_executed,
            last_ts=self._last_ts,
            now_ms=self._now_ms,
        )
        if admission.settled:
            self._waiting_pps.pop(seq, None)
        if admission.action == EQUIVOCATION:
            assert admission.first is not None
            self._equivocation(admission.first, sm, out)
            return
        if admission.action == STASH:
            self._waiting_pps[seq] = sm
        if admission.action != ACCEPT or admission.block is None:
            self._refuse(sm, admission.reason)
            return
        slot = self._slot(seq)
        self._accept(slot, sm, admission.block, from_new_view=False)
        self._vote_prepare(slot, out)
        self._check_prepared(slot, out)
        self._accept_waiting(seq + 1, out)

    def _accept_waiting(self, seq: int, out: list[Effect]) -> None:
        """A stashed pre-prepare at `seq` whose predecessor's time is now known."""
        successor = self._waiting_pps.pop(seq, None)
        if successor is not None:
            self._on_pre_prepare(successor, pre_prepare_of(successor), out)

    def _equivocation(self, first: SignedMessage, second: SignedMessage, out: list[Effect]) -> None:
        self.counters["equivocation"] += 1
        out.append(Evidence("equivocating-primary", second.sender, (first, second)))
        if pre_prepare_of(second).view == self._view and self._view_active:
            self._start_view_change(self._view + 1, out, timeout=False, cause="equivocation")

    def _vote_prepare(self, slot: Slot, out: list[Effect]) -> None:
        if slot.pre_prepare is None or slot.own_prepare is not None or not self._can_vote():
            return
        if self.is_primary:
            return
        prepare = self._sign(Prepare(self._view, slot.seq, pre_prepare_of(slot.pre_prepare).digest))
        slot.own_prepare = prepare
        slot.prepares[self._id] = prepare
        self._broadcast(out, prepare)

    def _on_prepare(self, sm: SignedMessage, p: Prepare, out: list[Effect]) -> None:
        verdict = prepare_verdict(
            p,
            sm.sender,
            view=self._view,
            view_active=self._view_active,
            primary=self.primary,
            floor=max(self._last_executed, self._stable.seq),
            high=self._high(),
            window=self._config.watermark_window,
        )
        if verdict is not None:
            self._refuse(sm, verdict)
            return
        slot = self._slot(p.seq)
        if sm.sender in slot.prepares:
            return
        slot.prepares[sm.sender] = sm
        self._check_prepared(slot, out)

    def _check_prepared(self, slot: Slot, out: list[Effect]) -> None:
        if slot.prepared or slot.pre_prepare is None or not self._can_vote():
            return
        cert = prepared_certificate(slot, self._view, self._config.quorum, self._member_index)
        if cert is None:
            return
        assert slot.block is not None
        slot.prepared = True
        self._prepared[slot.seq] = (cert, slot.block)
        self._put(state.prepared_record(cert, slot.block))
        commit = Commit(self._view, slot.seq, cert.digest)
        slot.own_commit = self._sign(commit)
        slot.commits[self._id] = slot.own_commit
        self._broadcast(out, slot.own_commit)
        self._check_committed(slot, commit, out)

    def _on_commit(self, sm: SignedMessage, c: Commit, out: list[Effect]) -> None:
        verdict = commit_verdict(
            c,
            last_executed=self._last_executed,
            stable_seq=self._stable.seq,
            in_log=c.seq in self._slots,
            high=self._high(),
            window=self._config.watermark_window,
        )
        if verdict is not None:
            self._refuse(sm, verdict)
            return
        slot = self._slot(c.seq)
        previous = slot.commits.get(sm.sender)
        if previous is not None and vote_of(previous).view >= c.view:
            return
        slot.commits[sm.sender] = sm
        self._check_committed(slot, c, out)

    def _check_committed(self, slot: Slot, c: Commit, out: list[Effect]) -> None:
        if slot.commit_cert is not None:
            return
        cert = commit_certificate(slot, c, self._config.quorum, self._member_index)
        if cert is None:
            return
        slot.commit_cert = cert
        body = self._bodies.get(c.digest)
        if body is not None and body.seq == slot.seq:
            slot.committed_block = body
        else:
            self.counters["committed-without-body"] += 1
            signers = tuple(rid for rid, _ in cert.signatures)
            self._fetcher.want(c.digest, slot.seq, signers, PURPOSE_COMMIT)
            self._request_bodies(out)
        self._try_execute(out)

    def _try_execute(self, out: list[Effect]) -> None:
        executed = False
        while True:
            slot = self._slots.get(self._last_executed + 1)
            if slot is None or slot.commit_cert is None:
                break
            block = slot.committed_block
            if block is None:
                body = self._bodies.get(slot.commit_cert.digest)
                if body is None or body.seq != slot.seq:
                    break
                block = slot.committed_block = body
            self._execute(block, slot.commit_cert, out)
            executed = True
        if executed:
            self._after_progress(out)

    def _execute(self, block: Block, cert: CommitCertificate, out: list[Effect]) -> None:
        if self._stable.seq < block.seq <= self._high():
            # Keep the proof until the next stable checkpoint so laggards can be served.
            slot = self._slot(block.seq)
            slot.commit_cert, slot.committed_block = cert, block
        timestamp = agreed_timestamp(self._last_ts, block)
        out.append(Execute(CommittedBlock(block, cert, self._last_digest, timestamp)))
        self._last_executed = block.seq
        self._last_digest = block.digest
        self._last_ts = timestamp
        if len(self._fetcher):
            self._fetcher.forget_through(block.seq)
        self._requests.executed(block.request_ids, self._config.executed_ids_max)
        if block.seq % self._config.checkpoint_interval == 0:
            self._awaiting_root[block.seq] = block.digest
        if not block.is_null and self._view_active:
            self._timers.backoff.reset()

    def _after_progress(self, out: list[Effect]) -> None:
        self._timers.request.restart_if(self._waiting_for_execution(), self._tick)
        self._timers.lag.restart_if(self._catch_up.lag_target > self._last_executed, self._tick)
        if self._catch_up.finished(self._last_executed):
            self.counters["caught-up"] += 1
            self._resume_voting(out)
            self._replay_future(out)
        self._accept_waiting(self._last_executed + 1, out)
        self._maybe_propose(out)

    def _resume_voting(self, out: list[Effect]) -> None:
        for seq in sorted(self._slots):
            if seq <= self._last_executed:
                continue
            slot = self._slots[seq]
            self._vote_prepare(slot, out)
            self._check_prepared(slot, out)

    # ------------------------------------------------------------------ checkpoints

    def _on_checkpoint(self, sm: SignedMessage, c: Checkpoint, out: list[Effect]) -> None:
        if c.seq == 0 or c.seq % self._config.checkpoint_interval:
            self._drop("checkpoint-seq")
            return
        if c.seq <= self._stable.seq:
            return
        self._add_checkpoint_vote(sm, out)

    def _add_checkpoint_vote(self, sm: SignedMessage, out: list[Effect]) -> None:
        c = sm.message
        assert isinstance(c, Checkpoint)
        cfg = self._config
        quota = cfg.watermark_window // cfg.checkpoint_interval + 2
        matching = self._checkpoint_votes.add(sm, quota)
        if matching is None:
            return
        progress = max(self._last_executed, self._catch_up.lag_target)
        outcome = tally(c, matching, cfg, self._member_index, progress)
        if outcome.behind is not None:
            # Behind: fetch only if normal progress does not close the gap in time (see tick).
            self._catch_up.lag_target, self._catch_up.lag_hint = c.seq, outcome.behind
            self._timers.lag.start_if_stopped(self._tick)
        if outcome.stable is not None:
            self._install_stable(outcome.stable, out)

    def _sign_checkpoint(self, c: Checkpoint) -> SignedMessage:
        """Sign our own CHECKPOINT and keep it for retransmission until a checkpoint at or above
        it is stable (section 4.3 needs 2f+1 of these; one lost copy must not stall the window)."""
        sm = self._sign(c)
        self._own_checkpoints[c.seq] = (sm, self._tick)
        return sm

    def _divergence(self, out: list[Effect]) -> None:
        self.counters["state-divergence"] += 1
        out.append(Evidence("state-root-divergence", self._id, tuple(stable_proof(self._stable))))

    def _install_stable(
        self, cert: CheckpointCertificate, out: list[Effect], quiet: bool = False
    ) -> None:
        if cert.seq <= self._stable.seq:
            return
        self._stable = cert
        low = cert.seq
        self._put(state.stable_record(cert))
        own = self._own_roots.get(low)
        if own is not None and own != cert.state_root:
            self._divergence(out)
        window = self._config.watermark_window
        gc = plan_collection(
            self._slots, self._prepared, self._bodies, low, self._last_executed, window
        )
        for seq in gc.slots:
            self._delete(state.pre_prepare_key(seq))
            self._delete(state.prepared_key(seq))
            del self._slots[seq]
        for seq in gc.prepared:
            del self._prepared[seq]
        for seq in gc.prepared_records:  # a kept slot keeps the record behind its COMMIT
            self._delete(state.prepared_key(seq))
        for digest in gc.bodies:
            del self._bodies[digest]
        self._checkpoint_votes.discard_through(low)
        _discard_through(self._own_roots, low - 1)
        _discard_through(self._own_checkpoints, low)
        _discard_through(self._awaiting_root, low - 1)  # h's root is still checked against C
        _discard_through(self._waiting_pps, low)
        self._fetcher.forget_through(low)
        self._body_server.forget_old(self._tick)
        if self._next_seq <= low:
            self._next_seq = low + 1
        if self._last_executed < low:
            self._try_execute(out)
        if self._last_executed < low:
            self._begin_catch_up(low, tuple(rid for rid, _ in cert.signatures), out)
        if not quiet:
            self._replay_future(out)
            self._maybe_propose(out)

    # ------------------------------------------------------------------ state transfer

    def _valid_commit_proof(self, block: Block, cert: CommitCertificate) -> bool:
        return check_commit_proof(self._members, self._config.quorum, block, cert, self._verify)

    def _begin_catch_up(self, target: int, hint: tuple[str, ...], out: list[Effect]) -> None:
        catch_up = self._catch_up
        if target <= catch_up.target or target <= self._last_executed:
            return
        first = catch_up.target == 0
        catch_up.begin(target, fetch_order(hint, self._id, self._config.members))
        self.counters["catch-up"] += 1
        if first or self._timers.fetch.due(self._tick):
            self._emit_fetch(out)

    def _emit_fetch(self, out: list[Effect]) -> None:
        fetch = self._catch_up.next_fetch(self._last_executed)
        if fetch is not None:
            self._timers.fetch.mark(self._tick)
            out.append(fetch)

    def _on_committed_proof(self, sm: SignedMessage, p: CommittedProof, out: list[Effect]) -> None:
        block, cert = p.block, p.certificate
        seq = block.seq
        if seq <= self._last_executed:
            return
        if not self._valid_commit_proof(block, cert):
            self._drop("invalid-commit-proof")
            return
        if seq == self._last_executed + 1 or self._stable.seq < seq <= self._high():
            slot = self._slot(seq)
            if slot.commit_cert is None or slot.committed_block is None:
                slot.commit_cert, slot.committed_block = cert, block
                self._store_body(block)
            self._try_execute(out)
        if seq > self._last_executed + 1:
            # A certified block above a gap: the gap is committed too, so fetch it.
            hint = (sm.sender, *(rid for rid, _ in cert.signatures))
            self._begin_catch_up(seq - 1 if seq <= self._high() else seq, hint, out)

    # ------------------------------------------------------------------ view change

    def _reset_view_state(self) -> None:
        for seq, slot in self._slots.items():
            if seq > self._last_executed:
                if slot.pre_prepare is not None:
                    self._delete(state.pre_prepare_key(seq))
                slot.reset_view()
        self._waiting_pps.clear()
        self._max_accepted_seq = self._last_executed
        self._requests.new_view()

    def _build_view_change(self) -> SignedMessage:
        prepared = [self._prepared[s][0] for s in sorted(self._prepared) if s > self._stable.seq]
        sm = self._sign(ViewChange(self._view, self._stable, tuple(prepared)))
        self._own_vc = sm
        self._view_changes[self._id] = sm
        self._timers.view_change_resend.mark(self._tick)
        return sm

    def _start_view_change(
        self, new_view: int, out: list[Effect], timeout: bool, cause: str
    ) -> None:
        if new_view < self._view or (new_view == self._view and not self._view_active):
            return
        if self._view_active:
            # Why the last active view was left; a stalled view change keeps the first cause.
            self._view_change_cause = cause
        if timeout:
            self._timers.backoff.grow()
        self.counters["view-change"] += 1
        self._view = new_view
        self._view_active = False
        self._new_view_msg = None
        self._nv_waiting = None
        self._fetcher.drop_purpose(PURPOSE_VIEW_CHANGE)
        self._reset_view_state()
        self._put(state.view_record(self._view, self._view_active))
        self._delete(state.KEY_NEW_VIEW)
        sm = self._build_view_change()
        self._timers.request.stop()
        self._timers.new_view.stop()
        self._broadcast(out, sm)
        self._check_view_change_quorum(out)

    def _on_view_change(self, sm: SignedMessage, vc: ViewChange, out: list[Effect]) -> None:
        verdict = view_change.view_change_verdict(
            sm,
            vc,
            view=self._view,
            view_active=self._view_active,
            known=self._view_changes,
            cfg=self._config,
            members=self._members,
            verify=self._verify,
        )
        if verdict == view_change.LAGGARD:
            self._help_laggard(sm.sender, out)
            return
        if verdict is not None:
            self._refuse(sm, verdict)
            return
        self._view_changes[sm.sender] = sm
        join = view_change.view_to_join(
            self._view_changes.values(), self._view, self._config.weak_quorum
        )
        if join is not None:
            self._start_view_change(join, out, timeout=False, cause="joined-peers")
        if not self._view_active:
            self._check_view_change_quorum(out)

    def _help_laggard(self, peer: str, out: list[Effect]) -> None:
        last = self._status_replied.get("nv:" + peer)
        if last is not None and self._tick - last < self._config.retransmit_ticks:
            return
        if self._view_active and self._new_view_msg is not None:
            self._status_replied["nv:" + peer] = self._tick
            self._send(out, peer, self._new_view_msg)

    def _check_view_change_quorum(self, out: list[Effect]) -> None:
        if self._view_active:
            return
        if (
            view_change.count_for_view(self._view_changes.values(), self._view)
            < self._config.quorum
        ):
            return
        self._timers.new_view.start_if_stopped(self._tick)
        if self.is_primary and self._nv_sent_for < self._view:
            self._send_new_view(out)

    def _send_new_view(self, out: list[Effect]) -> None:
        view = self._view
        floor = max(self._last_executed, self._stable.seq)
        plan = view_change.plan_new_view(
            self._view_changes, self._config, self._id, view, floor, self._bodies
        )
        if plan.missing:
            # Digests only in V: fetch the bodies from replicas that prepared them, then retry
            # (the body's arrival calls back here through _check_view_change_quorum).
            self.counters["new-view-missing-body"] += 1
            self._want_bodies(plan.missing, (), out)
            return
        entries = [(s, self._sign(PrePrepare(view, s, d)), b) for s, d, b in plan.order]
        nv = self._sign(NewView(view, tuple(plan.chosen), tuple(pp for _, pp, _ in entries)))
        self._nv_sent_for = view
        self._install_new_view(nv, entries, plan.checkpoint, out, announce=True)

    def _on_new_view(self, sm: SignedMessage, nv: NewView, out: list[Effect]) -> None:
        admission = view_change.admit_new_view(
            sm,
            nv,
            view=self._view,
            view_active=self._view_active,
            size_checked=self._nv_waiting is sm,
            cfg=self._config,
            members=self._members,
            known=self._view_changes,
            verify=self._verify,
            floor=max(self._last_executed, self._stable.seq),
            bodies=self._bodies,
        )
        if admission.reason:
            self._drop(admission.reason)
        elif admission.missing:
            # Valid but incomplete here: keep it and fetch the bodies, the new primary first.
            self.counters["new-view-awaiting-bodies"] += 1
            self._nv_waiting = sm
            self._want_bodies(admission.missing, (sm.sender,), out)
        else:
            self._nv_waiting = None
            self._install_new_view(sm, admission.entries, admission.checkpoint, out, False)

    def _install_new_view(
        self,
        sm: SignedMessage,
        entries: list[tuple[int, SignedMessage, Block]],
        checkpoint: CheckpointCertificate,
        out: list[Effect],
        announce: bool,
    ) -> None:
        view = view_change.new_view_of(sm).view
        self._view = view
        self._view_active = True
        self._new_view_msg = sm
        self._own_vc = None
        self._nv_waiting = None
        self._fetcher.drop_purpose(PURPOSE_VIEW_CHANGE)
        self._reset_view_state()
        self._put(state.view_record(self._view, self._view_active))
        self._put(state.new_view_record(sm))
        self._timers.request.stop()
        self._timers.new_view.stop()
        for sender in [
            s for s, m in self._view_changes.items() if view_change.view_change_of(m).view <= view
        ]:
            del self._view_changes[sender]
        if checkpoint.seq > self._stable.seq:
            self._install_stable(checkpoint, out, quiet=True)
        if announce:
            self._broadcast(out, sm)
        accepted: list[Slot] = []
        for seq, pp, block in entries:
            if seq <= self._last_executed or seq <= self._stable.seq:
                continue
            slot = self._slot(seq)
            self._accept(slot, pp, block, from_new_view=True)
            accepted.append(slot)
        if self.is_primary:
            top = entries[-1][0] if entries else checkpoint.seq
            self._next_seq = max(top, self._last_executed, self._stable.seq) + 1
        self.counters["new-view"] += 1
        out.append(ViewChanged(view, self.primary, self._view_change_cause))
        self._view_change_cause = "new-view-received"
        for slot in accepted:
            self._vote_prepare(slot, out)
            self._check_prepared(slot, out)
        if not self.is_primary and self._requests.has_proposable:
            self._forward_pending(out, min_age_ticks=0)
        self._replay_future(out)
        self._try_execute(out)
        self._maybe_propose(out)

    # ------------------------------------------------------------------ block bodies

    def _want_bodies(
        self, missing: list[MissingBody], first: tuple[str, ...], out: list[Effect]
    ) -> None:
        for seq, digest, sources in missing:
            self._fetcher.want(digest, seq, first + sources, PURPOSE_VIEW_CHANGE)
        self._request_bodies(out)

    def _request_bodies(self, out: list[Effect]) -> None:
        if not len(self._fetcher):
            return
        request = self._fetcher.next_request(self._tick)
        if request is not None:
            to, message = request
            self.counters["block-request"] += 1
            self._send(out, to, self._sign(message))

    def _on_block_request(self, sm: SignedMessage, m: BlockRequest, out: list[Effect]) -> None:
        replies = self._body_server.answer(sm.sender, m.digests, self._tick, self._bodies)
        for body in replies:
            self._send(out, sm.sender, self._sign(body))
        if len(m.digests) > self._config.bodies_per_request_max:
            self._drop("block-request-too-long")
        self.counters["block-bodies-sent"] += len(replies)

    def _on_block_body(self, sm: SignedMessage, m: BlockBody, out: list[Effect]) -> None:
        block = m.block
        if block is None or not self._fetcher.received(m.digest, block):
            self._drop("block-body-unwanted")
            return
        self.counters["block-bodies-received"] += 1
        self._store_body(block)
        if self._nv_waiting is not None:
            waiting = self._nv_waiting
            self._on_new_view(waiting, view_change.new_view_of(waiting), out)
        if not self._view_active:
            self._check_view_change_quorum(out)
        self._try_execute(out)
        self._request_bodies(out)

    # ------------------------------------------------------------------ retransmission

    def _on_status(self, sm: SignedMessage, st: Status, out: list[Effect]) -> None:
        peer = sm.sender
        last = self._status_replied.get(peer)
        if last is not None and self._tick - last < max(1, self._config.status_interval_ticks // 2):
            return
        self._status_replied[peer] = self._tick
        reply = plan_status_reply(
            st,
            cfg=self._config,
            tick=self._tick,
            view=self._view,
            view_active=self._view_active,
            last_executed=self._last_executed,
            stable=self._stable,
            own_checkpoints=self._own_checkpoints,
            slots=self._slots,
            new_view=self._new_view_msg,
            own_view_change=self._own_vc,
        )
        for item in reply:
            self._send(out, peer, self._sign(item) if isinstance(item, CommittedProof) else item)

    # ------------------------------------------------------------------ recovery

    def _on_first_tick(self, out: list[Effect]) -> None:
        for vote, _ in self._own_checkpoints.values():
            self._broadcast(out, vote)
        if not self._view_active:
            self._broadcast(out, self._build_view_change())
        if self.catching_up:
            self._emit_fetch(out)

    def _restore(self, persisted: PersistedState) -> None:
        restored = state.restore(
            persisted,
            last_executed=self._last_executed,
            own_id=self._id,
            cfg=self._config,
            sign=self._sign,
        )
        self._view, self._view_active = restored.view, restored.view_active
        self._stable, self._prepared = restored.stable, restored.prepared
        self._new_view_msg = restored.new_view
        top = max(self._last_executed, self._stable.seq)
        for slot in restored.slots:
            self._slots[slot.seq] = slot
            assert slot.block is not None
            self._store_body(slot.block)
            self._requests.in_flight(slot.block.request_ids, slot.seq)
            top = max(top, slot.seq)
        self._max_accepted_seq = top
        self._next_seq = top + 1
        for _cert, block in self._prepared.values():
            self._store_body(block)
        if self._last_executed < self._stable.seq:
            signers = tuple(rid for rid, _ in self._stable.signatures)
            self._catch_up.begin(
                self._stable.seq, fetch_order(signers, self._id, self._config.members)
            )
