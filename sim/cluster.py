"""The simulated cluster: real replicas, simulated clock and network, invariants after every step.

Everything runs in one thread from one seed; events are ordered by (time, insertion order), so
the same seed replays the same run, and `trace_digest` proves it. Each replica's effects are
drained in order as the node would: Persist into its durable store, Send/Broadcast onto the
network, Execute into its ledger (then `on_executed`), FetchBlocks served from a peer's ledger.

Safety invariants, checked as events happen (honest replicas only):
- agreement: one block digest per height; equal state roots per height;
- prefix order: a replica executes height h+1 right after h, with the parent digest of h;
- certificates: every executed block carries a valid commit certificate for its digest;
- monotonic block time; no phantom requests (every applied request was submitted);
- exactly-once: the ledger applies a request id once (duplicates in blocks are counted);
- no honest replica signs two digests for one (view, seq), across restarts too;
- persist-before-send: a PRE-PREPARE/PREPARE/COMMIT only leaves once its record is durable;
- honest checkpoints agree.
Liveness: after the fault phase the network heals and crashed replicas restart; every submitted
request must then execute on every honest replica within the scenario's budget.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import Counter, deque
from typing import Any

from ibledger.consensus import (
    ZERO_DIGEST,
    Broadcast,
    Checkpoint,
    Commit,
    CommittedBlock,
    Effect,
    EffectDrain,
    Evidence,
    Execute,
    FetchBlocks,
    Persist,
    PersistedState,
    Prepare,
    PrePrepare,
    Replica,
    RequestRejected,
    Send,
    SignedMessage,
    StableCheckpoint,
    Verifier,
    ViewChanged,
    report_late_root,
    request_id,
    verify_checkpoint_certificate,
    verify_commit_certificate,
)
from ibledger.consensus.codec import decode_message, decode_prepared_certificate, unpack
from ibledger.consensus.state import PREFIX_PRE_PREPARE, PREFIX_PREPARED, seq_key
from ibledger.node.store import StoreIOError

from .byzantine import ByzantineReplica
from .ledger import Executor, SimLedger
from .network import Network
from .scenario import EPOCH_MS, Fault, Scenario
from .signing import make_crypto

__all__ = ["EPOCH_MS", "Cluster"]

CHECK_INTERVAL_MS = 100
TRANSFER_BATCH = 64

AnyReplica = Replica | ByzantineReplica


class Cluster:
    def __init__(self, scenario: Scenario) -> None:
        self.sc = scenario
        self.config = scenario.config
        self.members = scenario.config.members
        self.rng = random.Random(scenario.seed * 1_000_003 + scenario.n)
        signers, verifier = make_crypto(self.members, scenario.ed25519, scenario.suite)
        self.signers = signers
        self.verifier: Verifier = verifier
        self.stores = {m: PersistedState() for m in self.members}
        self.ledgers: dict[str, Executor] = {m: self._new_executor(m) for m in self.members}
        self.honest = tuple(m for m in self.members if m not in scenario.byzantine)
        self.net = Network(self.rng, scenario.profile)
        self.queue: list[tuple[int, int, str, Any, Any, Any]] = []
        self.order = 0
        self.now = 0
        # The trace digest proves a replay is the same run; it is the simulator's own record,
        # not chain data, so it stays SHA-256 whatever hash the replicas use.
        self.trace = hashlib.sha256()
        self.violations: list[str] = []
        self.digests: dict[int, bytes] = {}
        self.roots: dict[int, bytes] = {}
        self.votes: dict[tuple[str, int, int], bytes] = {}
        self.checkpoints: dict[int, tuple[bytes, bytes]] = {}
        self.reported_stable: dict[str, int] = {}  # per replica process: restarts start over
        self.submitted: dict[bytes, bytes] = {}
        self.crash_armed: set[str] = set()
        self.stats: Counter[str] = Counter()
        self.healed = False
        self.converged_at: int | None = None
        self.events = 0
        self._record_cache: dict[bytes, tuple[int, bytes]] = {}
        self.replicas: dict[str, AnyReplica] = {}
        self.up: set[str] = set()
        # A lagging executor per replica process (`execution_lag_ms`): blocks and stable
        # certificates in the order consensus handed them out, and the process they belong to.
        self.executor_queue: dict[str, deque[CommittedBlock | StableCheckpoint]] = {
            m: deque() for m in self.members
        }
        self.incarnation: Counter[str] = Counter()
        for m in self.members:
            self.replicas[m] = self._make_replica(m)
            self.up.add(m)

    # ------------------------------------------------------------------ setup

    def _new_executor(self, m: str) -> Executor:
        return SimLedger(self.sc.config.hash_fn)

    def _persisted_state(self, m: str) -> PersistedState:
        """The consensus records a (re)starting replica is built from."""
        return self.stores[m].copy()

    def _make_replica(self, m: str) -> AnyReplica:
        replica = Replica(
            self.config,
            m,
            self.signers[m],
            self.verifier,
            persisted=self._persisted_state(m),
            last_executed=self.ledgers[m].tip(),
            request_validator=self.ledgers[m].valid_request,
        )
        mode = self.sc.byzantine.get(m)
        if mode is None:
            return replica

        def defer(delay: int, effect: Effect) -> None:
            self._push(self.now + delay, "effect", m, effect)

        return ByzantineReplica(
            replica, mode, self.signers[m], random.Random(self.rng.random()), defer, self.sc.tick_ms
        )

    def _push(self, at: int, kind: str, a: Any = None, b: Any = None, c: Any = None) -> None:
        self.order += 1
        heapq.heappush(self.queue, (at, self.order, kind, a, b, c))

    def now_ms(self, m: str) -> int:
        return EPOCH_MS + self.now + self.sc.skews_ms[m]

    def violation(self, text: str) -> None:
        self.violations.append(f"t={self.now}ms {text}")

    # ------------------------------------------------------------------ run

    def run(self) -> None:
        sc = self.sc
        tick_ms = sc.tick_ms
        for i, m in enumerate(self.members):
            self._push(1 + (i * tick_ms) // max(1, len(self.members)), "tick", m)
        for at, target, request in sc.requests:
            self._push(at, "submit", request, self.members[target])
        for fault in sc.faults:
            self._push(fault.at_ms, "fault", fault)
        self._push(sc.fault_ms, "heal")
        deadline = sc.fault_ms + sc.liveness_budget_ms
        while self.queue and not self.violations:
            at, _, kind, a, b, c = heapq.heappop(self.queue)
            if at > deadline:
                break
            self.now = at
            self.events += 1
            self._handle(kind, a, b, c)
            if self.converged_at is not None:
                break
        if not self.violations and self.converged_at is None:
            self.violation(
                "liveness: not every request executed on every honest replica "
                f"within {sc.liveness_budget_ms}ms after healing; {self.progress()}"
            )

    def progress(self) -> str:
        parts = []
        for m in self.members:
            r = self.replicas[m]
            missing = sum(1 for rid in self.submitted if rid not in self.ledgers[m].applied_set)
            tag = "byz" if m in self.sc.byzantine else ("up" if m in self.up else "down")
            parts.append(f"{m}({tag}) h={self.ledgers[m].height} view={r.view} missing={missing}")
        return "; ".join(parts)

    def _trace(self, *fields: object) -> None:
        self.trace.update(repr((self.now, *fields)).encode())

    def _handle(self, kind: str, a: Any, b: Any, c: Any) -> None:
        if kind == "deliver":
            dst, sm, src = a, b, c
            if dst not in self.up:
                return
            self._trace("d", src, dst, type(sm.message).__name__, sm.signature[:6])
            self._drain(dst, self.replicas[dst].step(sm))
        elif kind == "tick":
            m = a
            self._push(self.now + self.sc.tick_ms, "tick", m)
            if m in self.up:
                self._drain(m, self.replicas[m].tick(self.now_ms(m)))
        elif kind == "submit":
            self._submit(a, b)
        elif kind == "retry":
            self._retry(a)
        elif kind == "transfer":
            m, blocks = a, b
            if m in self.up:
                self._trace("t", m, len(blocks))
                self._drain(m, self.replicas[m].on_state_transfer(blocks))
        elif kind == "executor":
            m, incarnation = a, b
            if m in self.up and incarnation == self.incarnation[m]:
                self._run_executor(m)
        elif kind == "effect":
            m, effect = a, b
            if m in self.up:
                self._drain(m, [effect])
        elif kind == "fault":
            self._fault(a)
        elif kind == "restart":
            self._restart(a)
        elif kind == "unblock":
            self.net.unblock(a)
        elif kind == "unclog":
            for link in a:
                self.net.clogged.pop(link, None)
        elif kind == "heal":
            self._heal()
        elif kind == "check":
            self._check_converged()

    # ------------------------------------------------------------------ clients

    def _submit(self, request: bytes, target: str | None) -> None:
        rid = request_id(request, self.sc.config.hash_fn)
        if rid not in self.submitted:
            self.submitted[rid] = request
            self._push(self.now + self.sc.client_retry_ms, "retry", rid)
        targets = [target] if target is not None else sorted(self.up)
        for m in targets:
            if m in self.up:
                self._trace("s", m, rid[:4])
                self._drain(m, self.replicas[m].submit(request, self.now_ms(m)))

    def _retry(self, rid: bytes) -> None:
        if any(rid in self.ledgers[h].applied_set for h in self.honest):
            return
        self.stats["client-retry"] += 1
        self._submit(self.submitted[rid], None)
        self._push(self.now + self.sc.client_retry_ms, "retry", rid)

    # ------------------------------------------------------------------ faults

    def _fault(self, fault: Fault) -> None:
        if self.healed:
            return
        self.stats["fault-" + fault.kind] += 1
        self._trace("f", fault.kind, fault.targets)
        members = self.members
        kind = fault.kind
        until = min(self.now + fault.duration_ms, self.sc.fault_ms)
        if kind == "partition":
            group = set(fault.targets)
            links = [(a, b) for a in members for b in members if (a in group) != (b in group)]
            self.net.block(links)
            self._push(until, "unblock", links)
        elif kind == "oneway":
            (x,) = fault.targets
            if self.rng.random() < 0.5:
                links = [(a, x) for a in members if a != x]  # x cannot receive
            else:
                links = [(x, b) for b in members if b != x]  # x cannot send
            self.net.block(links)
            self._push(until, "unblock", links)
        elif kind == "isolate-primary":
            views = [self.replicas[h].view for h in self.honest if h in self.up]
            x = self.config.primary(max(views) if views else 0)
            links = [(a, b) for a in members for b in members if a != b and x in (a, b)]
            self.net.block(links)
            self._push(until, "unblock", links)
        elif kind == "clog":
            a, b = fault.targets
            links = [(a, b), (b, a)]
            for link in links:
                self.net.clogged[link] = self.rng.randint(200, 2_000)
            self._push(until, "unclog", links)
        elif kind == "swizzle":
            (x,) = fault.targets
            peers = [p for p in members if p != x]
            order = peers[:]
            self.rng.shuffle(order)
            release = peers[:]
            self.rng.shuffle(release)
            step = max(1, fault.duration_ms // (2 * len(peers)))
            for i, p in enumerate(order):
                self._push(self.now + i * step, "fault", Fault(0, "clog-link", 0, (x, p)))
            for i, p in enumerate(release):
                self._push(self.now + (len(peers) + i) * step, "unclog", [(x, p), (p, x)])
        elif kind == "clog-link":
            a, b = fault.targets
            self.net.clogged[(a, b)] = self.net.clogged[(b, a)] = self.rng.randint(300, 3_000)
        elif kind in ("crash", "crash-mid-drain"):
            (x,) = fault.targets
            if x not in self.honest or x not in self.up:
                return
            if kind == "crash-mid-drain":
                self.crash_armed.add(x)
            else:
                self._crash(x)
            self._push(until, "restart", x)

    def _crash(self, m: str) -> None:
        self.crash_armed.discard(m)
        if m in self.up:
            self.up.discard(m)
            # The executor dies with the process: what it had not applied is lost.
            if self.executor_queue[m]:
                self.stats["executor-items-lost"] += len(self.executor_queue[m])
                self.executor_queue[m].clear()
            self.incarnation[m] += 1
            self.stats["crash"] += 1
            self._trace("crash", m)

    def _restart(self, m: str) -> None:
        self.crash_armed.discard(m)
        if m in self.up:
            return
        self.replicas[m] = self._make_replica(m)
        self.reported_stable.pop(m, None)
        self.up.add(m)
        self.stats["restart"] += 1
        self._trace("restart", m)

    def _heal(self) -> None:
        self.healed = True
        self.net.heal()
        for m in self.members:
            self._restart(m)
        self._push(self.now + CHECK_INTERVAL_MS, "check")

    def _check_converged(self) -> None:
        want = self.submitted.keys()
        if len(want) < len({request_id(r, self.sc.config.hash_fn) for _, _, r in self.sc.requests}):
            self._push(self.now + CHECK_INTERVAL_MS, "check")
            return
        if all(self.ledgers[h].applied_set.issuperset(want) for h in self.honest):
            self.converged_at = self.now
            return
        self._push(self.now + CHECK_INTERVAL_MS, "check")

    # ------------------------------------------------------------------ effects

    def _drain(self, m: str, effects: list[Effect]) -> None:
        cut = -1
        if m in self.crash_armed:
            cut = self.rng.randrange(len(effects)) if effects else 0
        drain = EffectDrain(self.replicas[m], effects)
        try:
            self._drain_effects(m, drain, cut)
        except StoreIOError as exc:
            self._storage_failed(m, exc)
            return
        if cut >= 0:
            self._crash(m)

    def _drain_effects(self, m: str, drain: EffectDrain, cut: int) -> None:
        for index, e in enumerate(drain):
            if index == cut:
                self._crash(m)
                return
            if isinstance(e, Persist):
                self._persist(m, e)
            elif isinstance(e, Broadcast):
                self._check_sent(m, e.message)
                self._broadcast(m, e.message)
            elif isinstance(e, Send):
                self._check_sent(m, e.message)
                self._transmit(m, e.to, e.message)
            elif isinstance(e, Execute):
                if self.sc.execution_lag_ms:
                    drain.handed_off(e)
                    self._hand_to_executor(m, e.block)
                else:
                    drain.executed(e, self._execute(m, e.block))
            elif isinstance(e, FetchBlocks):
                self._serve_fetch(m, e)
            elif isinstance(e, StableCheckpoint):
                if self.sc.execution_lag_ms:
                    self._hand_to_executor(m, e)
                else:
                    self._stable_checkpoint(m, e)
            elif isinstance(e, ViewChanged):
                self.stats["view-changed"] += 1
                self.stats["max-view"] = max(self.stats["max-view"], e.view)
                self._trace("v", m, e.view)
            elif isinstance(e, Evidence):
                self.stats["evidence-" + e.kind] += 1
            elif isinstance(e, RequestRejected):
                self.stats["rejected-" + e.reason] += 1

    def _hand_to_executor(self, m: str, item: CommittedBlock | StableCheckpoint) -> None:
        queue = self.executor_queue[m]
        queue.append(item)
        if len(queue) == 1:
            self._schedule_executor(m)

    def _schedule_executor(self, m: str) -> None:
        delay = self.rng.randint(1, self.sc.execution_lag_ms)
        self._push(self.now + delay, "executor", m, self.incarnation[m])

    def _run_executor(self, m: str) -> None:
        """Apply the executor's next item; a block's root goes back to its replica late."""
        queue = self.executor_queue[m]
        item = queue.popleft()
        if queue:
            self._schedule_executor(m)
        try:
            if isinstance(item, StableCheckpoint):
                self._stable_checkpoint(m, item)
                return
            root = self._execute(m, item)
            self.stats["executed-late"] += 1
        except StoreIOError as exc:
            self._storage_failed(m, exc)
            return
        self._drain(m, report_late_root(self.replicas[m], item.seq, root))

    def _persist(self, m: str, e: Persist) -> None:
        self.stores[m].apply(e)

    def _stable_checkpoint(self, m: str, e: StableCheckpoint) -> None:
        """A replica hands out each stable certificate once, in order, for a block it executed."""
        cert = e.certificate
        if m not in self.honest:
            return
        if cert.seq > self.ledgers[m].height:
            self.violation(f"{m}: stable checkpoint {cert.seq} above its executed chain")
        if cert.seq <= self.reported_stable.get(m, 0):
            self.violation(f"{m}: stable checkpoint {cert.seq} handed out again or out of order")
        if not verify_checkpoint_certificate(self.config, cert, self.verifier):
            self.violation(f"{m}: stable checkpoint {cert.seq} does not verify")
        self.reported_stable[m] = cert.seq

    def _storage_failed(self, m: str, exc: StoreIOError) -> None:
        """A write of the replica's storage failed; the stand-in executor never writes."""
        raise exc

    def _broadcast(self, src: str, sm: SignedMessage) -> None:
        for dst in self.members:
            if dst != src:
                self._transmit(src, dst, sm)

    def _transmit(self, src: str, dst: str, sm: SignedMessage) -> None:
        for delay in self.net.delays(src, dst):
            self._push(self.now + delay, "deliver", dst, sm, src)

    def _serve_fetch(self, m: str, e: FetchBlocks) -> None:
        self.stats["fetch"] += 1
        hint = list(e.peers_hint)
        liars = [p for p in hint if self.sc.byzantine.get(p) == "bad-transfer"]
        if liars and self.rng.random() < 0.5:
            hint = liars + hint  # the attacker answers first
        for server in hint:
            if server not in self.up or server == m:
                continue
            if self.net.blocked[(server, m)] or self.net.blocked[(m, server)]:
                continue
            ledger = self.ledgers[server]
            last = min(e.to_seq, e.from_seq + TRANSFER_BATCH - 1, ledger.height)
            blocks = ledger.committed_blocks(e.from_seq, last)
            if not blocks:
                continue
            replica = self.replicas[server]
            if isinstance(replica, ByzantineReplica):
                blocks = replica.serve_blocks(list(blocks))
            delay = sum(self.net.delays(server, m)[:1]) + sum(self.net.delays(m, server)[:1])
            self._push(self.now + delay, "transfer", m, list(blocks))
            return

    def _record(self, value: bytes, commit: bool) -> tuple[int, bytes]:
        cached = self._record_cache.get(value)
        if cached is not None:
            return cached
        fields = unpack(value)
        if commit:
            cert = decode_prepared_certificate(fields[0])
            result = (cert.view, cert.digest)
        else:
            pp = decode_message(fields[1], hash_fn=self.sc.config.hash_fn).message
            assert isinstance(pp, PrePrepare)
            result = (pp.view, pp.digest)
        if len(self._record_cache) > 4096:
            self._record_cache.clear()
        self._record_cache[value] = result
        return result

    def _check_sent(self, m: str, sm: SignedMessage) -> None:
        if m not in self.honest or sm.sender != m:
            return
        msg = sm.message
        if isinstance(msg, PrePrepare | Prepare | Commit):
            key = (m, msg.view, msg.seq)
            previous = self.votes.setdefault(key, msg.digest)
            if previous != msg.digest:
                self.violation(f"{m} signed two digests for view {msg.view} seq {msg.seq}")
            store = self.stores[m].records
            if isinstance(msg, Commit):
                value = store.get(seq_key(PREFIX_PREPARED, msg.seq))
            else:
                value = store.get(seq_key(PREFIX_PRE_PREPARE, msg.seq))
            if value is None or self._record(value, isinstance(msg, Commit)) != (
                msg.view,
                msg.digest,
            ):
                self.violation(
                    f"{m} sent {type(msg).__name__}(v={msg.view}, n={msg.seq}) before persisting it"
                )
        elif isinstance(msg, Checkpoint):
            value2 = (msg.block_digest, msg.state_root)
            if self.checkpoints.setdefault(msg.seq, value2) != value2:
                self.violation(f"honest checkpoints disagree at seq {msg.seq}")

    def _execute(self, m: str, cb: CommittedBlock) -> bytes:
        ledger = self.ledgers[m]
        honest = m in self.honest
        seq = cb.seq
        self._trace("x", m, seq, cb.digest[:6])
        if honest:
            if seq != ledger.height + 1:
                self.violation(f"{m} executed seq {seq} after height {ledger.height}")
            tip = ledger.tip()
            parent = tip.digest if ledger.height else ZERO_DIGEST
            if cb.parent_digest != parent:
                self.violation(f"{m} seq {seq}: parent digest does not link")
            if ledger.height and cb.timestamp_ms <= tip.timestamp_ms:
                self.violation(f"{m} seq {seq}: block time not increasing")
            cert = cb.certificate
            if cert.seq != seq or not verify_commit_certificate(
                self.members, self.config.f, cb.digest, cert, self.verifier
            ):
                self.violation(f"{m} seq {seq}: invalid commit certificate")
            agreed = self.digests.setdefault(seq, cb.digest)
            if agreed != cb.digest:
                self.violation(f"agreement: {m} executed a different block at seq {seq}")
        before = len(ledger.applied)
        root = ledger.apply(cb)
        if honest:
            agreed_root = self.roots.setdefault(seq, root)
            if agreed_root != root:
                self.violation(f"state roots differ at seq {seq} ({m})")
            for rid in ledger.applied[before:]:
                if rid not in self.submitted:
                    self.violation(f"{m} applied a request no client submitted")
        self.stats["executed"] += 1
        return root

    def trace_digest(self) -> str:
        return self.trace.copy().hexdigest()
