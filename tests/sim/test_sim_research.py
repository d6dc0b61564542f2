"""`ibledger sim`, the research runs behind it, the latency models, the fault schedule parser and
the analytical PBFT latency: smoke runs at 4 and 16 replicas, determinism, exact formula values,
seeded sampling, and a fault schedule that forces a view change."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from ibledger.cli.main import main
from ibledger.sim.analysis import (
    analyse,
    batch_wait_ms,
    critical_path,
    eager_wait_ms,
    fixed_delay_latency_ms,
)
from ibledger.sim.experiment import ExperimentConfig, percentile, run_experiment
from ibledger.sim.faults import FaultError, ScheduledFault, parse_fault
from ibledger.sim.latency import (
    Fixed,
    LatencyError,
    LogNormal,
    Matrix,
    Uniform,
    parse_latency,
    parse_matrix,
    parse_regions,
)

MATRIX = """
# one-way delay in ms, row -> column
        east  west  south
east     0.5    40     90
west      40   0.5     60   # trailing comment
south     90    60    0.5
"""


def _sim_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["sim", "--json", *args]) == 0
    data: dict[str, object] = json.loads(capsys.readouterr().out)
    return data


# ---------------------------------------------------------------- the command


def test_sim_smoke_four_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--nodes", "4", "--duration", "5"]) == 0
    out = capsys.readouterr().out
    for text in ("committed", "latency ms: p50", "analytical", "per block", "wall s per"):
        assert text in out


def test_sim_smoke_sixteen_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    data = _sim_json(capsys, "--nodes", "16", "--duration", "2", "--rate", "50")
    assert data["nodes"] == 16 and data["violations"] == []
    assert data["committed"] == data["submitted"] > 0
    assert isinstance(data["messages_per_block"], float) and data["messages_per_block"] > 16


def test_sim_is_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("--nodes", "4", "--duration", "3", "--latency", "uniform:1:9", "--loss", "0.02")
    first = _sim_json(capsys, *args)
    second = _sim_json(capsys, *args)
    for wall in ("wall_s", "wall_s_per_simulated_s", "cpu_s", "cpu_s_per_simulated_s"):
        first.pop(wall)
        second.pop(wall)
    assert first == second
    third = _sim_json(capsys, *args, "--seed", "2")
    assert third["trace_digest"] != first["trace_digest"]


def test_sim_matrix_file_and_regions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "regions.txt"
    path.write_text(MATRIX)
    data = _sim_json(
        capsys,
        "--nodes",
        "4",
        "--duration",
        "2",
        "--latency",
        f"matrix:{path}",
        "--regions",
        "east:2,west:1,south:1",
        "--batch-timeout-ms",
        "0",
    )
    model = data["analytical_latency_ms"]
    assert isinstance(model, dict) and model["exact_delays"] is True
    assert data["violations"] == []


def test_sim_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--nodes", "65"]) != 0
    assert main(["sim", "--latency", "gamma:1"]) != 0
    assert main(["sim", "--fault", "crash:9@1"]) != 0
    assert main(["sim", "--regions", "east:4"]) != 0
    err = capsys.readouterr().err
    assert "invalid-argument" in err


def test_isolating_the_primary_forces_a_view_change() -> None:
    config = ExperimentConfig(
        n=4,
        duration_s=5,
        rate_tps=50,
        faults=(parse_fault("isolate-primary@1-3", 4),),
    )
    result = run_experiment(config)
    assert not result.violations
    assert result.view_changes >= 1
    assert result.committed == result.submitted
    quiet = run_experiment(ExperimentConfig(n=4, duration_s=5, rate_tps=50))
    assert quiet.view_changes == 0
    assert max(result.latencies_ms) > config.view_change_timeout_ms > max(quiet.latencies_ms)


def test_crash_and_restart_a_backup_keeps_committing() -> None:
    result = run_experiment(
        ExperimentConfig(n=4, duration_s=4, rate_tps=50, faults=(parse_fault("crash:3@1-2", 4),))
    )
    assert not result.violations and result.view_changes == 0
    assert result.committed == result.submitted


def test_fixed_delay_measurement_matches_the_model() -> None:
    """Zero processing time in the simulator, so the fixed-delay model is exact up to sampling."""
    config = ExperimentConfig(n=4, duration_s=5, rate_tps=20, batch_timeout_ms=0)
    result = run_experiment(config)
    expected = fixed_delay_latency_ms(5.0, 4)  # 3.75 + 15
    # Each request waits 15 ms (entry = primary) or 20 ms (forwarded): the model's mean lies
    # between, and every sample is one of the two.
    assert {round(v, 3) for v in result.latencies_ms} <= {15.0, 20.0}
    assert abs(sum(result.latencies_ms) / len(result.latencies_ms) - expected) < 1.0


@pytest.mark.parametrize("rate", [20, 200, 1000])
def test_eager_proposals_cut_the_batch_wait_and_match_their_model(rate: int) -> None:
    """The same code with eager_blocks = 1: a request waits only for the block in flight, so
    the measured mean follows the busy-pipeline model and is below the timer's at low load."""
    timer = run_experiment(ExperimentConfig(n=4, duration_s=5, rate_tps=rate, seed=3))
    eager = run_experiment(
        ExperimentConfig(n=4, duration_s=5, rate_tps=rate, seed=3, eager_blocks=1)
    )
    assert not eager.violations and eager.committed == eager.submitted
    mean = sum(eager.latencies_ms) / len(eager.latencies_ms)
    model = eager.config.analysis()
    assert model.exact
    assert abs(mean - model.latency_ms) < 0.05 * model.latency_ms, (mean, model)
    assert mean < sum(timer.latencies_ms) / len(timer.latencies_ms)


def test_eager_wait_model_limits() -> None:
    assert eager_wait_ms(15.0, 45.0, 0) == 0.0  # a lone request never waits
    # Saturated: the pipeline is always full, a request waits half a block on average ...
    assert eager_wait_ms(15.0, 45.0, 1e6) == pytest.approx(7.5)
    # ... or the batch timeout if that is shorter.
    assert eager_wait_ms(15.0, 5.0, 1e6) == pytest.approx(5.0)


# ---------------------------------------------------------------- the analytical model


def test_fixed_delay_formula_exact_values() -> None:
    assert fixed_delay_latency_ms(10.0, 4) == 37.5  # (1 - 1/4) 10 + 3 * 10
    assert fixed_delay_latency_ms(10.0, 64) == pytest.approx(10 * 63 / 64 + 30)
    # one tick of 10 ms: a lone request waits half a tick on average
    assert fixed_delay_latency_ms(10.0, 4, tick_ms=10, batch_timeout_ticks=1) == 42.5


def test_batch_wait_exact_values() -> None:
    assert batch_wait_ms(10, 0, 64, 1000) == 0.0
    assert batch_wait_ms(10, 5, 64, 0) == 45.0  # b - p/2 for a lone request
    # E[tau] = 45, E[tau^2] = 40^2 + 40*10 + 100/3 = 2033.33; lambda = 0.1/ms
    assert batch_wait_ms(10, 5, 64, 100) == pytest.approx((45 + 0.1 * (6100 / 3) / 2) / 5.5)
    # batches fill before the timer: (S - 1) / (2 lambda)
    assert batch_wait_ms(10, 5, 4, 1000) == pytest.approx(1.5)


def test_critical_path_fixed_and_matrix() -> None:
    d = [[0.0 if i == j else 10.0 for j in range(4)] for i in range(4)]
    assert critical_path(d, 0) == [30.0, 30.0, 30.0, 30.0]
    matrix = parse_matrix(MATRIX)
    regions = (0, 0, 1, 2)
    delays = [[matrix.delays_ms[regions[i]][regions[j]] for j in range(4)] for i in range(4)]
    # n = 4, q = 3; r0, r1 east, r2 west, r3 south. PRE-PREPARE reaches r1 at 0.5, r2 at 40,
    # r3 at 90. Prepared (own PREPARE and one other; the primary needs two): r1 at 80 (r2's,
    # 40 + 40), r2 at 40.5 (r1's), r3 at 90.5 (r1's), r0 at 80 (r1's at 1, r2's at 80).
    # Committed (own COMMIT and two others, or three others): r0 and r1 at 80.5 (r1 or r0 and
    # r2's 40.5 + 40), r2 at 120 (r0's and r1's 80 + 40), r3 at 170 (r0's 80 + 90).
    path = critical_path(delays, 0)
    assert path[0] == 80.5
    assert path[1] == 80.5
    assert path[2] == 120.0
    assert path[3] == 170.0
    model = analyse(
        delays,
        primary=0,
        tick_ms=10,
        batch_timeout_ticks=0,
        batch_size_max=64,
        rate_tps=10,
        exact=True,
    )
    assert model.forward_ms == pytest.approx((0.5 + 40 + 90) / 4)
    assert model.agreement_ms == pytest.approx(sum(path) / 4)


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50 and percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100 and percentile([], 0.5) == 0


# ---------------------------------------------------------------- latency models


def test_parse_latency_models() -> None:
    assert parse_latency("fixed:2.5") == Fixed(2.5)
    assert parse_latency("uniform:1:9") == Uniform(1, 9)
    assert parse_latency("lognormal:1.6:0.5") == LogNormal(1.6, 0.5)
    matrix = parse_latency("matrix:x.txt", MATRIX)
    assert isinstance(matrix, Matrix) and matrix.regions == ("east", "west", "south")
    assert matrix.delays_ms[0] == (0.5, 40.0, 90.0)
    for bad in ("fixed", "fixed:-1", "uniform:9:1", "lognormal:a:b", "matrix:f", "poisson:3"):
        with pytest.raises(LatencyError):
            parse_latency(bad)


def test_parse_matrix_rejects_malformed_tables() -> None:
    for bad in (
        "",
        "a b\na 1 2",  # no row for b
        "a b\na 1\nb 1 2",  # short row
        "a b\na 1 2\nc 1 2\nb 1 2",  # unknown region
        "a a\na 1 1",  # header repeats
        "a b\na 1 x\nb 1 2",  # not a number
    ):
        with pytest.raises(LatencyError):
            parse_matrix(bad)


def test_parse_regions() -> None:
    names = ("east", "west", "south")
    assert parse_regions(None, 5, names) == (0, 1, 2, 0, 1)
    assert parse_regions("east:2,south:2", 4, names) == (0, 0, 2, 2)
    assert parse_regions("west,west,east,south", 4, names) == (1, 1, 0, 2)
    for bad in ("east:3", "north:4", "east:x,west:1"):
        with pytest.raises(LatencyError):
            parse_regions(bad, 4, names)


def test_sampling_is_seeded_and_in_range() -> None:
    uniform = Uniform(1.0, 9.0)
    lognormal = LogNormal(1.6, 0.5)
    first = [uniform.sample_us(random.Random(7), 0, 0) for _ in range(3)]
    assert first == [uniform.sample_us(random.Random(7), 0, 0) for _ in range(3)]
    rng = random.Random(1)
    samples = [uniform.sample_us(rng, 0, 0) for _ in range(2000)]
    assert all(1_000 <= s <= 9_000 for s in samples)
    assert abs(sum(samples) / len(samples) - 5_000) < 200
    rng = random.Random(1)
    logs = sorted(lognormal.sample_us(rng, 0, 0) for _ in range(4001))
    assert abs(logs[2000] - 4_953) < 250  # median e^1.6 ms
    assert lognormal.mean_ms(0, 0) == pytest.approx(2.718281828**1.725, rel=1e-6)
    assert Fixed(0.25).sample_us(rng, 0, 0) == 250
    matrix = parse_matrix(MATRIX)
    assert matrix.sample_us(rng, 0, 2) == 90_000 and matrix.sample_us(rng, 2, 2) == 500


# ---------------------------------------------------------------- fault schedules


def test_parse_faults() -> None:
    assert parse_fault("crash:r2@1.5", 4) == ScheduledFault("crash", 1_500_000, None, ((2,),))
    assert parse_fault("crash:1@1-3s", 4) == ScheduledFault("crash", 1_000_000, 3_000_000, ((1,),))
    part = parse_fault("partition:0,1|2,3@2-4", 4)
    assert part.groups == ((0, 1), (2, 3)) and part.end_us == 4_000_000
    assert parse_fault("isolate-primary@3", 4) == ScheduledFault("isolate-primary", 3_000_000, None)
    assert parse_fault("isolate:r3@1-2", 4).groups == ((3,),)
    assert part.describe() == "partition:r0,r1|r2,r3@2-4"
    for bad in (
        "crash:1",
        "crash:4@1",
        "crash:1@3-2",
        "partition:0,1@1-2",
        "partition:0,1|1,2@1-2",
        "isolate-primary:1@2",
        "flood@1",
        "crash:1@soon",
    ):
        with pytest.raises(FaultError):
            parse_fault(bad, 4)
