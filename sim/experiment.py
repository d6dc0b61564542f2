"""Research runs: the simulated cluster under chosen delays, load and faults, measured.

A run drives the same real replicas and the same invariant checks as the seed swarm
(`Cluster`), but takes its network, load and faults from an `ExperimentConfig` instead of drawing
them from a seed, keeps simulated time in microseconds, and measures what a researcher asks of
a consensus protocol: committed throughput, submit-to-commit latency, messages and bytes per
committed block, view changes, beside the analytical latency of `analysis.py`.

Load is open loop: requests arrive at `rate_tps` (Poisson or evenly spaced) during the run, each
at an entry replica chosen uniformly; the client waits for the entry replica to execute it (the
latency measured), and if it has not been executed anywhere after `client_retry_ms` it resubmits
to every running replica and then accepts the first execution anywhere. After `duration_s` no
new requests arrive and the run drains until every request is executed or `drain_s` has passed.

Everything random comes from streams seeded by the run's seed (arrivals apart from the network,
so that changing the loss rate does not change the arrival times); the run reads no clock, and the
same config replays the same trace (`trace_digest`).
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ibledger.consensus import (
    CommittedBlock,
    ReplicaConfig,
    SignedMessage,
    encode_message,
    request_id,
)

from .analysis import Analysis, analyse
from .cluster import EPOCH_MS, Cluster
from .faults import ScheduledFault
from .latency import US_PER_MS, Fixed, LatencyModel, Matrix
from .ledger import make_request
from .network import Network, NetworkProfile
from .scenario import Scenario
from .signing import HashSigner, SharedHashVerifier

NODES_MIN = 4
NODES_MAX = 64
CHECK_INTERVAL_US = 100_000
DEFAULT_LATENCY: LatencyModel = Fixed(5.0)


@dataclass(frozen=True, slots=True)
class ExperimentConfig:
    n: int = 4
    seed: int = 1
    duration_s: float = 10.0
    rate_tps: float = 100.0
    arrivals: str = "poisson"  # or "constant"
    latency: LatencyModel = DEFAULT_LATENCY
    regions: tuple[int, ...] = ()  # region index per replica (matrix model only)
    loss: float = 0.0
    batch_size_max: int = 64
    batch_timeout_ms: float = 50.0
    eager_blocks: int = 0  # as the genesis consensus parameter: propose at once below this
    view_change_timeout_ms: float = 1_000.0
    tick_ms: int = 10
    tx_bytes: int = 200
    faults: tuple[ScheduledFault, ...] = ()
    client_retry_ms: float = 2_000.0
    drain_s: float = 10.0
    checkpoint_interval: int = 32
    watermark_window: int = 128

    def validate(self) -> None:
        if not NODES_MIN <= self.n <= NODES_MAX:
            raise ValueError(f"--nodes must be {NODES_MIN} to {NODES_MAX}, got {self.n}")
        if not 0 <= self.loss < 1:
            raise ValueError("--loss must be in [0, 1)")
        if self.duration_s <= 0 or self.rate_tps < 0 or self.drain_s < 0:
            raise ValueError("--duration must be > 0, --rate and --drain >= 0")
        if self.tick_ms < 1 or self.batch_size_max < 1 or self.tx_bytes < 1:
            raise ValueError("--tick-ms, --batch-size and --tx-size must be >= 1")
        if self.eager_blocks < 0:
            raise ValueError("--eager-blocks must be >= 0")
        if self.batch_timeout_ms < 0 or self.view_change_timeout_ms < 2 * self.tick_ms:
            raise ValueError("--batch-timeout-ms >= 0 and --view-change-timeout-ms >= 2 ticks")
        if self.arrivals not in ("poisson", "constant"):
            raise ValueError("--arrivals must be poisson or constant")
        if isinstance(self.latency, Matrix) and len(self.regions) != self.n:
            raise ValueError("a matrix latency model needs a region for every replica")
        for fault in self.faults:
            if any(i >= self.n for g in fault.groups for i in g):
                raise ValueError(f"{fault.describe()}: no such replica")

    @property
    def batch_timeout_ticks(self) -> int:
        return math.ceil(self.batch_timeout_ms / self.tick_ms)

    def replica_config(self) -> ReplicaConfig:
        vc_ticks = math.ceil(self.view_change_timeout_ms / self.tick_ms)
        return ReplicaConfig(
            tuple(f"r{i}" for i in range(self.n)),
            batch_size_max=self.batch_size_max,
            batch_timeout_ticks=self.batch_timeout_ticks,
            eager_blocks=self.eager_blocks,
            checkpoint_interval=self.checkpoint_interval,
            watermark_window=self.watermark_window,
            view_change_timeout_ticks=vc_ticks,
            view_change_timeout_max_ticks=vc_ticks * 16,
        )

    def region_of(self, i: int) -> int:
        return self.regions[i] if self.regions else 0

    def mean_delays_ms(self) -> list[list[float]]:
        n, model = self.n, self.latency
        return [
            [model.mean_ms(self.region_of(i), self.region_of(j)) for j in range(n)]
            for i in range(n)
        ]

    def analysis(self) -> Analysis:
        return analyse(
            self.mean_delays_ms(),
            primary=0,
            tick_ms=self.tick_ms,
            batch_timeout_ticks=self.batch_timeout_ticks,
            batch_size_max=self.batch_size_max,
            rate_tps=self.rate_tps,
            exact=isinstance(self.latency, Fixed | Matrix),
            eager_blocks=self.eager_blocks,
        )


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(slots=True)
class ExperimentResult:
    config: ExperimentConfig
    submitted: int
    committed_in_run: int  # first executed anywhere by the end of the load phase
    committed: int  # including the drain
    latencies_ms: list[float]
    blocks: int
    messages: int
    message_bytes: int
    messages_by_type: dict[str, int]
    bytes_by_type: dict[str, int]
    view_changes: int
    simulated_s: float
    events: int
    trace_digest: str
    violations: list[str]
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def committed_tps(self) -> float:
        return self.committed_in_run / self.config.duration_s

    @property
    def offered_tps(self) -> float:
        return self.submitted / self.config.duration_s

    def latency_summary_ms(self) -> dict[str, float]:
        values = sorted(self.latencies_ms)
        mean = sum(values) / len(values) if values else 0.0
        return {
            "p50": percentile(values, 0.50),
            "p90": percentile(values, 0.90),
            "p99": percentile(values, 0.99),
            "max": values[-1] if values else 0.0,
            "mean": mean,
        }

    def summary(self) -> dict[str, Any]:
        """Everything the report prints, as plain JSON-ready values (simulated time only)."""
        cfg = self.config
        analysis = cfg.analysis()
        per_block = max(1, self.blocks)
        return {
            "nodes": cfg.n,
            "f": (cfg.n - 1) // 3,
            "seed": cfg.seed,
            "duration_s": cfg.duration_s,
            "simulated_s": round(self.simulated_s, 6),
            "latency_model": cfg.latency.describe(),
            "loss": cfg.loss,
            "batch_size_max": cfg.batch_size_max,
            "batch_timeout_ms": cfg.batch_timeout_ms,
            "view_change_timeout_ms": cfg.view_change_timeout_ms,
            "tick_ms": cfg.tick_ms,
            "rate_tps": cfg.rate_tps,
            "arrivals": cfg.arrivals,
            "tx_bytes": cfg.tx_bytes,
            "faults": [f.describe() for f in cfg.faults],
            "submitted": self.submitted,
            "committed": self.committed,
            "uncommitted": self.submitted - self.committed,
            "offered_tps": round(self.offered_tps, 3),
            "committed_tps": round(self.committed_tps, 3),
            "latency_ms": {k: round(v, 3) for k, v in self.latency_summary_ms().items()},
            "analytical_latency_ms": {
                "total": round(analysis.latency_ms, 3),
                "forward": round(analysis.forward_ms, 3),
                "batch_wait": round(analysis.batch_wait_ms, 3),
                "agreement": round(analysis.agreement_ms, 3),
                "exact_delays": analysis.exact,
                "formula": analysis.formula(),
            },
            "blocks": self.blocks,
            "requests_per_block": round(self.committed / per_block, 3),
            "messages_per_block": round(self.messages / per_block, 3),
            "bytes_per_block": round(self.message_bytes / per_block, 1),
            "messages_by_type": dict(sorted(self.messages_by_type.items())),
            "bytes_by_type": dict(sorted(self.bytes_by_type.items())),
            "view_changes": self.view_changes,
            "violations": self.violations,
            "events": self.events,
            "trace_digest": self.trace_digest,
        }


class ResearchNetwork(Network):
    """Delays from a latency model between the replicas' regions; independent loss."""

    def __init__(
        self,
        rng: random.Random,
        model: LatencyModel,
        regions: dict[str, int],
        loss: float,
    ) -> None:
        super().__init__(rng, NetworkProfile("model", 0.0, loss, 0.0))
        self._model = model
        self._regions = regions
        self._loss = loss
        self._fixed_us = round(model.delay_ms * US_PER_MS) if isinstance(model, Fixed) else None

    def delays(self, src: str, dst: str) -> list[int]:
        self.sent += 1
        if self.blocked[(src, dst)] > 0:
            self.dropped += 1
            return []
        rng = self._rng
        if self._loss and rng.random() < self._loss:
            self.dropped += 1
            return []
        if self._fixed_us is not None:
            return [self._fixed_us]
        return [self._model.sample_us(rng, self._regions[src], self._regions[dst])]


class Experiment(Cluster):
    """A `Cluster` whose clock runs in microseconds and whose inputs come from a config."""

    def __init__(self, config: ExperimentConfig) -> None:
        config.validate()
        self.xc = config
        rc = config.replica_config()
        members = rc.members
        scenario = Scenario(
            config.seed,
            config.n,
            rc,
            NetworkProfile("model", 0.0, config.loss, 0.0),
            byzantine={},
            skews_ms=dict.fromkeys(members, 0),
            faults=[],
            requests=[],
            fault_ms=0,
            tick_ms=config.tick_ms,
        )
        super().__init__(scenario)
        # 64-byte signatures, as Ed25519's, and one hash per signed message for all receivers.
        self.signers = {m: HashSigner(m, size=64) for m in members}
        self.verifier = SharedHashVerifier(members)
        self.replicas = {m: self._make_replica(m) for m in members}
        regions = {m: config.region_of(i) for i, m in enumerate(members)}
        self.net = ResearchNetwork(
            random.Random(f"network:{config.seed}"), config.latency, regions, config.loss
        )
        self._arrivals = random.Random(f"arrivals:{config.seed}")
        self.end_load_us = round(config.duration_s * 1_000_000)
        self.deadline_us = self.end_load_us + round(config.drain_s * 1_000_000)
        self.waiting: dict[bytes, tuple[int, str | None]] = {}  # rid -> (submitted at, entry)
        self.first_commit_us: dict[bytes, int] = {}
        self.latencies_us: list[int] = []
        self.blocks_seen: set[int] = set()
        self.messages_by_type: Counter[str] = Counter()
        self.bytes_by_type: Counter[str] = Counter()
        self._last_sm: SignedMessage | None = None
        self._last_size = 0
        self._last_kind = ""
        self._index = 0
        self._crashed_by_fault: set[str] = set()
        self._fault_links: dict[int, list[tuple[str, str]]] = {}

    # ------------------------------------------------------------------ clock

    def now_ms(self, m: str) -> int:
        return EPOCH_MS + self.now // 1_000

    # ------------------------------------------------------------------ run

    def run(self) -> None:
        cfg = self.xc
        tick_us = cfg.tick_ms * 1_000
        n = len(self.members)
        for i, m in enumerate(self.members):
            self._push(1 + (i * tick_us) // n, "tick", m)
        if cfg.rate_tps > 0:
            self._push(self._next_arrival(0), "arrive")
        for number, fault in enumerate(cfg.faults):
            self._push(fault.start_us, "fault-start", number)
            if fault.end_us is not None:
                self._push(fault.end_us, "fault-end", number)
        self._push(self.end_load_us, "check")
        while self.queue and not self.violations:
            at, _, kind, a, b, c = heapq.heappop(self.queue)
            if at > self.deadline_us:
                self.now = self.deadline_us
                break
            self.now = at
            self.events += 1
            if kind == "tick":
                self._push(at + tick_us, "tick", a)
                if a in self.up:
                    self._drain(a, self.replicas[a].tick(self.now_ms(a)))
            elif kind == "arrive":
                self._arrive()
            elif kind == "retry":
                self._client_retry(a)
            elif kind == "fault-start":
                self._fault_start(a)
            elif kind == "fault-end":
                self._fault_end(a)
            elif kind == "deliver-group":
                self._deliver_group(a, b, c)
            elif kind == "check":
                if not self.waiting:
                    break
                self._push(at + CHECK_INTERVAL_US, "check")
            else:
                self._handle(kind, a, b, c)

    def _next_arrival(self, after_us: int) -> int:
        rate = self.xc.rate_tps
        if self.xc.arrivals == "constant":
            gap = 1_000_000 / rate
        else:
            gap = self._arrivals.expovariate(rate / 1_000_000)
        return after_us + max(1, round(gap))

    def _arrive(self) -> None:
        index = self._index
        self._index += 1
        entry = self.members[self._arrivals.randrange(len(self.members))]
        client = index % 1024
        base = len(make_request(client, index, 0))
        request = make_request(client, index, max(0, self.xc.tx_bytes - base))
        rid = self._register(request, entry)
        self._trace("s", entry, rid[:4])
        if entry in self.up:
            self._drain(entry, self.replicas[entry].submit(request, self.now_ms(entry)))
        self._push(self.now + round(self.xc.client_retry_ms * 1_000), "retry", rid)
        following = self._next_arrival(self.now)
        if following < self.end_load_us:
            self._push(following, "arrive")

    def _register(self, request: bytes, entry: str) -> bytes:
        rid = request_id(request)
        self.submitted[rid] = request
        self.waiting[rid] = (self.now, entry)
        return rid

    def _client_retry(self, rid: bytes) -> None:
        if rid in self.first_commit_us or rid not in self.waiting:
            return
        self.stats["client-retry"] += 1
        submitted_at, _ = self.waiting[rid]
        self.waiting[rid] = (submitted_at, None)
        request = self.submitted[rid]
        for m in sorted(self.up):
            self._drain(m, self.replicas[m].submit(request, self.now_ms(m)))
        self._push(self.now + round(self.xc.client_retry_ms * 1_000), "retry", rid)

    # ------------------------------------------------------------------ faults

    def _links(self, fault: ScheduledFault) -> list[tuple[str, str]]:
        members = self.members
        if fault.kind == "partition":
            group_of = {members[i]: g for g, group in enumerate(fault.groups) for i in group}
            return [
                (a, b)
                for a in members
                for b in members
                if a in group_of and b in group_of and group_of[a] != group_of[b]
            ]
        x = members[fault.groups[0][0]] if fault.groups else self._current_primary()
        return [(a, b) for a in members for b in members if a != b and x in (a, b)]

    def _current_primary(self) -> str:
        views = [self.replicas[h].view for h in self.honest if h in self.up]
        return self.config.primary(max(views) if views else 0)

    def _fault_start(self, number: int) -> None:
        fault = self.xc.faults[number]
        self.stats["fault-" + fault.kind] += 1
        self._trace("f", fault.kind, fault.groups)
        if fault.kind == "crash":
            x = self.members[fault.groups[0][0]]
            if x in self.up:
                self._crash(x)
                self._crashed_by_fault.add(x)
            return
        links = self._links(fault)
        self._fault_links[number] = links
        self.net.block(links)

    def _fault_end(self, number: int) -> None:
        fault = self.xc.faults[number]
        self._trace("F", fault.kind, fault.groups)
        if fault.kind == "crash":
            x = self.members[fault.groups[0][0]]
            if x in self._crashed_by_fault:
                self._crashed_by_fault.discard(x)
                self._restart(x)
            return
        self.net.unblock(self._fault_links.pop(number, []))

    # ------------------------------------------------------------------ measurement

    def _transmit(self, src: str, dst: str, sm: SignedMessage) -> None:
        if sm is not self._last_sm:
            # A broadcast transmits one message object n-1 times in a row: encode it once.
            self._last_sm = sm
            self._last_size = len(encode_message(sm))
            self._last_kind = type(sm.message).__name__
        self.messages_by_type[self._last_kind] += 1
        self.bytes_by_type[self._last_kind] += self._last_size
        super()._transmit(src, dst, sm)

    def _broadcast(self, src: str, sm: SignedMessage) -> None:
        """One event per distinct delivery time instead of one per receiver: with fixed or
        matrix delays a broadcast to n-1 replicas becomes one or a few queue entries."""
        size = len(encode_message(sm))
        kind = type(sm.message).__name__
        self._last_sm, self._last_size, self._last_kind = sm, size, kind
        fanout = len(self.members) - 1
        self.messages_by_type[kind] += fanout
        self.bytes_by_type[kind] += size * fanout
        now = self.now
        delays = self.net.delays
        groups: dict[int, list[str]] = {}
        for dst in self.members:
            if dst != src:
                for delay in delays(src, dst):
                    at = now + delay
                    group = groups.get(at)
                    if group is None:
                        groups[at] = [dst]
                    else:
                        group.append(dst)
        for at, dsts in groups.items():
            self._push(at, "deliver-group", tuple(dsts), sm, src)

    def _deliver_group(self, dsts: tuple[str, ...], sm: SignedMessage, src: str) -> None:
        up = self.up
        self._trace("D", src, dsts, type(sm.message).__name__, sm.signature[:6])
        for dst in dsts:
            if dst in up:
                self._drain(dst, self.replicas[dst].step(sm))

    def _execute(self, m: str, cb: CommittedBlock) -> bytes:
        root = super()._execute(m, cb)
        if m not in self.honest:
            return root
        self.blocks_seen.add(cb.seq)
        now = self.now
        for rid in cb.block.request_ids:
            info = self.waiting.get(rid)
            if info is None:
                continue
            self.first_commit_us.setdefault(rid, now)
            submitted_at, entry = info
            if entry is None or entry == m:
                self.latencies_us.append(now - submitted_at)
                del self.waiting[rid]
        return root

    def result(self) -> ExperimentResult:
        end = self.end_load_us
        return ExperimentResult(
            self.xc,
            submitted=len(self.submitted),
            committed_in_run=sum(1 for t in self.first_commit_us.values() if t <= end),
            committed=len(self.first_commit_us),
            latencies_ms=[us / 1_000 for us in self.latencies_us],
            blocks=len(self.blocks_seen),
            messages=sum(self.messages_by_type.values()),
            message_bytes=sum(self.bytes_by_type.values()),
            messages_by_type=dict(self.messages_by_type),
            bytes_by_type=dict(self.bytes_by_type),
            view_changes=self.stats["max-view"],
            simulated_s=self.now / 1_000_000,
            events=self.events,
            trace_digest=self.trace_digest(),
            violations=list(self.violations),
            stats=dict(self.stats),
        )


def run_experiment(config: ExperimentConfig) -> ExperimentResult:
    experiment = Experiment(config)
    experiment.run()
    return experiment.result()
