"""The bench's per-phase breakdown from Prometheus text: window differences, pooling over nodes,
and percentiles from buckets the way Prometheus's histogram_quantile estimates them."""

from __future__ import annotations

import math

import pytest

from ibledger.bench.phases import Histogram, breakdown, parse_histograms, summary_line

BOUNDS = ("0.001", "0.01", "0.1", "1.0", "+Inf")


def page(phase: str, cumulative: tuple[int, ...], total: float, **labels: str) -> str:
    """A Prometheus text page with one phase histogram (cumulative bucket counts)."""
    extra = "".join(f'{k}="{v}",' for k, v in labels.items())
    lines = [f"# TYPE ibledger_phase_{phase}_seconds histogram"]
    for bound, n in zip(BOUNDS, cumulative, strict=True):
        lines.append(f'ibledger_phase_{phase}_seconds_bucket{{{extra}le="{bound}"}} {n}.0')
    lines.append(f"ibledger_phase_{phase}_seconds_sum{{{extra[:-1]}}} {total}")
    lines.append(f"ibledger_phase_{phase}_seconds_count{{{extra[:-1]}}} {cumulative[-1]}.0")
    lines.append("ibledger_height 12.0")  # other metrics are ignored
    lines.append("ibledger_txs_committed_total 40.0")
    return "\n".join(lines) + "\n"


def test_a_page_parses_into_sum_count_and_cumulative_buckets() -> None:
    parsed = parse_histograms(page("proposed_prepared", (0, 10, 30, 40, 40), 1.5))
    h = parsed["proposed_prepared"]
    assert (h.total, h.count) == (1.5, 40.0)
    assert h.buckets == {0.001: 0.0, 0.01: 10.0, 0.1: 30.0, 1.0: 40.0, math.inf: 40.0}


def test_label_sets_are_summed_and_whole_path_histograms_named() -> None:
    text = page("admitted_proposed", (1, 2, 2, 2, 2), 0.01, peer="a") + page(
        "admitted_proposed", (0, 1, 3, 3, 3), 0.2, peer="b"
    )
    text += 'ibledger_commit_latency_seconds_bucket{le="0.1"} 5.0\n'
    text += 'ibledger_commit_latency_seconds_bucket{le="+Inf"} 6.0\n'
    text += "ibledger_commit_latency_seconds_sum 0.9\nibledger_commit_latency_seconds_count 6.0\n"
    parsed = parse_histograms(text)
    assert parsed["admitted_proposed"].count == 5.0
    assert parsed["admitted_proposed"].buckets[0.01] == 3.0
    assert parsed["commit_latency"].buckets == {0.1: 5.0, math.inf: 6.0}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.25, 0.01),  # rank 10 ends the second bucket exactly
        (0.5, 0.01 + (0.1 - 0.01) * (20 - 10) / (30 - 10)),  # inside (0.01, 0.1]
        (0.0125, 0.001 + (0.01 - 0.001) * 0.5 / 10),
        (0.9, 0.1 + (1.0 - 0.1) * (36 - 30) / 10),
    ],
)
def test_quantiles_interpolate_inside_the_bucket_that_holds_the_rank(
    q: float, expected: float
) -> None:
    h = Histogram(1.0, 40, {0.001: 0, 0.01: 10, 0.1: 30, 1.0: 40, math.inf: 40})
    assert h.quantile(q) == pytest.approx(expected)


def test_a_rank_beyond_the_last_finite_bucket_is_that_bucket_s_bound() -> None:
    h = Histogram(100.0, 10, {0.1: 5, 1.0: 8, math.inf: 10})
    assert h.quantile(0.99) == 1.0
    assert Histogram().quantile(0.5) is None


def test_the_window_is_the_difference_pooled_over_nodes() -> None:
    before = {
        "node0": parse_histograms(page("prepared_committed", (0, 5, 5, 5, 5), 0.02)),
        "node1": parse_histograms(page("prepared_committed", (0, 0, 0, 0, 0), 0.0)),
    }
    after = {
        # node0 saw 10 more, all in (0.01, 0.1]; node1 10, all in (0.001, 0.01].
        "node0": parse_histograms(page("prepared_committed", (0, 5, 15, 15, 15), 0.52)),
        "node1": parse_histograms(page("prepared_committed", (0, 10, 10, 10, 10), 0.05)),
        # A node not scraped before the window would count its whole past: left out.
        "node2": parse_histograms(page("prepared_committed", (0, 0, 900, 900, 900), 90.0)),
    }
    result = breakdown(before, after)
    row = result["phases"]["prepared_committed"]
    assert row["count"] == 20
    assert row["mean_ms"] == pytest.approx((0.50 + 0.05) / 20 * 1000)
    assert row["p50_ms"] == pytest.approx(10.0)  # rank 10: the end of node1's bucket
    assert row["p99_ms"] == pytest.approx((0.01 + 0.09 * (19.8 - 10) / 10) * 1000)
    assert result["means_ms"] == {"prepared_committed": row["mean_ms"]}
    assert summary_line(result).startswith("p50/p99 ms: prepared_committed 10.0/")


def test_no_observations_in_the_window_is_said_not_invented() -> None:
    same = {"node0": parse_histograms(page("executed_notified", (1, 1, 1, 1, 1), 0.0005))}
    result = breakdown(same, same)
    assert result["phases"] == {} and result["means_ms"] == {}
    assert "no per-phase breakdown" in summary_line(result)
    assert breakdown({}, {})["phases"] == {}
