"""The standard suite's summary (bench/suite.py): medians over runs, the targets judged against
the raw limits measured in the same run, and the raw limits themselves (bench/yardstick.py)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import suite, yardstick

LIMITS = {
    "before": {
        "ed25519_verify_per_s_one_thread": 20_000.0,
        "leveldb_synced_batches_per_s": 900.0,
        "grpc_aio_round_trip_us": 210.0,
    },
    "after": {
        "ed25519_verify_per_s_one_thread": 16_000.0,
        "leveldb_synced_batches_per_s": 850.0,
        "grpc_aio_round_trip_us": 230.0,
    },
}


def run(saturation: float | None, recovery: float | None, p50: float) -> dict[str, suite.Figures]:
    return {
        "closed-1": {"committed tx/s": 70.0, "p50 ms": p50, "p99 ms": 30.0},
        "sweep": {"saturation tx/s": saturation, "p99 ms at 70 %": 200.0},
        "kill-primary": {"committed tx/s": 190.0, "recovery s": recovery},
    }


def test_medians_and_targets_come_from_the_runs_and_the_lower_verify_rate() -> None:
    runs = [run(2_900.0, 1.5, 12.0), run(3_100.0, 2.5, 14.0), run(2_700.0, 1.8, 13.0)]
    summary = suite.summarize(runs, LIMITS, cores=2)
    assert summary["medians"]["closed-1"]["p50 ms"] == 13.0
    assert summary["medians"]["sweep"]["saturation tx/s"] == 2_900.0
    # The ceiling uses the slower of the two verify measurements: 16,000 x 2 / 4.
    assert summary["verification_ceiling_tx_per_s"] == 8_000.0
    saturation, recovery = summary["targets"]
    assert saturation["measured"] == round(2_900 / 8_000, 3) and saturation["met"]
    assert recovery["measured"] == 1.8 and recovery["met"]


def test_a_run_without_a_figure_counts_as_the_worst() -> None:
    runs = [run(None, None, 12.0), run(None, 1.0, 12.0), run(2_000.0, None, 12.0)]
    summary = suite.summarize(runs, LIMITS, cores=2)
    assert summary["medians"]["sweep"]["saturation tx/s"] is None
    assert summary["medians"]["kill-primary"]["recovery s"] is None
    assert not any(target["met"] for target in summary["targets"])


def test_a_slow_saturation_misses_its_target() -> None:
    summary = suite.summarize([run(2_000.0, 1.0, 12.0)], LIMITS, cores=2)
    assert summary["targets"][0]["measured"] == 0.25 and not summary["targets"][0]["met"]
    assert "lower bound" not in summary["targets"][0]["target"]


def kept_up_at_top() -> dict[str, suite.Figures]:
    figures = run(1_400.0, 1.0, 12.0)
    figures["sweep"]["saturation at the sweep's top"] = 1.0
    return figures


def test_a_sweep_that_kept_up_at_its_top_gives_only_a_lower_bound() -> None:
    summary = suite.summarize([kept_up_at_top()], LIMITS, cores=2)
    assert "lower bound" in summary["targets"][0]["target"]


def test_one_run_of_three_at_the_top_leaves_the_median_a_measurement() -> None:
    below = run(800.0, 1.0, 12.0)
    below["sweep"]["saturation at the sweep's top"] = 0.0
    summary = suite.summarize([below, kept_up_at_top(), below], LIMITS, cores=2)
    assert summary["medians"]["sweep"]["saturation tx/s"] == 800.0
    assert "lower bound" not in summary["targets"][0]["target"]


def test_the_table_names_every_figure_and_each_run() -> None:
    summary = suite.summarize([run(2_900.0, 1.5, 12.0), run(3_100.0, 2.5, 14.0)], LIMITS, 2)
    table = suite.render(summary)
    assert "| closed-1 | p50 ms | 13.00 | 12.00, 14.00 |" in table
    assert "| sweep | saturation tx/s | 3,000.00 | 2,900.00, 3,100.00 |" in table
    assert "20,000.00 / 16,000.00 per s on one thread" in table


def test_step_figures_read_a_run_and_a_sweep(tmp_path: Path) -> None:
    (tmp_path / "kill").mkdir()
    (tmp_path / "kill" / "run.json").write_text(
        json.dumps(
            {
                "summary": {
                    "offered_tx_per_s": 200.0,
                    "committed_tx_per_s": 195.0,
                    "latency": {
                        "p50_ms": 20.0,
                        "p90_ms": 40.0,
                        "p99_ms": 80.0,
                        "p99.9_ms": 90.0,
                        "max_ms": 95.0,
                    },
                    "faults": [{"recovery_s": 1.25}],
                }
            }
        )
    )
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "sweep.json").write_text(
        json.dumps(
            {
                "saturation_tx_per_s": 550.0,
                "at_70_percent": {"p99_ms": 120.0},
                "points": [{"requested_tx_per_s": 400.0}, {"requested_tx_per_s": 550.0}],
            }
        )
    )
    assert suite.step_figures(tmp_path / "kill") == {
        "committed tx/s": 195.0,
        "p50 ms": 20.0,
        "p99 ms": 80.0,
        "recovery s": 1.25,
    }
    assert suite.step_figures(tmp_path / "sweep") == {
        "saturation tx/s": 550.0,
        "saturation at the sweep's top": 1.0,
        "p99 ms at 70 %": 120.0,
    }
    assert suite.step_figures(tmp_path / "missing") == {}


def test_the_raw_limits_are_measured() -> None:
    figures = yardstick.measure(verify_count=200, writes=5, calls=20)
    assert set(figures) == {
        "ed25519_verify_per_s_one_thread",
        "leveldb_synced_batches_per_s",
        "grpc_aio_round_trip_us",
    }
    assert all(value > 0 for value in figures.values())
