"""A short real run: `ibledger bench --fresh --nodes 4 --duration 3 --clients 4`.

The deadline only bounds a hang; no figure is checked against a speed, only that the run
measured something, wrote its folder and stopped its network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_closed_loop_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ibledger.cli.main",
            "bench",
            "--fresh",
            "--nodes",
            "4",
            "--duration",
            "3",
            "--warmup",
            "1",
            "--clients",
            "4",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=os.environ.copy(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    printed = json.loads(result.stdout)
    summary = printed["summary"]
    assert summary["valid"]
    assert summary["committed_tx_per_s"] > 0
    assert summary["latency"]["count"] > 0
    assert summary["latency"]["p50_ms"] <= summary["latency"]["p99_ms"]
    for name in ("run.json", "txs.csv", "series.csv"):
        assert (out / name).is_file(), name
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["clients"] == 4 and run["config"]["nodes"] == 4
    # The nodes' phase histograms filled during the window: every phase of the path was seen,
    # with percentiles in order (read from the buckets the nodes export).
    phases = run["config"]["phases"]["phases"]
    for name in (
        "admitted_proposed",
        "proposed_prepared",
        "prepared_committed",
        "committed_executed",
        "executed_notified",
        "commit_latency",
        "block_execute",
        "block_write",
    ):
        row = phases[name]
        assert row["count"] > 0, name
        assert 0 <= row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"], (name, row)
    # The fresh network was stopped and removed; its node logs were kept with the results.
    assert sorted(p.name for p in (out / "logs").iterdir()) == [f"node{i}.log" for i in range(4)]

    report = subprocess.run(
        [sys.executable, "-m", "ibledger.cli.main", "bench", "report", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert report.returncode == 0, report.stderr
    assert "committed" in report.stdout
