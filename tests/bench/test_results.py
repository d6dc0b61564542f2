"""Results folders from synthetic records: summary, files, report and compare."""

from __future__ import annotations

import builtins
import json
import math
from pathlib import Path
from typing import Any

import pytest

from ibledger.bench import results
from ibledger.bench.stats import TxRecord

CONFIG = {
    "title": "synthetic",
    "network": "fresh",
    "nodes": 4,
    "workload": "noop",
    "arrival": "constant",
    "duration": 20.0,
    "warmup": 0.0,
    "processes": 1,
    "clients": None,
    "rate": 100.0,
}


def _records(rate: int = 100, seconds: int = 20, fault_at: float | None = None) -> list[TxRecord]:
    """``rate`` tx/s, each committed 40 ms later; from ``fault_at`` for 2 s nothing commits
    until the end of that gap."""
    out = []
    for n in range(rate * seconds):
        t = n / rate
        committed = t + 0.04
        if fault_at is not None and fault_at <= t < fault_at + 2:
            committed = fault_at + 2.5
        out.append(TxRecord(t, t, committed))
    return out


def test_summary_of_a_steady_run() -> None:
    summary = results.summarize(_records(), 0.0, 20.0, 100.0, [])
    assert summary["valid"]
    assert summary["offered_tx_per_s"] == 100.0
    assert summary["committed_tx_per_s"] == 99.8  # the last 4 commits land after 20 s
    assert summary["latency"]["p50_ms"] == pytest.approx(40.0)
    assert len(summary["series"]) == 20


def test_recovery_is_filled_in_from_the_series() -> None:
    faults: list[dict[str, Any]] = [{"label": "kill-primary@10s", "struck_at": 10.0}]
    summary = results.summarize(_records(fault_at=10.0), 0.0, 20.0, 100.0, faults)
    (fault,) = summary["faults"]
    assert fault["pre_fault_tx_per_s"] == 99.6  # second 0 commits only 96 (40 ms latency)
    # Seconds 10 and 11 commit nothing; second 12 commits the backlog and keeps up: 2.0 s.
    assert fault["recovery_s"] == 2.0


def test_a_short_offer_is_invalid() -> None:
    # 100 tx/s due, but only the first 18 s of arrivals went out inside the window.
    records = [r if r.due < 18 else TxRecord(r.due, r.due + 3, r.due + 3.04) for r in _records()]
    summary = results.summarize(records, 0.0, 20.0, 100.0, [])
    assert not summary["valid"]
    assert summary["validity"].startswith("INVALID")


def test_files_report_and_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for out, fault in ((a, None), (b, 10.0)):
        records = _records(fault_at=fault)
        faults: list[dict[str, Any]] = (
            [] if fault is None else [{"label": "kill-primary@10s", "struck_at": fault}]
        )
        summary = results.summarize(records, 0.0, 20.0, 100.0, faults)
        results.write_run(out, CONFIG, summary, records, 0.0)
    run = json.loads((a / "run.json").read_text())
    assert run["config"]["title"] == "synthetic"
    assert all(v is None or not math.isnan(v) for v in run["summary"]["latency"].values())
    lines = (a / "txs.csv").read_text().splitlines()
    assert lines[0] == "due_s,submitted_s,committed_s,latency_ms,code,result"
    assert len(lines) == 2001
    assert len(results.read_latencies(a)) == 2000
    text, notes = results.report(b)
    assert "kill-primary@10s" in text and "2.0 s" in text
    if not notes:  # matplotlib present: the plots were written
        assert (b / "latency_cdf.png").stat().st_size > 0
        assert (b / "timeline.png").stat().st_size > 0
    table = results.compare(a, b)
    assert "p50 ms" in table and "fault 1 recovery s" in table
    with pytest.raises(FileNotFoundError):
        results.report(tmp_path)


def test_plots_degrade_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = _records(seconds=2)
    summary = results.summarize(records, 0.0, 2.0, 100.0, [])
    results.write_run(tmp_path, CONFIG | {"duration": 2.0}, summary, records, 0.0)
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert results.plot_run(tmp_path) == results.NO_PLOTS
    assert "matplotlib" in results.NO_PLOTS


def test_bench_refuses_bad_arguments_before_starting_anything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ibledger.cli.main import main

    for argv in (
        ["bench", "--rate", "0"],
        ["bench", "--clients", "2", "--processes", "3"],
        ["bench", "--fresh", "--network", "somewhere"],
        ["bench", "--sweep", "5:1:1"],
        ["bench", "--fault", "explode@3s"],
        ["bench", "--duration", "5", "--fault", "kill-primary@6s"],
        ["bench", "--sweep", "10,20", "--fault", "kill-primary@1s"],
    ):
        assert main(argv) == 1, argv
        assert "BAD_ARGUMENT" in capsys.readouterr().err
