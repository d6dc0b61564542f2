"""The per-phase breakdown, read from the nodes' Prometheus endpoints.

A node that exports histograms named ``ibledger_phase_<phase>_seconds`` (admitted, proposed,
prepared, committed, executed, notified, ...) is scraped before and after the measured window;
the breakdown is each phase's mean over the window (the difference of ``_sum`` over the
difference of ``_count``), averaged over the nodes that answered.  Nodes without such
histograms give an empty breakdown and a note saying so: the client-side figures stand alone.
"""

from __future__ import annotations

import re
import urllib.request
from typing import Any

from ibledger.cli.manifest import Manifest

PHASE_PREFIX = "ibledger_phase_"
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(?P<value>\S+)$")


def parse_sums(text: str) -> dict[str, tuple[float, float]]:
    """``{phase: (sum seconds, count)}`` of the phase histograms in a Prometheus text page,
    summed over label sets."""
    sums: dict[str, list[float]] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if match is None or not match["name"].startswith(PHASE_PREFIX):
            continue
        name = match["name"][len(PHASE_PREFIX) :]
        for suffix, slot in (("_seconds_sum", 0), ("_seconds_count", 1)):
            if name.endswith(suffix):
                entry = sums.setdefault(name[: -len(suffix)], [0.0, 0.0])
                entry[slot] += float(match["value"])
    return {phase: (s, c) for phase, (s, c) in sums.items()}


def scrape(manifest: Manifest) -> dict[str, dict[str, tuple[float, float]]]:
    out = {}
    for node in manifest.nodes:
        try:
            with urllib.request.urlopen(f"http://{node.metrics}/metrics", timeout=3) as page:
                out[node.id] = parse_sums(page.read().decode())
        except OSError:
            continue
    return out


def breakdown(
    before: dict[str, dict[str, tuple[float, float]]],
    after: dict[str, dict[str, tuple[float, float]]],
) -> dict[str, Any]:
    means: dict[str, list[float]] = {}
    for node_id, phases in after.items():
        for phase, (total, count) in phases.items():
            total0, count0 = before.get(node_id, {}).get(phase, (0.0, 0.0))
            if count > count0:
                means.setdefault(phase, []).append((total - total0) / (count - count0) * 1000)
    if not means:
        return {
            "means_ms": {},
            "note": f"no per-phase breakdown: the nodes export no {PHASE_PREFIX}*_seconds "
            "histograms (bench/phases.py reads them once they do)",
        }
    return {
        "means_ms": {phase: sum(v) / len(v) for phase, v in sorted(means.items())},
        "note": "node-side means over the window, averaged over the nodes",
    }
