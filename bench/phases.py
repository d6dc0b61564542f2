"""The per-phase breakdown, read from the nodes' Prometheus endpoints.

Every node exports a histogram per consensus phase (``ibledger_phase_<phase>_seconds``:
admitted_proposed, proposed_prepared, prepared_committed, committed_executed,
executed_notified) and the whole path (``ibledger_commit_latency_seconds``), plus block execution
and write times. The bench scrapes every node before and after the measured window and takes the
difference, so only the window counts. Per phase it reports the mean (difference of ``_sum`` over
difference of ``_count``) and p50/p90/p99 estimated from the bucket counts, pooled over the nodes
that answered, the way Prometheus's ``histogram_quantile`` does: linear inside the bucket that
holds the rank, and the highest finite bound when the rank falls in the ``+Inf`` bucket (so a
percentile is never more precise than the node's buckets). Nodes without these histograms give an
empty breakdown and a note saying so: the client-side figures stand alone.
"""

from __future__ import annotations

import math
import re
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from ibledger.cli.manifest import Manifest

PHASE_PREFIX = "ibledger_phase_"
# Whole-path and per-block histograms the breakdown reports beside the phases, under these names.
EXTRA_HISTOGRAMS = {
    "ibledger_commit_latency_seconds": "commit_latency",
    "ibledger_block_execute_seconds": "block_execute",
    "ibledger_block_write_seconds": "block_write",
}
QUANTILES = (0.5, 0.9, 0.99)
_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)$"
)
_LE = re.compile(r'(?:^|,)\s*le="(?P<le>[^"]+)"')


@dataclass
class Histogram:
    """One histogram's totals, summed over label sets other than ``le``."""

    total: float = 0.0  # seconds
    count: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound -> cumulative count

    def minus(self, earlier: Histogram | None) -> Histogram:
        if earlier is None:
            return Histogram(self.total, self.count, dict(self.buckets))
        return Histogram(
            self.total - earlier.total,
            self.count - earlier.count,
            {le: n - earlier.buckets.get(le, 0.0) for le, n in self.buckets.items()},
        )

    def add(self, other: Histogram) -> None:
        self.total += other.total
        self.count += other.count
        for le, n in other.buckets.items():
            self.buckets[le] = self.buckets.get(le, 0.0) + n

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile in seconds from the cumulative buckets, or None if empty."""
        bounds = sorted(self.buckets)
        if not bounds or self.buckets[bounds[-1]] <= 0:
            return None
        rank = q * self.buckets[bounds[-1]]
        lower, below = 0.0, 0.0
        for bound in bounds:
            cumulative = self.buckets[bound]
            if cumulative >= rank:
                if math.isinf(bound):
                    return lower  # beyond the highest finite bucket: its bound is all we know
                if cumulative == below:
                    return bound
                return lower + (bound - lower) * (rank - below) / (cumulative - below)
            lower, below = bound, cumulative
        return lower


def _histogram_name(metric: str) -> tuple[str, str] | None:
    """``(breakdown name, suffix)`` of a sample of one of the histograms read here."""
    for suffix in ("_bucket", "_sum", "_count"):
        if not metric.endswith(suffix):
            continue
        base = metric[: -len(suffix)]
        if base.startswith(PHASE_PREFIX) and base.endswith("_seconds"):
            return base[len(PHASE_PREFIX) : -len("_seconds")], suffix
        if base in EXTRA_HISTOGRAMS:
            return EXTRA_HISTOGRAMS[base], suffix
    return None


def parse_histograms(text: str) -> dict[str, Histogram]:
    """The phase and block histograms of a Prometheus text page, by breakdown name."""
    out: dict[str, Histogram] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if match is None:
            continue
        named = _histogram_name(match["name"])
        if named is None:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        name, suffix = named
        histogram = out.setdefault(name, Histogram())
        if suffix == "_sum":
            histogram.total += value
        elif suffix == "_count":
            histogram.count += value
        else:
            le = _LE.search(match["labels"] or "")
            if le is None:
                continue
            bound = float(le["le"])  # "+Inf" parses as inf
            histogram.buckets[bound] = histogram.buckets.get(bound, 0.0) + value
    return out


def scrape(manifest: Manifest) -> dict[str, dict[str, Histogram]]:
    out = {}
    for node in manifest.nodes:
        try:
            with urllib.request.urlopen(f"http://{node.metrics}/metrics", timeout=3) as page:
                out[node.id] = parse_histograms(page.read().decode())
        except OSError:
            continue
    return out


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def breakdown(
    before: dict[str, dict[str, Histogram]], after: dict[str, dict[str, Histogram]]
) -> dict[str, Any]:
    """Per phase over the window, pooled over the nodes scraped both times: mean and
    percentiles in milliseconds, and how many observations they rest on."""
    pooled: dict[str, Histogram] = {}
    for node_id, histograms in after.items():
        if node_id not in before:
            continue  # a node first seen after the window started would count its whole past
        for name, histogram in histograms.items():
            window = histogram.minus(before[node_id].get(name))
            if window.count > 0:
                pooled.setdefault(name, Histogram()).add(window)
    if not pooled:
        return {
            "means_ms": {},
            "phases": {},
            "note": f"no per-phase breakdown: the nodes exported no {PHASE_PREFIX}*_seconds "
            "observations in the window",
        }
    phases = {
        name: {
            "count": int(h.count),
            "mean_ms": _ms(h.total / h.count),
            **{f"p{round(q * 100)}_ms": _ms(h.quantile(q)) for q in QUANTILES},
        }
        for name, h in sorted(pooled.items())
    }
    return {
        "means_ms": {name: row["mean_ms"] for name, row in phases.items()},
        "phases": phases,
        "note": "node-side, over the window, pooled over the nodes; percentiles from the "
        "nodes' histogram buckets",
    }


def summary_line(breakdown: dict[str, Any]) -> str:
    """One line for the run summary: each phase's p50 and p99 (mean where no buckets)."""
    rows = breakdown.get("phases") or {}
    if not rows:
        means = breakdown.get("means_ms") or {}
        if not means:
            return str(breakdown.get("note", ""))
        return ", ".join(f"{k} {v:.2f} ms" for k, v in means.items())
    parts = []
    for name, row in rows.items():
        p50, p99 = row.get("p50_ms"), row.get("p99_ms")
        if p50 is None or p99 is None:
            parts.append(f"{name} mean {row['mean_ms']:.2f}")
        else:
            parts.append(f"{name} {p50:.1f}/{p99:.1f}")
    return "p50/p99 ms: " + ", ".join(parts)
