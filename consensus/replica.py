"""The PBFT replica as a pure state machine: messages, ticks and requests in; effects out.

Theory of operation (Castro and Liskov, OSDI'99 section 4; TOCS 2002 sections 2-4 and 6)
----------------------------------------------------------------------------------------
Normal case (4.2). The primary of view v (members[v mod n]) cuts a block from its pending
requests when `batch_size_max` are waiting or the oldest has waited `batch_timeout_ticks`, and
sends PRE-PREPARE(v, n, d) with the block attached, for any n inside the watermark window
(h, h+L] (pipelining). A backup accepts it if it is in view v and active, n is in the window, the
body hashes to d, it has accepted no other digest for (v, n), and the timestamp is above the
agreed time of block n-1 and within `timestamp_skew_ms` of its own clock (a pre-prepare whose
predecessor is unknown waits in a bounded stash). Accepting means persisting it, then
broadcasting PREPARE. `is_prepared` holds with the pre-prepare plus quorum-1 matching PREPAREs
from distinct backups; the replica then persists the prepared certificate and broadcasts COMMIT.
A quorum of matching COMMITs (any view, one per sender) forms a commit certificate; with the body
in hand the block is committed, and blocks execute strictly in sequence order. Commit
certificates are proofs on their own, so a replica may execute a block from one it was sent
(retransmission, state transfer) without having prepared it.

Checkpoints (4.3). After the executor reports the state root of a multiple of
`checkpoint_interval`, the replica broadcasts CHECKPOINT(n, block digest, root). A quorum of
matching votes is a stable checkpoint: the low watermark h moves to n and the log at or below n is
discarded. A stable checkpoint above the last executed block means the replica is behind: it
emits `FetchBlocks`, accepts only blocks with valid commit certificates, and does not vote until
it has executed up to the checkpoint.

View changes (4.4, 4.5.2). A replica that is waiting for a request (one it holds or one inside an
accepted pre-prepare) and sees no execution for the current timeout sends VIEW-CHANGE(v+1) with
its stable checkpoint certificate and its prepared certificates above it, and stops taking part
in view v. Seeing f+1 VIEW-CHANGEs for higher views, it joins the smallest of them. After a quorum
of VIEW-CHANGEs for its view it starts a timer; if that expires before a valid NEW-VIEW it moves
on, and the timeout doubles (capped) with every view that fails to execute a request. The new
primary picks a quorum V, computes min-s (the highest stable checkpoint in V), max-s (the highest
prepared sequence number) and O: for each n in (min-s, max-s] the prepared digest of the highest
view, or a null block. Backups recompute O from V and reject a NEW-VIEW that differs.
Equivocation by a primary (two signed pre-prepares for one (v, n)) is evidence and starts a view
change at once.

Retransmission. Every replica broadcasts a small STATUS periodically. A peer answers only with
what the sender lacks: its stable checkpoint proof, its own CHECKPOINTs above the sender's stable
checkpoint, committed blocks with certificates, the NEW-VIEW of a later view, its own VIEW-CHANGE,
or the pre-prepare and its own votes for slots that have been stuck for `retransmit_ticks`.
CHECKPOINTs need this as much as the three phases do: once every replica has executed up to h+L,
only a stable checkpoint opens the window, and a view change cannot replace it (every new view
starts from the same min-s). Backups re-forward pending client requests to the primary (4.1's
client retransmission, done by the replica the client reached).

Recovery (TOCS 6). Everything a vote depends on is in a `Persist` emitted before the vote, so a
replica restarted from `PersistedState` re-signs only digests it signed before. A CHECKPOINT is
not persisted: a replica that restarts on a checkpoint block above its stable checkpoint signs it
again from the executor's tip (sequence number, block digest, state root), since its lost vote
may be one the quorum needs.

Requests. A request is opaque bytes identified by sha256. The replica deduplicates its own queue
and recently executed ids and never proposes a request that is in flight. Blocks still may repeat
a request after view changes (a block reproposed from an older view next to a newer one), so the
executor must skip ids it has already applied; that check must be made against replicated state
(the ledger's transaction index), as PBFT does with its last-reply table (4.1).

Input from peers is never trusted: every message is authenticated, validated, counted in
`counters` when dropped, and every buffer has a bound from `ReplicaConfig`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import assert_never

from .body_fetch import PURPOSE_COMMIT, PURPOSE_VIEW_CHANGE, BodyFetcher
from .certificates import (
    check_checkpoint_certificate,
    check_commit_certificate,
    check_prepared_certificate,
)
from .codec import (
    MessageError,
    decode_block,
    decode_checkpoint_certificate,
    decode_message,
    decode_prepared_certificate,
    encode_block,
    encode_checkpoint_certificate,
    encode_message,
    encode_prepared_certificate,
    pack,
    signing_bytes,
    unpack,
)
from .config import ConfigError, ReplicaConfig
from .crypto import Signer, Verifier
from .effects import (
    Broadcast,
    Effect,
    Evidence,
    Execute,
    FetchBlocks,
    Persist,
    RequestRejected,
    Send,
    ViewChanged,
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
    null_block,
    request_id,
)
from .state import (
    KEY_NEW_VIEW,
    KEY_STABLE,
    KEY_VIEW,
    PREFIX_PRE_PREPARE,
    PREFIX_PREPARED,
    PersistedState,
    PersistedStateError,
    seq_key,
)

RequestValidator = Callable[[bytes], bool]
_SIG_CACHE_MAX = 8192


def _pp(sm: SignedMessage) -> PrePrepare:
    m = sm.message
    assert isinstance(m, PrePrepare)
    return m


def _vote(sm: SignedMessage) -> Prepare | Commit:
    m = sm.message
    assert isinstance(m, Prepare | Commit)
    return m


def _vc(sm: SignedMessage) -> ViewChange:
    m = sm.message
    assert isinstance(m, ViewChange)
    return m


def _new_view(sm: SignedMessage) -> NewView:
    m = sm.message
    assert isinstance(m, NewView)
    return m


def _pps(entries: list[tuple[int, SignedMessage]]) -> list[tuple[int, PrePrepare]]:
    return [(seq, _pp(pp)) for seq, pp in entries]


@dataclass(slots=True)
class _Slot:
    """Log entry for one sequence number (the paper's message log, per n)."""

    seq: int
    pre_prepare: SignedMessage | None = None  # accepted in the current view, block attached
    block: Block | None = None
    from_new_view: bool = False
    eff_ts: int | None = None  # agreed-time chain value of the accepted block
    accepted_tick: int = 0
    prepares: dict[str, SignedMessage] = field(default_factory=dict)  # current view only
    own_prepare: SignedMessage | None = None
    prepared: bool = False
    own_commit: SignedMessage | None = None
    commits: dict[str, SignedMessage] = field(default_factory=dict)  # latest view per sender
    commit_cert: CommitCertificate | None = None
    committed_block: Block | None = None

    def reset_view(self) -> None:
        self.pre_prepare = None
        self.block = None
        self.from_new_view = False
        self.eff_ts = None
        self.prepares.clear()
        self.own_prepare = None
        self.prepared = False
        self.own_commit = None


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


def compute_new_view_order(
    view_changes: Sequence[ViewChange],
) -> tuple[CheckpointCertificate, list[tuple[int, bytes]]]:
    """min-s checkpoint and the O set's (seq, digest) list from a set V (section 4.4)."""
    checkpoint = GENESIS_CHECKPOINT
    for vc in view_changes:
        if vc.checkpoint.seq > checkpoint.seq:
            checkpoint = vc.checkpoint
    min_s = checkpoint.seq
    best: dict[int, PreparedCertificate] = {}
    for vc in view_changes:
        for p in vc.prepared:
            if p.seq <= min_s:
                continue
            current = best.get(p.seq)
            # Ties within one view cannot differ with at most f faults; order them anyway.
            if current is None or (p.view, p.digest) > (current.view, current.digest):
                best[p.seq] = p
    max_s = max(best, default=min_s)
    order = [
        (s, best[s].digest if s in best else null_block(s).digest)
        for s in range(min_s + 1, max_s + 1)
    ]
    return checkpoint, order


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
        self._verifier = verifier
        self._request_validator = request_validator
        self.counters: Counter[str] = Counter()

        tip = last_executed or GENESIS_TIP
        self._last_executed = tip.seq
        self._last_digest = tip.digest
        self._last_ts = tip.timestamp_ms

        self._view = 0
        self._view_active = True
        self._stable = GENESIS_CHECKPOINT
        self._slots: dict[int, _Slot] = {}
        self._prepared: dict[int, tuple[PreparedCertificate, Block]] = {}
        self._bodies: dict[bytes, Block] = {}
        self._new_view_msg: SignedMessage | None = None
        self._own_vc: SignedMessage | None = None
        self._view_changes: dict[str, SignedMessage] = {}
        self._nv_sent_for = -1
        self._timer_start: int | None = None
        self._vc_timer_start: int | None = None
        self._timeout_exponent = 0
        self._view_change_cause = "new-view-received"
        self._checkpoint_votes: dict[int, dict[str, SignedMessage]] = {}
        self._awaiting_root: dict[int, bytes] = {}
        self._own_roots: dict[int, bytes] = {}
        self._own_checkpoints: dict[int, tuple[SignedMessage, int]] = {}  # vote, tick signed
        self._catch_up_target = 0
        self._lag_target = 0
        self._lag_since: int | None = None
        self._lag_hint: tuple[str, ...] = ()
        self._fetch_hint: tuple[str, ...] = ()
        self._fetch_tick = 0
        self._fetch_attempt = 0
        self._pending: dict[bytes, tuple[bytes, int]] = {}
        self._proposable: dict[bytes, None] = {}
        self._in_flight: dict[bytes, int] = {}
        self._recent_executed: dict[bytes, None] = {}
        self._next_seq = tip.seq + 1
        self._max_accepted_seq = tip.seq
        self._waiting_pps: dict[int, SignedMessage] = {}
        self._future: list[SignedMessage] = []
        self._future_counts: Counter[str] = Counter()
        self._tick = 0
        self._now_ms = 0
        self._last_status_tick = -(10**9)
        self._last_vc_send_tick = 0
        self._last_forward_tick = 0
        self._status_replied: dict[str, int] = {}
        self._dirty: dict[bytes, bytes | None] = {}
        self._sig_cache: dict[tuple[str, bytes], bytes] = {}
        self._started = False
        self._fetcher = BodyFetcher(
            replica_id, config.bodies_per_request_max, config.retransmit_ticks
        )
        self._nv_waiting: SignedMessage | None = None  # a valid NEW-VIEW whose bodies are coming
        self._bodies_sent: dict[tuple[str, bytes], int] = {}  # (peer, digest) -> tick answered
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
            self._checkpoint_votes[tip.seq] = {self._id: vote}

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
        return self._catch_up_target > self._last_executed

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
            len(self._pending),
            self.catching_up,
        )

    # ------------------------------------------------------------------ entry points

    def tick(self, now_ms: int) -> list[Effect]:
        """Advance one logical tick; `now_ms` is the node's wall clock (for block timestamps)."""
        out: list[Effect] = []
        self._tick += 1
        self._now_ms = now_ms
        cfg = self._config
        if not self._started:
            self._started = True
            self._on_first_tick(out)
        if self.catching_up and self._tick - self._fetch_tick >= cfg.fetch_retry_ticks:
            self._emit_fetch(out)
        if (
            self._lag_since is not None
            and self._tick - self._lag_since >= cfg.fetch_retry_ticks
            and self._lag_target > self._last_executed
        ):
            self._lag_since = None
            self._begin_catch_up(self._lag_target, self._lag_hint, out)
        if self._view_active:
            self._maybe_propose(out)
            waiting = (bool(self._pending) or self._max_accepted_seq > self._last_executed) and (
                not self.catching_up
            )
            if not waiting:
                self._timer_start = None
            elif self._timer_start is None:
                self._timer_start = self._tick
            elif self._tick - self._timer_start >= self._timeout_ticks():
                self.counters["view-change-timeout"] += 1
                self._start_view_change(self._view + 1, out, timeout=True, cause="request-timeout")
            if (
                self._view_active
                and not self.is_primary
                and self._tick - self._last_forward_tick >= cfg.retransmit_ticks
            ):
                # A request the primary has not proposed in time goes to every replica, so
                # that all backups start their view-change timers (a silent primary, B9).
                self._forward_pending(out, min_age_ticks=cfg.retransmit_ticks, everyone=True)
        else:
            if (
                self._vc_timer_start is not None
                and self._tick - self._vc_timer_start >= self._timeout_ticks()
            ):
                self.counters["new-view-timeout"] += 1
                self._start_view_change(self._view + 1, out, timeout=True, cause="new-view-timeout")
            elif self._tick - self._last_vc_send_tick >= cfg.retransmit_ticks and self._own_vc:
                self._last_vc_send_tick = self._tick
                self._broadcast(out, self._own_vc)
            if not self._view_active:
                self._check_view_change_quorum(out)
        self._request_bodies(out)
        if self._tick - self._last_status_tick >= cfg.status_interval_ticks:
            self._last_status_tick = self._tick
            status = Status(self._view, self._view_active, self._last_executed, self._stable.seq)
            self._broadcast(out, self._sign(status))
        return self._finish(out)

    def step(self, message: SignedMessage) -> list[Effect]:
        """Handle one authenticated-or-not peer message (already decoded)."""
        out: list[Effect] = []
        if self._authentic(message):
            self._dispatch(message, out)
        return self._finish(out)

    def submit(self, request: bytes, now_ms: int, *, forward: bool = True) -> list[Effect]:
        """Queue an opaque client request (id = sha256(request)); backups forward it.

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
                entry = self._pending[rid]
                self._send(out, self.primary, self._sign(RequestForward((entry[0],))))
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
        applied = 0
        limit = 4 * self._config.watermark_window
        ordered = sorted(blocks, key=lambda b: b.block.seq)[:limit]
        for cb in ordered:
            block, cert = cb.block, cb.certificate
            if block.seq <= self._last_executed:
                continue
            if block.seq != self._last_executed + 1:
                self.counters["state-transfer-gap"] += 1
                break
            if not self._valid_commit_proof(block, cert):
                self.counters["state-transfer-invalid"] += 1
                break
            self._execute(block, cert, out)
            applied += 1
        if applied:
            self._try_execute(out)
            self._after_progress(out)
            if self.catching_up:
                self._emit_fetch(out)
        return self._finish(out)

    # ------------------------------------------------------------------ plumbing

    def _finish(self, out: list[Effect]) -> list[Effect]:
        if self._dirty:
            out.append(Persist(tuple(self._dirty.items())))
            self._dirty = {}
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

    def _verify(self, sender: str, data: bytes, signature: bytes) -> bool:
        key = (sender, signature)
        if self._sig_cache.get(key) == data:
            return True
        if not self._verifier.verify(sender, data, signature):
            return False
        if len(self._sig_cache) >= _SIG_CACHE_MAX:
            self._sig_cache.pop(next(iter(self._sig_cache)))
        self._sig_cache[key] = data
        return True

    def _drop(self, reason: str) -> None:
        self.counters["drop-" + reason] += 1

    def _timeout_ticks(self) -> int:
        cfg = self._config
        exponent = min(self._timeout_exponent, 30)
        return min(cfg.view_change_timeout_ticks << exponent, cfg.view_change_timeout_max_ticks)

    def _can_vote(self) -> bool:
        return self._view_active and not self.catching_up

    def _high(self) -> int:
        return self._stable.seq + self._config.watermark_window

    def _slot(self, seq: int) -> _Slot:
        slot = self._slots.get(seq)
        if slot is None:
            slot = self._slots[seq] = _Slot(seq)
        return slot

    def _sorted_sigs(self, sigs: Iterable[tuple[str, bytes]]) -> tuple[tuple[str, bytes], ...]:
        return tuple(sorted(sigs, key=lambda s: self._member_index[s[0]]))

    def _authentic(self, sm: SignedMessage) -> bool:
        if not isinstance(sm, SignedMessage):
            self._drop("not-a-message")
            return False
        if sm.sender == self._id:
            self._drop("own-message")
            return False
        if sm.sender not in self._members:
            self._drop("non-member")
            return False
        try:
            data = signing_bytes(sm.message, sm.sender)
        except (TypeError, ValueError, OverflowError, AttributeError):
            self._drop("malformed")
            return False
        if not isinstance(sm.signature, bytes) or not self._verify(sm.sender, data, sm.signature):
            self._drop("bad-signature")
            return False
        return True

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

    def _buffer(self, sm: SignedMessage) -> None:
        quota = max(1, self._config.future_messages_max // self._config.n)
        if self._future_counts[sm.sender] >= quota:
            self._drop("future-buffer-full")
            return
        self._future_counts[sm.sender] += 1
        self._future.append(sm)

    def _replay_future(self, out: list[Effect]) -> None:
        if not self._future:
            return
        pending, self._future = self._future, []
        self._future_counts.clear()
        for sm in pending:
            self._dispatch(sm, out)

    def _put(self, key: bytes, value: bytes) -> None:
        self._dirty[key] = value

    def _delete(self, key: bytes) -> None:
        self._dirty[key] = None

    def _persist_view(self) -> None:
        self._put(KEY_VIEW, pack([self._view, self._view_active]))

    def _store_body(self, block: Block) -> None:
        if block.digest not in self._bodies:
            # Bodies are only stored for blocks inside the window, which bounds this map.
            self._bodies[block.digest] = block

    # ------------------------------------------------------------------ requests

    def _add_request(self, request: bytes, out: list[Effect]) -> bytes | None:
        if not isinstance(request, bytes) or not 0 < len(request) <= self._config.request_bytes_max:
            self._drop("request-size")
            return None
        rid = request_id(request)
        if rid in self._pending or rid in self._recent_executed:
            self.counters["request-duplicate"] += 1
            return None
        if len(self._pending) >= self._config.pending_requests_max:
            self.counters["request-queue-full"] += 1
            out.append(RequestRejected(rid, "queue-full"))
            return None
        if self._request_validator is not None and not self._request_validator(request):
            self.counters["request-invalid"] += 1
            out.append(RequestRejected(rid, "invalid"))
            return None
        self._pending[rid] = (request, self._tick)
        if rid not in self._in_flight:
            self._proposable[rid] = None
        return rid

    def _on_request_forward(self, sm: SignedMessage, m: RequestForward, out: list[Effect]) -> None:
        # A forward holds at most one block's worth, as `_forward_pending` builds it.
        if len(m.requests) > self._config.batch_size_max or (
            sum(len(r) for r in m.requests) > self._config.batch_bytes_max
        ):
            self._drop("forward-too-large")
            return
        for request in m.requests:
            self._add_request(request, out)
        if self._view_active and self.is_primary:
            self._maybe_propose(out)

    def _forward_pending(
        self, out: list[Effect], min_age_ticks: int, everyone: bool = False
    ) -> None:
        self._last_forward_tick = self._tick
        batch: list[bytes] = []
        size = 0
        cfg = self._config
        # At most one block's worth: the primary cannot propose more at once, and a forward of
        # every pending request would grow with the backlog (large requests made it tens of MB).
        for rid in self._proposable:
            request, arrived = self._pending[rid]
            if self._tick - arrived < min_age_ticks:
                break
            if batch and size + len(request) > cfg.batch_bytes_max:
                break
            batch.append(request)
            size += len(request)
            if len(batch) >= cfg.batch_size_max:
                break
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
        while self._proposable:
            first = next(iter(self._proposable))
            age = self._tick - self._pending[first][1]
            if len(self._proposable) < cfg.batch_size_max and age < cfg.batch_timeout_ticks:
                return
            seq = self._next_seq
            if seq > self._high():
                return
            previous = self._chain_ts(seq - 1)
            if previous is None:
                self.counters["propose-no-predecessor"] += 1
                return
            timestamp = max(self._now_ms, previous + 1)
            if timestamp > self._now_ms + cfg.timestamp_skew_ms:
                return  # wait until the clock catches up with the parent's time
            requests: list[bytes] = []
            size = 0
            for rid in self._proposable:
                request = self._pending[rid][0]
                if requests and size + len(request) > cfg.batch_bytes_max:
                    break
                requests.append(request)
                size += len(request)
                if len(requests) >= cfg.batch_size_max:
                    break
            block = Block(seq, timestamp, tuple(requests))
            pp = self._sign(PrePrepare(self._view, seq, block.digest, block))
            slot = self._slot(seq)
            self._accept(slot, pp, block, from_new_view=False)
            self._next_seq = seq + 1
            self._broadcast(out, pp)
            self._check_prepared(slot, out)

    # ------------------------------------------------------------------ normal case

    def _chain_ts(self, seq: int) -> int | None:
        """Agreed time at seq along the executed chain and the accepted log, if known."""
        if seq == self._last_executed:
            return self._last_ts
        if seq < self._last_executed:
            return None
        slot = self._slots.get(seq)
        if slot is None or slot.block is None:
            return None
        if slot.eff_ts is None:
            previous = self._chain_ts(seq - 1)
            if previous is None:
                return None
            slot.eff_ts = agreed_timestamp(previous, slot.block)
        return slot.eff_ts

    def _check_proposal(self, pp: PrePrepare, block: Block) -> str | None:
        cfg = self._config
        if block.seq != pp.seq:
            return "block-seq-mismatch"
        if block.digest != pp.digest:
            return "digest-mismatch"
        if not block.requests:
            return "empty-block"
        if len(block.requests) > cfg.batch_size_max:
            return "batch-too-large"
        size = 0
        for request in block.requests:
            if not 0 < len(request) <= cfg.request_bytes_max:
                return "request-size"
            size += len(request)
        if size > cfg.batch_bytes_max:
            return "batch-too-large"
        if len(set(block.request_ids)) != len(block.request_ids):
            return "duplicate-request"
        validator = self._request_validator
        if validator is not None and not all(validator(r) for r in block.requests):
            return "invalid-request"
        return None

    def _accept(self, slot: _Slot, pp: SignedMessage, block: Block, from_new_view: bool) -> None:
        message = pp.message
        assert isinstance(message, PrePrepare)
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
        for rid in block.request_ids:
            self._in_flight[rid] = slot.seq
            self._proposable.pop(rid, None)
        self._put(seq_key(PREFIX_PRE_PREPARE, slot.seq), pack([from_new_view, encode_message(pp)]))

    def _on_pre_prepare(self, sm: SignedMessage, pp: PrePrepare, out: list[Effect]) -> None:
        if pp.view > self._view:
            self._buffer(sm)
            return
        if pp.view < self._view:
            self._drop("stale-view")
            return
        if not self._view_active:
            self._drop("inactive-view")
            return
        if sm.sender != self._config.primary(pp.view):
            self._drop("pre-prepare-not-primary")
            return
        seq = pp.seq
        if seq <= self._last_executed or seq <= self._stable.seq:
            self._drop("old-seq")
            return
        if seq > self._high():
            if seq <= self._high() + self._config.watermark_window:
                self._buffer(sm)
            else:
                self._drop("beyond-window")
            return
        slot = self._slots.get(seq)
        if slot is not None and slot.pre_prepare is not None:
            if _pp(slot.pre_prepare).digest != pp.digest:
                self._equivocation(slot.pre_prepare, sm, out)
            return
        waiting = self._waiting_pps.get(seq)
        if waiting is not None and _pp(waiting).digest != pp.digest:
            self._equivocation(waiting, sm, out)
            return
        if self.catching_up:
            self._drop("catching-up")
            return
        block = pp.block
        if block is None:
            block = self._bodies.get(pp.digest)
            if block is None:
                self._drop("pre-prepare-without-body")
                return
        reason = self._check_proposal(pp, block)
        if reason is not None:
            self._drop(reason)
            return
        previous = self._chain_ts(seq - 1)
        if previous is None:
            if seq not in self._waiting_pps and len(self._waiting_pps) < (
                self._config.watermark_window
            ):
                self._waiting_pps[seq] = sm
            return
        self._waiting_pps.pop(seq, None)
        skew = self._config.timestamp_skew_ms
        if block.timestamp_ms <= previous or abs(block.timestamp_ms - self._now_ms) > skew:
            self._drop("pre-prepare-timestamp")
            return
        slot = self._slot(seq)
        self._accept(slot, sm, block, from_new_view=False)
        self._vote_prepare(slot, out)
        self._check_prepared(slot, out)
        successor = self._waiting_pps.pop(seq + 1, None)
        if successor is not None:
            self._on_pre_prepare(successor, _pp(successor), out)

    def _equivocation(self, first: SignedMessage, second: SignedMessage, out: list[Effect]) -> None:
        self.counters["equivocation"] += 1
        out.append(Evidence("equivocating-primary", second.sender, (first, second)))
        view = _pp(second).view
        if view == self._view and self._view_active:
            self._start_view_change(self._view + 1, out, timeout=False, cause="equivocation")

    def _vote_prepare(self, slot: _Slot, out: list[Effect]) -> None:
        if slot.pre_prepare is None or slot.own_prepare is not None or not self._can_vote():
            return
        if self.is_primary:
            return
        pp = slot.pre_prepare.message
        assert isinstance(pp, PrePrepare)
        prepare = self._sign(Prepare(self._view, slot.seq, pp.digest))
        slot.own_prepare = prepare
        slot.prepares[self._id] = prepare
        self._broadcast(out, prepare)

    def _on_prepare(self, sm: SignedMessage, p: Prepare, out: list[Effect]) -> None:
        if p.view > self._view:
            self._buffer(sm)
            return
        if p.view < self._view or not self._view_active:
            self._drop("stale-view")
            return
        if sm.sender == self._config.primary(p.view):
            self._drop("prepare-from-primary")
            return
        if p.seq <= self._last_executed or p.seq <= self._stable.seq:
            return
        if p.seq > self._high():
            if p.seq <= self._high() + self._config.watermark_window:
                self._buffer(sm)
            else:
                self._drop("beyond-window")
            return
        slot = self._slot(p.seq)
        if sm.sender in slot.prepares:
            return
        slot.prepares[sm.sender] = sm
        self._check_prepared(slot, out)

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

    def _check_prepared(self, slot: _Slot, out: list[Effect]) -> None:
        if slot.prepared or slot.pre_prepare is None or not self._can_vote():
            return
        pp = slot.pre_prepare.message
        assert isinstance(pp, PrePrepare)
        matching = [
            (s, m.signature) for s, m in slot.prepares.items() if _vote(m).digest == pp.digest
        ]
        if len(matching) < self._config.quorum - 1:
            return
        assert slot.block is not None
        slot.prepared = True
        cert = PreparedCertificate(
            self._view, slot.seq, pp.digest, slot.pre_prepare.signature, self._sorted_sigs(matching)
        )
        self._prepared[slot.seq] = (cert, slot.block)
        self._put(
            seq_key(PREFIX_PREPARED, slot.seq),
            pack([encode_prepared_certificate(cert), encode_block(slot.block)]),
        )
        commit = self._sign(Commit(self._view, slot.seq, pp.digest))
        slot.own_commit = commit
        slot.commits[self._id] = commit
        self._broadcast(out, commit)
        self._check_committed(slot, Commit(self._view, slot.seq, pp.digest), out)

    def _on_commit(self, sm: SignedMessage, c: Commit, out: list[Effect]) -> None:
        if c.seq <= self._last_executed:
            return
        if c.seq <= self._stable.seq and c.seq not in self._slots:
            return
        if c.seq > self._high():
            if c.seq <= self._high() + self._config.watermark_window:
                self._buffer(sm)
            else:
                self._drop("beyond-window")
            return
        slot = self._slot(c.seq)
        previous = slot.commits.get(sm.sender)
        if previous is not None and _vote(previous).view >= c.view:
            return
        slot.commits[sm.sender] = sm
        self._check_committed(slot, c, out)

    def _check_committed(self, slot: _Slot, c: Commit, out: list[Effect]) -> None:
        if slot.commit_cert is not None:
            return
        sigs = [
            (s, m.signature)
            for s, m in slot.commits.items()
            if _vote(m).view == c.view and _vote(m).digest == c.digest
        ]
        if len(sigs) < self._config.quorum:
            return
        slot.commit_cert = CommitCertificate(c.view, slot.seq, c.digest, self._sorted_sigs(sigs))
        body = self._bodies.get(c.digest)
        if body is not None and body.seq == slot.seq:
            slot.committed_block = body
        else:
            self.counters["committed-without-body"] += 1
            signers = tuple(rid for rid, _ in slot.commit_cert.signatures)
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
        recent = self._recent_executed
        for rid in block.request_ids:
            self._pending.pop(rid, None)
            self._proposable.pop(rid, None)
            self._in_flight.pop(rid, None)
            recent[rid] = None
        while len(recent) > self._config.executed_ids_max:
            recent.pop(next(iter(recent)))
        if block.seq % self._config.checkpoint_interval == 0:
            self._awaiting_root[block.seq] = block.digest
        if not block.is_null and self._view_active:
            self._timeout_exponent = 0

    def _after_progress(self, out: list[Effect]) -> None:
        waiting = bool(self._pending) or self._max_accepted_seq > self._last_executed
        self._timer_start = self._tick if waiting else None
        self._lag_since = self._tick if self._lag_target > self._last_executed else None
        if self._catch_up_target and self._last_executed >= self._catch_up_target:
            self._catch_up_target = 0
            self._fetch_attempt = 0
            self.counters["caught-up"] += 1
            self._resume_voting(out)
            self._replay_future(out)
        successor = self._waiting_pps.pop(self._last_executed + 1, None)
        if successor is not None:
            self._on_pre_prepare(successor, _pp(successor), out)
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
        votes = self._checkpoint_votes.setdefault(c.seq, {})
        if sm.sender in votes:
            return
        # Bound per sender; evicting the sender's oldest vote keeps the useful recent ones.
        mine = [s for s, v in self._checkpoint_votes.items() if sm.sender in v]
        quota = self._config.watermark_window // self._config.checkpoint_interval + 2
        if len(mine) >= quota:
            oldest = min(mine)
            del self._checkpoint_votes[oldest][sm.sender]
            if not self._checkpoint_votes[oldest]:
                del self._checkpoint_votes[oldest]
            votes = self._checkpoint_votes.setdefault(c.seq, {})
        votes[sm.sender] = sm
        matching = [(s, m.signature) for s, m in votes.items() if m.message == c]
        if len(matching) >= self._config.weak_quorum and c.seq > max(
            self._last_executed, self._lag_target
        ):
            # f+1 matching votes include a correct replica that executed c.seq: we are behind.
            # Fetch only if normal progress does not close the gap in time (see tick).
            self._lag_target = c.seq
            self._lag_hint = tuple(s for s, _ in matching)
            if self._lag_since is None:
                self._lag_since = self._tick
        if len(matching) >= self._config.quorum:
            cert = CheckpointCertificate(
                c.seq, c.block_digest, c.state_root, self._sorted_sigs(matching)
            )
            self._install_stable(cert, out)

    def _sign_checkpoint(self, c: Checkpoint) -> SignedMessage:
        """Sign our own CHECKPOINT and keep it for retransmission until a checkpoint at or above
        it is stable (section 4.3 needs 2f+1 of these; one lost copy must not stall the window)."""
        sm = self._sign(c)
        self._own_checkpoints[c.seq] = (sm, self._tick)
        return sm

    def _stable_proof(self) -> list[SignedMessage]:
        c = self._stable
        return [
            SignedMessage(Checkpoint(c.seq, c.block_digest, c.state_root), rid, sig)
            for rid, sig in c.signatures
        ]

    def _divergence(self, out: list[Effect]) -> None:
        self.counters["state-divergence"] += 1
        out.append(Evidence("state-root-divergence", self._id, tuple(self._stable_proof())))

    def _install_stable(
        self, cert: CheckpointCertificate, out: list[Effect], quiet: bool = False
    ) -> None:
        if cert.seq <= self._stable.seq:
            return
        self._stable = cert
        low = cert.seq
        self._put(KEY_STABLE, encode_checkpoint_certificate(cert))
        own = self._own_roots.get(low)
        if own is not None and own != cert.state_root:
            self._divergence(out)
        keep_bodies: set[bytes] = set()
        floor = low - self._config.watermark_window
        for seq in sorted(self._slots):
            if seq > low:
                break
            slot = self._slots[seq]
            body = slot.committed_block or slot.block
            if floor < seq and seq > self._last_executed and body is not None:
                # Not executed here yet: keep it so late COMMITs can still finish it.
                keep_bodies.add(body.digest)
                continue
            self._delete(seq_key(PREFIX_PRE_PREPARE, seq))
            self._delete(seq_key(PREFIX_PREPARED, seq))
            del self._slots[seq]
        for seq in [s for s in self._prepared if s <= low]:
            del self._prepared[seq]
            if seq not in self._slots:  # a kept slot keeps the record behind its COMMIT
                self._delete(seq_key(PREFIX_PREPARED, seq))
        for digest in [d for d, b in self._bodies.items() if b.seq <= low]:
            if digest not in keep_bodies:
                del self._bodies[digest]
        for seq in [s for s in self._checkpoint_votes if s <= low]:
            del self._checkpoint_votes[seq]
        for seq in [s for s in self._own_roots if s < low]:
            del self._own_roots[seq]
        for seq in [s for s in self._own_checkpoints if s <= low]:
            del self._own_checkpoints[seq]
        for seq in [s for s in self._awaiting_root if s < low]:
            del self._awaiting_root[seq]
        for seq in [s for s in self._waiting_pps if s <= low]:
            del self._waiting_pps[seq]
        self._fetcher.forget_through(low)
        window = self._config.retransmit_ticks
        self._bodies_sent = {k: t for k, t in self._bodies_sent.items() if self._tick - t < window}
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
        if cert.seq != block.seq or cert.digest != block.digest:
            return False
        return check_commit_certificate(self._members, self._config.quorum, cert, self._verify)

    def _begin_catch_up(self, target: int, hint: tuple[str, ...], out: list[Effect]) -> None:
        if target <= self._catch_up_target or target <= self._last_executed:
            return
        first = self._catch_up_target == 0
        self._catch_up_target = target
        peers = tuple(p for p in hint if p != self._id and p in self._members)
        others = tuple(m for m in self._config.members if m != self._id and m not in peers)
        self._fetch_hint = peers + others
        self.counters["catch-up"] += 1
        if first or self._tick - self._fetch_tick >= self._config.fetch_retry_ticks:
            self._emit_fetch(out)

    def _emit_fetch(self, out: list[Effect]) -> None:
        if not self.catching_up or not self._fetch_hint:
            return
        self._fetch_tick = self._tick
        k = self._fetch_attempt % len(self._fetch_hint)
        self._fetch_attempt += 1
        hint = self._fetch_hint[k:] + self._fetch_hint[:k]
        out.append(FetchBlocks(self._last_executed + 1, self._catch_up_target, hint))

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
                    self._delete(seq_key(PREFIX_PRE_PREPARE, seq))
                slot.reset_view()
        self._waiting_pps.clear()
        self._in_flight.clear()
        self._max_accepted_seq = self._last_executed
        self._proposable = dict.fromkeys(self._pending)

    def _build_view_change(self) -> SignedMessage:
        prepared = [self._prepared[s][0] for s in sorted(self._prepared) if s > self._stable.seq]
        return self._sign(ViewChange(self._view, self._stable, tuple(prepared)))

    def _oversized(self, sm: SignedMessage) -> bool:
        # Digests only: an honest VIEW-CHANGE or NEW-VIEW is bounded by the window and n.
        return len(encode_message(sm)) > self._config.view_change_bytes_max

    def _start_view_change(
        self, new_view: int, out: list[Effect], timeout: bool, cause: str
    ) -> None:
        if new_view < self._view or (new_view == self._view and not self._view_active):
            return
        if self._view_active:
            # Why the last active view was left; a stalled view change keeps the first cause.
            self._view_change_cause = cause
        if timeout:
            self._timeout_exponent += 1
        self.counters["view-change"] += 1
        self._view = new_view
        self._view_active = False
        self._new_view_msg = None
        self._nv_waiting = None
        self._fetcher.drop_purpose(PURPOSE_VIEW_CHANGE)
        self._reset_view_state()
        self._persist_view()
        self._delete(KEY_NEW_VIEW)
        sm = self._build_view_change()
        self._own_vc = sm
        self._view_changes[self._id] = sm
        self._timer_start = None
        self._vc_timer_start = None
        self._last_vc_send_tick = self._tick
        self._broadcast(out, sm)
        self._check_view_change_quorum(out)

    def _valid_view_change(self, vc: ViewChange) -> bool:
        cfg = self._config
        if vc.view < 1 or len(vc.prepared) > cfg.watermark_window:
            return False
        if not check_checkpoint_certificate(cfg, self._members, vc.checkpoint, self._verify):
            return False
        base = vc.checkpoint.seq
        last = base
        for p in vc.prepared:
            if p.seq <= last or p.seq > base + cfg.watermark_window or p.view >= vc.view:
                return False
            last = p.seq
            if not check_prepared_certificate(cfg, self._members, p, self._verify):
                return False
        return True

    def _on_view_change(self, sm: SignedMessage, vc: ViewChange, out: list[Effect]) -> None:
        if vc.view < self._view or (vc.view == self._view and self._view_active):
            # A replica behind us: the NEW-VIEW that ended its view change helps it.
            self._help_laggard(sm.sender, out)
            return
        previous = self._view_changes.get(sm.sender)
        if previous is not None and _vc(previous).view >= vc.view:
            return
        if self._oversized(sm):
            self._drop("view-change-too-large")
            return
        if not self._valid_view_change(vc):
            self._drop("view-change-invalid")
            return
        self._view_changes[sm.sender] = sm
        higher = sorted(
            _vc(m).view for m in self._view_changes.values() if _vc(m).view > self._view
        )
        if len(higher) >= self._config.weak_quorum:
            self._start_view_change(higher[0], out, timeout=False, cause="joined-peers")
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
        count = sum(1 for m in self._view_changes.values() if _vc(m).view == self._view)
        if count < self._config.quorum:
            return
        if self._vc_timer_start is None:
            self._vc_timer_start = self._tick
        if self.is_primary and self._nv_sent_for < self._view:
            self._send_new_view(out)

    def _send_new_view(self, out: list[Effect]) -> None:
        view = self._view
        candidates = [
            self._view_changes[m]
            for m in self._config.members
            if m in self._view_changes and _vc(self._view_changes[m]).view == view
        ]
        candidates.sort(key=lambda m: m.sender != self._id)  # own first; stable otherwise
        chosen = candidates[: self._config.quorum]
        vcs = [_vc(m) for m in chosen]
        checkpoint, order = compute_new_view_order(vcs)
        floor = max(self._last_executed, self._stable.seq, checkpoint.seq)
        missing = self._missing_bodies(order, vcs, floor)
        if missing:
            # Digests only in V: fetch the bodies from replicas that prepared them, then retry
            # (the body's arrival calls back here through _check_view_change_quorum).
            self.counters["new-view-missing-body"] += 1
            self._want_bodies(missing, (), out)
            return
        entries: list[tuple[int, SignedMessage, Block]] = []
        pps: list[SignedMessage] = []
        for seq, digest in order:
            body = self._body_for(seq, digest, floor)
            pp = self._sign(PrePrepare(view, seq, digest))
            pps.append(pp)
            entries.append((seq, pp, body))
        nv = self._sign(NewView(view, tuple(chosen), tuple(pps)))
        self._nv_sent_for = view
        self._install_new_view(nv, entries, checkpoint, out, announce=True)

    def _on_new_view(self, sm: SignedMessage, nv: NewView, out: list[Effect]) -> None:
        if nv.view < self._view or (nv.view == self._view and self._view_active):
            self._drop("stale-new-view")
            return
        if nv.view == 0 or sm.sender != self._config.primary(nv.view):
            self._drop("new-view-not-primary")
            return
        if self._nv_waiting is not sm and self._oversized(sm):
            self._drop("new-view-too-large")
            return
        validated = self._validate_new_view(nv)
        if validated is None:
            self._drop("new-view-invalid")
            return
        entries, checkpoint, vcs = validated
        floor = max(self._last_executed, self._stable.seq, checkpoint.seq)
        order = [(seq, pp.digest) for seq, pp in _pps(entries)]
        missing = self._missing_bodies(order, vcs, floor)
        if missing:
            # Valid but incomplete here: keep it and fetch the bodies, the new primary first.
            self.counters["new-view-awaiting-bodies"] += 1
            self._nv_waiting = sm
            self._want_bodies(missing, (sm.sender,), out)
            return
        self._nv_waiting = None
        complete = [(seq, pp, self._body_for(seq, _pp(pp).digest, floor)) for seq, pp in entries]
        self._install_new_view(sm, complete, checkpoint, out, announce=False)

    def _body_for(self, seq: int, digest: bytes, floor: int) -> Block:
        nb = null_block(seq)
        if digest == nb.digest or seq <= floor:
            # At or below the floor the entry is executed or covered by a stable checkpoint:
            # installing the view skips it, so no body is needed (and none may be kept).
            return nb
        return self._bodies[digest]

    def _missing_bodies(
        self, order: Sequence[tuple[int, bytes]], vcs: Sequence[ViewChange], floor: int
    ) -> list[tuple[int, bytes, tuple[str, ...]]]:
        """(seq, digest, sources) of the O entries above `floor` whose bodies this replica
        lacks; sources are the replicas that signed the digest into a prepared certificate."""
        missing: list[tuple[int, bytes, tuple[str, ...]]] = []
        for seq, digest in order:
            if seq <= floor or digest == null_block(seq).digest:
                continue
            body = self._bodies.get(digest)
            if body is not None and body.seq == seq:
                continue
            sources: list[str] = []
            for vc in vcs:
                for p in vc.prepared:
                    if p.seq == seq and p.digest == digest:
                        sources.append(self._config.primary(p.view))
                        sources.extend(rid for rid, _ in p.prepares)
            missing.append((seq, digest, tuple(dict.fromkeys(sources))))
        return missing

    def _want_bodies(
        self,
        missing: list[tuple[int, bytes, tuple[str, ...]]],
        first: tuple[str, ...],
        out: list[Effect],
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
        cfg = self._config
        answered = 0
        for digest in m.digests[: cfg.bodies_per_request_max]:
            key = (sm.sender, digest)
            last = self._bodies_sent.get(key)
            if last is not None and self._tick - last < cfg.retransmit_ticks:
                continue  # answered recently: a repeat costs the asker's retry, not our bandwidth
            block = self._bodies.get(digest)
            if block is None:
                continue
            if len(self._bodies_sent) >= cfg.n * cfg.watermark_window:
                self._bodies_sent.pop(next(iter(self._bodies_sent)))
            self._bodies_sent[key] = self._tick
            self._send(out, sm.sender, self._sign(BlockBody(digest, block)))
            answered += 1
        if len(m.digests) > cfg.bodies_per_request_max:
            self._drop("block-request-too-long")
        self.counters["block-bodies-sent"] += answered

    def _on_block_body(self, sm: SignedMessage, m: BlockBody, out: list[Effect]) -> None:
        block = m.block
        if block is None or not self._fetcher.received(m.digest, block):
            self._drop("block-body-unwanted")
            return
        self.counters["block-bodies-received"] += 1
        self._store_body(block)
        if self._nv_waiting is not None:
            waiting = self._nv_waiting
            self._on_new_view(waiting, _new_view(waiting), out)
        if not self._view_active:
            self._check_view_change_quorum(out)
        self._try_execute(out)
        self._request_bodies(out)

    def _validate_new_view(
        self, nv: NewView
    ) -> tuple[list[tuple[int, SignedMessage]], CheckpointCertificate, list[ViewChange]] | None:
        cfg = self._config
        if not cfg.quorum <= len(nv.view_changes) <= cfg.n:
            return None
        seen: set[str] = set()
        vcs: list[ViewChange] = []
        for m in nv.view_changes:
            vc = m.message
            if not isinstance(vc, ViewChange) or vc.view != nv.view:
                return None
            if m.sender in seen or m.sender not in self._members:
                return None
            seen.add(m.sender)
            known = self._view_changes.get(m.sender)
            if not (known is not None and known.message == vc and known.signature == m.signature):
                try:
                    data = signing_bytes(vc, m.sender)
                except (TypeError, ValueError, OverflowError, AttributeError):
                    return None
                if not self._verify(m.sender, data, m.signature):
                    return None
                if not self._valid_view_change(vc):
                    return None
            vcs.append(vc)
        checkpoint, order = compute_new_view_order(vcs)
        if len(nv.pre_prepares) != len(order):
            return None
        primary = cfg.primary(nv.view)
        entries: list[tuple[int, SignedMessage]] = []
        for (seq, digest), pp_sm in zip(order, nv.pre_prepares, strict=True):
            pp = pp_sm.message
            if not isinstance(pp, PrePrepare) or pp_sm.sender != primary:
                return None
            if pp.view != nv.view or pp.seq != seq or pp.digest != digest:
                return None
            if not self._verify(primary, signing_bytes(pp, primary), pp_sm.signature):
                return None
            entries.append((seq, pp_sm))
        return entries, checkpoint, vcs

    def _install_new_view(
        self,
        sm: SignedMessage,
        entries: list[tuple[int, SignedMessage, Block]],
        checkpoint: CheckpointCertificate,
        out: list[Effect],
        announce: bool,
    ) -> None:
        nv = sm.message
        assert isinstance(nv, NewView)
        view = nv.view
        self._view = view
        self._view_active = True
        self._new_view_msg = sm
        self._own_vc = None
        self._nv_waiting = None
        self._fetcher.drop_purpose(PURPOSE_VIEW_CHANGE)
        self._reset_view_state()
        self._persist_view()
        self._put(KEY_NEW_VIEW, encode_message(sm))
        self._timer_start = None
        self._vc_timer_start = None
        for sender in [s for s, m in self._view_changes.items() if _vc(m).view <= view]:
            del self._view_changes[sender]
        if checkpoint.seq > self._stable.seq:
            self._install_stable(checkpoint, out, quiet=True)
        if announce:
            self._broadcast(out, sm)
        accepted: list[_Slot] = []
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
        if not self.is_primary and self._proposable:
            self._forward_pending(out, min_age_ticks=0)
        self._replay_future(out)
        self._try_execute(out)
        self._maybe_propose(out)

    # ------------------------------------------------------------------ retransmission

    def _on_status(self, sm: SignedMessage, st: Status, out: list[Effect]) -> None:
        peer = sm.sender
        cfg = self._config
        last = self._status_replied.get(peer)
        if last is not None and self._tick - last < max(1, cfg.status_interval_ticks // 2):
            return
        self._status_replied[peer] = self._tick
        if st.stable_seq < self._stable.seq:
            for m in self._stable_proof():
                self._send(out, peer, m)
        for seq, (vote, signed_tick) in sorted(self._own_checkpoints.items()):
            # Votes for checkpoints that are not yet stable: sent once at execution, they may have
            # been lost, and nothing else would ever resend them (the window stays full).
            if seq > st.stable_seq and self._tick - signed_tick >= cfg.retransmit_ticks:
                self._send(out, peer, vote)
        if st.last_executed < self._last_executed:
            top = min(self._last_executed, st.last_executed + cfg.proofs_per_status_max)
            for seq in range(st.last_executed + 1, top + 1):
                slot = self._slots.get(seq)
                if slot is None or slot.commit_cert is None or slot.committed_block is None:
                    continue  # the receiver fetches what a gap hides
                proof = CommittedProof(slot.committed_block, slot.commit_cert)
                self._send(out, peer, self._sign(proof))
        if st.view < self._view or (st.view == self._view and not st.view_active):
            if self._view_active and self._new_view_msg is not None:
                self._send(out, peer, self._new_view_msg)
            elif not self._view_active and self._own_vc is not None:
                self._send(out, peer, self._own_vc)
        elif st.view == self._view and st.view_active and self._view_active:
            floor = max(st.last_executed, self._last_executed)
            for seq in sorted(self._slots):
                if seq <= floor:
                    continue
                slot = self._slots[seq]
                if slot.pre_prepare is None or slot.commit_cert is not None:
                    continue
                if self._tick - slot.accepted_tick < cfg.retransmit_ticks:
                    continue
                if not slot.from_new_view:
                    self._send(out, peer, slot.pre_prepare)
                if slot.own_prepare is not None:
                    self._send(out, peer, slot.own_prepare)
                if slot.own_commit is not None:
                    self._send(out, peer, slot.own_commit)

    # ------------------------------------------------------------------ recovery

    def _on_first_tick(self, out: list[Effect]) -> None:
        for vote, _ in self._own_checkpoints.values():
            self._broadcast(out, vote)
        if not self._view_active:
            sm = self._build_view_change()
            self._own_vc = sm
            self._view_changes[self._id] = sm
            self._last_vc_send_tick = self._tick
            self._broadcast(out, sm)
        if self.catching_up:
            self._emit_fetch(out)

    def _restore(self, persisted: PersistedState) -> None:
        records = persisted.records
        try:
            if KEY_VIEW in records:
                fields = unpack(records[KEY_VIEW])
                if (
                    type(fields) is not tuple
                    or len(fields) != 2
                    or type(fields[0]) is not int
                    or type(fields[1]) is not bool
                ):
                    raise PersistedStateError("view record")
                self._view, self._view_active = fields[0], fields[1]
            if KEY_STABLE in records:
                self._stable = decode_checkpoint_certificate(records[KEY_STABLE])
            restored: list[tuple[int, bool, SignedMessage]] = []
            for key, value in sorted(records.items()):
                if key.startswith(PREFIX_PRE_PREPARE) and len(key) == 10:
                    seq = int.from_bytes(key[2:], "big")
                    fields = unpack(value)
                    if type(fields) is not tuple or len(fields) != 2:
                        raise PersistedStateError("pre-prepare record")
                    sm = decode_message(fields[1])
                    if not isinstance(sm.message, PrePrepare) or sm.message.seq != seq:
                        raise PersistedStateError("pre-prepare record")
                    restored.append((seq, bool(fields[0]), sm))
                elif key.startswith(PREFIX_PREPARED) and len(key) == 10:
                    seq = int.from_bytes(key[2:], "big")
                    fields = unpack(value)
                    if type(fields) is not tuple or len(fields) != 2:
                        raise PersistedStateError("prepared record")
                    cert = decode_prepared_certificate(fields[0])
                    block = decode_block(fields[1])
                    if cert.seq != seq or block.digest != cert.digest:
                        raise PersistedStateError("prepared record")
                    if seq > self._stable.seq:
                        self._prepared[seq] = (cert, block)
            if KEY_NEW_VIEW in records:
                nv = decode_message(records[KEY_NEW_VIEW])
                if isinstance(nv.message, NewView) and nv.message.view == self._view:
                    self._new_view_msg = nv
        except MessageError as exc:
            raise PersistedStateError(f"corrupt consensus state: {exc}") from exc
        floor = max(self._last_executed, self._stable.seq)
        top = floor
        for seq, from_new_view, sm in restored:
            pp = sm.message
            assert isinstance(pp, PrePrepare)
            if pp.view != self._view or seq <= floor or pp.block is None:
                continue
            if pp.block.digest != pp.digest:
                raise PersistedStateError("pre-prepare record body")
            slot = self._slot(seq)
            slot.pre_prepare, slot.block, slot.from_new_view = sm, pp.block, from_new_view
            self._store_body(pp.block)
            for rid in pp.block.request_ids:
                self._in_flight[rid] = seq
            top = max(top, seq)
            if self._view_active and not self.is_primary:
                # Re-signing the same digest is harmless; a different one is what is forbidden.
                slot.own_prepare = self._sign(Prepare(self._view, seq, pp.digest))
                slot.prepares[self._id] = slot.own_prepare
            prepared = self._prepared.get(seq)
            if (
                self._view_active
                and prepared
                and prepared[0].view == self._view
                and prepared[0].digest == pp.digest
            ):
                slot.prepared = True
                slot.own_commit = self._sign(Commit(self._view, seq, pp.digest))
                slot.commits[self._id] = slot.own_commit
        self._max_accepted_seq = top
        self._next_seq = top + 1
        for _cert, block in self._prepared.values():
            self._store_body(block)
        if self._last_executed < self._stable.seq:
            self._catch_up_target = self._stable.seq
            peers = tuple(rid for rid, _ in self._stable.signatures if rid != self._id)
            others = tuple(m for m in self._config.members if m != self._id and m not in peers)
            self._fetch_hint = peers + others
