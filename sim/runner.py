"""Run one seeded scenario and summarise it; `tests/sim` runs blocks of seeds through this."""

from __future__ import annotations

from dataclasses import dataclass, field

from .cluster import Cluster
from .scenario import Scenario, make_scenario


@dataclass
class SimResult:
    seed: int
    n: int
    description: str
    trace_digest: str
    violations: list[str]
    converged_at_ms: int | None
    events: int
    height: int
    stats: dict[str, int] = field(default_factory=dict)
    heavy: bool = False
    real_ledger: bool = False
    storage_faults: bool = False

    @property
    def ok(self) -> bool:
        return not self.violations

    def reproduce(self) -> str:
        env = " SIM_HEAVY=1" if self.heavy else ""
        flag = " --heavy" if self.heavy else ""
        if self.real_ledger:
            env += " SIM_REAL_LEDGER=1"
            flag += " --real-ledger"
        if self.storage_faults:
            env += " SIM_STORAGE_FAULTS=1"
            flag += " --storage-faults"
        return (
            f"reproduce: SIM_SEED={self.seed} SIM_N={self.n}{env} "
            ".venv/bin/python -m pytest tests/sim/test_sim_seeds.py -k env -q "
            f"(or .venv/bin/python -m tests.sim --seed {self.seed} --n {self.n}{flag})"
        )

    def report(self) -> str:
        lines = [self.description, *self.violations, self.reproduce()]
        return "\n".join(lines)


def run_scenario(
    scenario: Scenario, heavy: bool = False, storage_faults: bool = False
) -> SimResult:
    if scenario.real_ledger:
        from .node_cluster import NodeCluster  # loads the node's ledger only when asked

        cluster: Cluster = NodeCluster(scenario)
    else:
        cluster = Cluster(scenario)
    cluster.run()
    stats = dict(cluster.stats)
    stats["messages"] = cluster.net.sent
    for m in cluster.honest:
        for key, value in cluster.replicas[m].counters.items():  # type: ignore[union-attr]
            stats["replica-" + key] = stats.get("replica-" + key, 0) + value
    return SimResult(
        scenario.seed,
        scenario.n,
        scenario.describe(),
        cluster.trace_digest(),
        cluster.violations,
        cluster.converged_at,
        cluster.events,
        max(cluster.ledgers[m].height for m in cluster.honest),
        stats,
        heavy,
        scenario.real_ledger,
        storage_faults,
    )


def run_seed(seed: int, n: int = 4, **kwargs: object) -> SimResult:
    heavy = bool(kwargs.get("heavy", False))
    storage_faults = bool(kwargs.get("storage_faults", False))
    scenario = make_scenario(seed, n, **kwargs)  # type: ignore[arg-type]
    return run_scenario(scenario, heavy, storage_faults)
