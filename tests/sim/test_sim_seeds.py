"""The seeded fault swarm (docs/testing.md N7, M2, M3): a fixed CI block of seeds at n = 4 and n = 7
mixing every network fault, crash mode and Byzantine mode, plus every regression seed; safety is
checked after every event and liveness after healing.

Opt-in exploration:
  SIM_SEED=<seed> [SIM_N=4] [SIM_HEAVY=1]   run one seed (what every failure prints)
  SIM_SEEDS=<count> [SIM_SEED_START=<first>] [SIM_N=4|7] [SIM_HEAVY=1]   explore many more
SIM_HEAVY=1 triples the fault phase, the number of faults and the load. SIM_REAL_LEDGER=1
executes into the node's ledger instead of the stand-in, SIM_STORAGE_FAULTS=1 adds storage
faults to it (tests/sim/test_sim_real_ledger.py).
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from ibledger.node.crypto import SUITE_NAMES
from ibledger.sim.byzantine import MODES
from ibledger.sim.scenario import FAULT_KINDS, make_scenario

from .runner import SimResult, regression_seeds, run_seed

CI_SEEDS = {4: range(1, 1201), 7: range(1, 401)}
LARGE_BODY_SEEDS = {4: range(1, 121), 7: range(1, 41)}
BLOCK = 50


def _check(results: list[SimResult]) -> None:
    failures = [r for r in results if not r.ok]
    assert not failures, "\n\n".join(r.report() for r in failures)


def _blocks() -> list[tuple[int, int, int]]:
    out = []
    for n, seeds in CI_SEEDS.items():
        for start in range(seeds.start, seeds.stop, BLOCK):
            out.append((n, start, min(start + BLOCK, seeds.stop)))
    return out


@pytest.mark.parametrize(("n", "first", "stop"), _blocks(), ids=lambda v: str(v))
def test_ci_seed_block(n: int, first: int, stop: int) -> None:
    """0 safety violations and 0 non-converging runs over the fixed block."""
    _check([run_seed(seed, n) for seed in range(first, stop)])


REAL_SIGNATURE_SEEDS = range(1, 13)


@pytest.mark.parametrize("suite", SUITE_NAMES)
def test_ci_seeds_with_each_suites_real_signatures(suite: str) -> None:
    """A representative slice of the CI block (n = 4, every fault and Byzantine mode its seeds
    draw) signed by the node's own signer and verifier for each crypto suite; the full block
    uses the keyed hash, since the core's behaviour does not depend on the signature scheme and
    SM2 verification would make the block ten times slower."""
    _check([run_seed(seed, 4, suite=suite) for seed in REAL_SIGNATURE_SEEDS])


@pytest.mark.parametrize(
    ("n", "first", "stop"),
    [(n, s.start, s.stop) for n, s in LARGE_BODY_SEEDS.items()],
    ids=lambda v: str(v),
)
def test_large_bodies_through_view_changes(n: int, first: int, stop: int) -> None:
    """Blocks of 16-60 KiB requests prepared above the stable checkpoint while primaries are
    isolated or crash: view changes carry digests only and fetch the bodies, every seed stays
    safe and converges, and the block carries the view changes it was built to provoke."""
    results = [run_seed(seed, n, large_bodies=True) for seed in range(first, stop)]
    _check(results)
    changed = sum(1 for r in results if r.stats.get("view-changed", 0) > 0)
    fetched = sum(r.stats.get("replica-block-bodies-received", 0) for r in results)
    assert changed >= len(results) // 2, (changed, len(results))
    assert fetched > 0


EXECUTION_LAG_SEEDS = {4: range(1, 201), 7: range(1, 61)}


@pytest.mark.parametrize(
    ("n", "first", "stop"),
    [(n, s.start, s.stop) for n, s in EXECUTION_LAG_SEEDS.items()],
    ids=lambda v: str(v),
)
def test_execution_lagging_behind_consensus(n: int, first: int, stop: int) -> None:
    """The node's executor applies committed blocks after consensus has moved on
    (node/runtime.py): with blocks applied up to 400 ms late, roots reported late, stable
    certificates handed out behind their blocks and crashes losing what was not applied, every
    seed stays safe and converges."""
    results = [run_seed(seed, n, execution_lag=True) for seed in range(first, stop)]
    _check(results)
    assert sum(r.stats.get("executed-late", 0) for r in results) > 0
    # Crashes caught executors with work queued: the restarted replicas recovered it.
    assert sum(r.stats.get("executor-items-lost", 0) for r in results) > 0


def test_ci_block_mixes_every_fault_and_byzantine_mode() -> None:
    """The fixed block is only meaningful if it covers the whole fault menu at both sizes."""
    for n, seeds in CI_SEEDS.items():
        modes: Counter[str] = Counter()
        kinds: Counter[str] = Counter()
        for seed in seeds:
            sc = make_scenario(seed, n)
            modes.update(sc.byzantine.values())
            kinds.update(f.kind for f in sc.faults)
            if sc.profile.loss:
                kinds["loss"] += 1
            if sc.profile.duplicate:
                kinds["duplicate"] += 1
        assert set(modes) == set(MODES), (n, modes)
        assert set(FAULT_KINDS) | {"loss", "duplicate"} <= set(kinds), (n, kinds)
        assert min(modes.values()) >= 5, (n, modes)


@pytest.mark.parametrize(("seed", "n", "heavy"), regression_seeds() or [(1, 4, False)])
def test_regression_seed(seed: int, n: int, heavy: bool) -> None:
    """Every seed that once exposed a bug (regression_seeds.txt)."""
    _check([run_seed(seed, n, heavy=heavy)])


def _ledger_options() -> dict[str, bool]:
    storage_faults = os.environ.get("SIM_STORAGE_FAULTS") == "1"
    real_ledger = storage_faults or os.environ.get("SIM_REAL_LEDGER") == "1"
    return {"real_ledger": real_ledger, "storage_faults": storage_faults}


@pytest.mark.skipif("SIM_SEED" not in os.environ, reason="set SIM_SEED to replay one seed")
def test_env_seed() -> None:
    seed = int(os.environ["SIM_SEED"])
    n = int(os.environ.get("SIM_N", "4"))
    result = run_seed(seed, n, heavy=os.environ.get("SIM_HEAVY") == "1", **_ledger_options())
    print(result.description, result.trace_digest, result.stats)
    _check([result])


@pytest.mark.skipif("SIM_SEEDS" not in os.environ, reason="set SIM_SEEDS to explore")
@pytest.mark.timeout(0)
def test_env_many_seeds() -> None:
    count = int(os.environ["SIM_SEEDS"])
    start = int(os.environ.get("SIM_SEED_START", "1"))
    sizes = [int(os.environ["SIM_N"])] if "SIM_N" in os.environ else [4, 7]
    began = time.process_time()
    heavy = os.environ.get("SIM_HEAVY") == "1"
    options = _ledger_options()
    results = [
        run_seed(seed, n, heavy=heavy, **options)
        for n in sizes
        for seed in range(start, start + count)
    ]
    print(f"{len(results)} runs in {time.process_time() - began:.1f}s CPU")
    _check(results)
