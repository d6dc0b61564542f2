"""The bench statistics on synthetic records: exact values, no network, no clock."""

from __future__ import annotations

import math

import pytest

from ibledger.bench import stats
from ibledger.bench.engine import FaultSpec
from ibledger.bench.stats import SweepPoint, TxRecord


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100, shuffled order must not matter
    values.reverse()
    assert stats.percentile(values, 50) == 50.0
    assert stats.percentile(values, 90) == 90.0
    assert stats.percentile(values, 99) == 99.0
    assert stats.percentile(values, 99.9) == 100.0
    assert stats.percentile(values, 100) == 100.0
    assert stats.percentile([7.0], 50) == 7.0
    assert stats.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert stats.percentile([1.0, 2.0, 3.0, 4.0], 51) == 3.0
    assert math.isnan(stats.percentile([], 50))
    with pytest.raises(ValueError):
        stats.percentile([1.0], 0)


def test_latency_summary() -> None:
    summary = stats.latency_summary([10.0, 20.0, 30.0, 40.0])
    assert summary == {
        "count": 4.0,
        "mean_ms": 25.0,
        "p50_ms": 20.0,
        "p90_ms": 40.0,
        "p99_ms": 40.0,
        "p99.9_ms": 40.0,
        "max_ms": 40.0,
    }


def _records() -> list[TxRecord]:
    """Window [10, 13): one before it, four in it (one rejected, one never committed), one
    submitted in it and committed after it."""
    nan = math.nan
    return [
        TxRecord(9.5, 9.5, 10.2),  # warm-up: not counted, its commit is
        TxRecord(10.0, 10.0, 10.05),  # 50 ms
        TxRecord(10.5, 10.5, 11.7),  # 1200 ms
        TxRecord(11.0, 11.0, nan, "MEMPOOL_FULL"),
        TxRecord(12.0, 12.0, nan),  # admitted, lost
        TxRecord(12.9, 12.9, 13.4),  # 500 ms, committed after the window
    ]


def test_rates_and_window() -> None:
    records = _records()
    rates = stats.rates(records, 10.0, 13.0)
    assert rates == {
        "offered_tx_per_s": 5 / 3,
        "admitted_tx_per_s": 4 / 3,
        "committed_tx_per_s": 3 / 3,  # 10.05, 10.2, 11.7
        "submitted": 5.0,
        "rejected": 1.0,
        "uncommitted": 1.0,
    }
    window = stats.in_window(records, 10.0, 13.0)
    assert sorted(round(v, 6) for v in stats.latencies_ms(window)) == [50.0, 500.0, 1200.0]


def test_per_second_series() -> None:
    rows = stats.per_second(_records(), 10.0, 13.0)
    assert [(r["second"], r["offered"], r["committed"]) for r in rows] == [
        (0.0, 2.0, 2.0),
        (1.0, 1.0, 1.0),
        (2.0, 2.0, 0.0),
    ]
    assert round(rows[0]["p50_ms"], 6) == 50.0  # of 50 and 700 ms (the warm-up one)
    assert round(rows[0]["p99_ms"], 6) == 700.0
    assert round(rows[1]["p50_ms"], 6) == 1200.0
    assert math.isnan(rows[2]["p50_ms"])


def test_offered_load_validity() -> None:
    assert stats.offered_validity(1000, 960)[0]  # 4 % short: within the tolerance
    assert stats.offered_validity(1000, 950)[0]  # exactly 5 % short
    valid, reason = stats.offered_validity(1000, 949)
    assert not valid
    assert reason.startswith("INVALID") and "--processes" in reason
    assert stats.offered_validity(None, 12.5) == (True, "closed loop")
    assert not stats.offered_validity(None, 0)[0]
    with pytest.raises(ValueError):
        stats.offered_validity(0, 1)


def test_saturation_is_the_highest_rate_that_kept_up() -> None:
    points = [
        SweepPoint(100, 100, 100, True),
        SweepPoint(200, 200, 197, True),  # 98.5 %: kept up
        SweepPoint(300, 300, 293, True),  # 97.7 %: fell behind
        SweepPoint(400, 400, 400, False),  # kept up but the offer was invalid
        SweepPoint(500, 500, 350, True),
    ]
    assert stats.saturation(points) == 200
    assert stats.saturation([SweepPoint(100, 100, 50, True)]) is None
    assert stats.saturation([]) is None
    assert stats.saturation([SweepPoint(100, 100, 98, True)]) == 100  # exactly 98 %


def test_parse_rates() -> None:
    assert stats.parse_rates("100,250, 400") == [100.0, 250.0, 400.0]
    assert stats.parse_rates("100:500:100") == [100.0, 200.0, 300.0, 400.0, 500.0]
    assert stats.parse_rates("100:450:100") == [100.0, 200.0, 300.0, 400.0]
    for bad in ("", "0,100", "100:50:10", "1:2", "a,b"):
        with pytest.raises(ValueError):
            stats.parse_rates(bad)


def test_recovery_after_a_dip() -> None:
    # 100/s for 10 s, the fault at 10.3 s, nothing for 2 s, 50 then back at 14 s.
    counts = [100.0] * 10 + [20.0, 0.0, 0.0, 50.0, 95.0, 100.0, 100.0]
    assert stats.pre_fault_level(counts, 10.3) == 100.0
    assert stats.recovery_seconds(counts, 10.3) == pytest.approx(14 - 10.3)


def test_recovery_needs_the_level_to_hold() -> None:
    # A lone good second (13) does not count: it falls back at 14; back for good at 15.
    counts = [100.0] * 10 + [0.0, 0.0, 0.0, 95.0, 10.0, 92.0, 99.0]
    assert stats.recovery_seconds(counts, 10.0) == 5.0
    # The last second of the window is enough when nothing follows it.
    assert stats.recovery_seconds([100.0] * 5 + [0.0, 90.0], 5.0) == 1.0


def test_recovery_edge_cases() -> None:
    assert stats.recovery_seconds([100.0] * 10, 5.0) == 0.0  # no dip: the fault did not show
    assert stats.recovery_seconds([100.0] * 5 + [0.0] * 5, 5.0) is None  # never back
    assert stats.recovery_seconds([0.0] * 10, 5.0) is None  # nothing to recover to
    assert stats.recovery_seconds([100.0] * 10, 0.0) is None  # no pre-fault second
    # The pre-fault level looks back at most `lookback` whole seconds.
    counts = [0.0] * 5 + [100.0] * 10 + [0.0, 100.0, 100.0]
    assert stats.pre_fault_level(counts, 15.0) == 100.0
    assert stats.recovery_seconds(counts, 15.0) == 1.0


def test_fault_spec_parsing() -> None:
    fault = FaultSpec.parse("kill-primary@20s")
    assert (fault.kind, fault.at, fault.length) == ("kill-primary", 20.0, None)
    assert FaultSpec.parse("pause-primary@3").length == 5.0
    assert FaultSpec.parse("pause-primary@3s+1.5s").length == 1.5
    assert FaultSpec.parse("restart@4s").length == 2.0
    assert FaultSpec.parse("kill-backup@2.5s").at == 2.5
    for bad in ("kill-primary", "explode@3s", "kill-primary@x", "restart@-1"):
        with pytest.raises(ValueError):
            FaultSpec.parse(bad)


def test_a_later_fault_is_measured_against_the_level_after_the_earlier_recovery() -> None:
    # 100/s, a fault at 2 s (back at 4 s), 95/s from then on, a second fault at 9 s: its
    # baseline is the 95/s after the first recovery, not a mean that holds the first dip.
    counts = [100.0, 100.0, 0.0, 0.0] + [95.0] * 5 + [0.0, 95.0, 95.0]
    assert stats.recovery_seconds(counts, 2.0) == 2.0
    assert stats.pre_fault_level(counts, 9.0) == 75.0  # (200 + 475) / 9
    assert stats.pre_fault_level(counts, 9.0, since=4.0) == 95.0
    assert stats.recovery_seconds(counts, 9.0, since=4.0) == 1.0
