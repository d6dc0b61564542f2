"""Seeded scenario generation: one integer decides configuration, network, faults and clients."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ibledger.consensus import ReplicaConfig, sha256
from ibledger.node.crypto import get_suite

from .byzantine import MODES
from .ledger import make_request
from .network import NetworkProfile

# Simulated time 0 on the replicas' clocks (block times are this plus simulated time and skew).
EPOCH_MS = 1_700_000_000_000

FAULT_KINDS = (
    "partition",  # symmetric split into two groups
    "oneway",  # asymmetric: one replica cannot receive (or cannot send)
    "isolate-primary",
    "clog",  # a few links get a large extra delay
    "swizzle",  # clog a node's links one by one, release in another order
    "crash",
    "crash-mid-drain",  # crash between two effects of one returned list
)
# With the real ledger only (`storage_faults`): the replica's next storage write fails.
STORAGE_FAULT_KINDS = ("fail-write",)


@dataclass(frozen=True, slots=True)
class Fault:
    at_ms: int
    kind: str
    duration_ms: int
    targets: tuple[str, ...]


@dataclass(slots=True)
class Scenario:
    seed: int
    n: int
    config: ReplicaConfig
    profile: NetworkProfile
    byzantine: dict[str, str]
    skews_ms: dict[str, int]
    faults: list[Fault]
    requests: list[tuple[int, int, bytes]]  # (time, target index, request)
    fault_ms: int
    liveness_budget_ms: int = 60_000
    tick_ms: int = 10
    client_retry_ms: int = 1_500
    ed25519: bool = False
    suite: str | None = None  # real signatures from this node crypto suite (e.g. "sm2-sm3")
    notes: list[str] = field(default_factory=list)
    # Execute into the node's ledger and contracts (`node_ledger`) instead of `SimLedger`.
    real_ledger: bool = False
    # The executor applies each committed block up to this long after consensus hands it over
    # (as the node's runtime does, overlapping execution with consensus); 0 applies it at once.
    execution_lag_ms: int = 0

    def describe(self) -> str:
        c = self.config
        byz = ",".join(f"{k}:{v}" for k, v in sorted(self.byzantine.items())) or "none"
        kinds = ",".join(sorted({f.kind for f in self.faults})) or "none"
        return (
            f"seed={self.seed} n={self.n} batch={c.batch_size_max}/{c.batch_timeout_ticks}t "
            f"K={c.checkpoint_interval} L={c.watermark_window} "
            f"vc_timeout={c.view_change_timeout_ticks}t net=[{self.profile.describe()}] "
            f"byzantine=[{byz}] faults=[{kinds}] requests={len(self.requests)}"
            + (" ledger=node" if self.real_ledger else "")
            + (f" execution_lag={self.execution_lag_ms}ms" if self.execution_lag_ms else "")
        )


def make_scenario(
    seed: int,
    n: int = 4,
    *,
    byzantine: dict[str, str] | None = None,
    faults: bool = True,
    profile: NetworkProfile | None = None,
    requests: int | None = None,
    ed25519: bool = False,
    heavy: bool = False,
    large_bodies: bool = False,
    suite: str | None = None,
    real_ledger: bool = False,
    storage_faults: bool = False,
    execution_lag: bool = False,
) -> Scenario:
    """A scenario from one seed; `heavy` triples the fault phase, the faults and the load.

    `large_bodies` pads requests to 16-60 KiB and adds primary isolations and crashes, so that
    view changes happen while large blocks are prepared above the stable checkpoint (the
    padding and the extra faults come from a second random stream: the scenario is otherwise
    the same as without the flag).

    `real_ledger` executes into the node's ledger (`node_ledger`): the clients submit signed
    transactions instead of tagged stand-in requests (same times, targets and count), and a
    crash is the machine losing power (unsynced writes lost). `storage_faults` adds, from a
    third random stream, one to three more crashes and one failed storage write.
    `execution_lag` applies committed blocks up to 5-400 ms after they commit (drawn from a
    fourth stream), as the node's overlapped executor does, crashes losing what was not applied."""
    if storage_faults and not real_ledger:
        raise ValueError("storage faults need the real ledger (real_ledger=True)")
    if large_bodies and real_ledger:
        raise ValueError("large bodies exceed the node's envelope size limit: not with real_ledger")
    rng = random.Random(seed)
    members = tuple(f"r{i}" for i in range(n))
    f = (n - 1) // 3
    k = rng.choice([2, 3, 4, 5])
    base_timeout = rng.choice([25, 40, 60])
    config = ReplicaConfig(
        members,
        batch_size_max=rng.choice([1, 2, 3, 5, 8]),
        batch_timeout_ticks=rng.choice([0, 1, 2, 4]),
        checkpoint_interval=k,
        watermark_window=k * rng.choice([2, 3, 4]),
        view_change_timeout_ticks=base_timeout,
        view_change_timeout_max_ticks=base_timeout * 8,
        status_interval_ticks=rng.choice([4, 8, 12]),
        retransmit_ticks=rng.choice([4, 8, 12]),
        fetch_retry_ticks=rng.choice([10, 20]),
        timestamp_skew_ms=2_000,
        pending_requests_max=2_000,
        future_messages_max=64 * n,
        proofs_per_status_max=16,
        # With a node suite the run hashes like a chain of that suite (SM3 on sm2-sm3); the
        # default stays SHA-256. No draw from `rng`, so the scenario is the same either way.
        hash_fn=get_suite(suite).hash if suite is not None else sha256,
    )
    if profile is None:
        profile = NetworkProfile(
            rng.choice(["uniform", "exponential", "bimodal"]),
            rng.choice([1, 3, 8, 20, 40]),
            rng.choice([0.0, 0.0, 0.02, 0.05, 0.1, 0.2, 0.3]) if faults else 0.0,
            rng.choice([0.0, 0.0, 0.05, 0.2, 0.4]) if faults else 0.0,
        )
    if byzantine is None:
        byzantine = {}
        if faults and f >= 1 and rng.random() < 0.75:
            count = rng.randint(1, f)
            pool = list(members)
            chosen: list[str] = []
            if rng.random() < 0.5:
                chosen.append(members[0])  # the first primary
                pool.remove(members[0])
            rng.shuffle(pool)
            chosen.extend(pool[: count - len(chosen)])
            for m in chosen:
                byzantine[m] = rng.choice(MODES)
    skews = {
        m: rng.randint(-config.timestamp_skew_ms // 4, config.timestamp_skew_ms // 4)
        for m in members
    }
    fault_ms = rng.choice([2_000, 3_000, 4_000]) * (3 if heavy else 1)
    fault_list: list[Fault] = []
    if faults:
        for _ in range(rng.randint(0, 18 if heavy else 6)):
            kind = rng.choice(FAULT_KINDS)
            at = rng.randrange(fault_ms)
            duration = rng.randint(100, 1_500)
            if kind in ("partition",):
                group = rng.sample(members, rng.randint(1, n - 1))
                targets = tuple(sorted(group))
            elif kind in ("crash", "crash-mid-drain"):
                targets = (rng.choice(members),)
            elif kind == "clog":
                targets = tuple(rng.sample(members, 2))
            elif kind == "isolate-primary":
                targets = ()
            else:
                targets = (rng.choice(members),)
            fault_list.append(Fault(at, kind, duration, targets))
        fault_list.sort(key=lambda x: (x.at_ms, x.kind))
    count = requests if requests is not None else rng.randint(10, 40) * (3 if heavy else 1)
    reqs = [
        (
            rng.randrange(int(fault_ms * 0.9)),
            rng.randrange(n),
            make_request(c % 4, c, rng.randint(0, 64)),
        )
        for c in range(count)
    ]
    if large_bodies:
        extra = random.Random(f"large-bodies:{seed}:{n}")
        reqs = [
            (at, target, make_request(c % 4, c, extra.randint(16 * 1024, 60 * 1024)))
            for c, (at, target, _r) in enumerate(reqs)
        ]
        for _ in range(extra.randint(1, 3)):
            kind = extra.choice(["isolate-primary", "crash"])
            at = extra.randrange(fault_ms)
            targets = () if kind == "isolate-primary" else ("r0",)
            fault_list.append(Fault(at, kind, extra.randint(300, 1_500), targets))
        fault_list.sort(key=lambda x: (x.at_ms, x.kind))
    if real_ledger:
        from .node_ledger import client_request  # the node's transaction format

        chain_suite = suite or "ed25519-sha256"
        reqs = [
            (at, target, client_request(chain_suite, c % 4, c, EPOCH_MS))
            for c, (at, target, _r) in enumerate(reqs)
        ]
    if storage_faults:
        storage = random.Random(f"storage-faults:{seed}:{n}")
        for _ in range(storage.randint(1, 3)):
            at = storage.randrange(fault_ms)
            fault_list.append(
                Fault(at, "crash", storage.randint(100, 1_500), (storage.choice(members),))
            )
        at = storage.randrange(fault_ms)
        fault_list.append(
            Fault(at, "fail-write", storage.randint(100, 1_500), (storage.choice(members),))
        )
        fault_list.sort(key=lambda x: (x.at_ms, x.kind))
    reqs.sort(key=lambda r: r[0])
    return Scenario(
        seed,
        n,
        config,
        profile,
        byzantine,
        skews,
        fault_list,
        reqs,
        fault_ms,
        ed25519=ed25519,
        suite=suite,
        real_ledger=real_ledger,
        execution_lag_ms=(
            random.Random(f"execution-lag:{seed}:{n}").choice([5, 20, 60, 150, 400])
            if execution_lag
            else 0
        ),
    )
