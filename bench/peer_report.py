"""The peer benchmark's figures, as pure functions: one measurement per run, medians per system
and client count, the ratios the project's targets are stated in, and the Markdown table.

A measurement follows ``ibledger bench``'s rules (``bench.stats``) for both systems: committed
ops/s counts the replies (commit notifications) that came inside the measured window, divided
by its length; the latency percentiles are over the requests sent inside it that were answered.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from . import stats

BFTSMART = "bftsmart"
IBLEDGER = "ibledger"
SYSTEMS = (BFTSMART, IBLEDGER)
LABELS = {BFTSMART: "BFT-SMaRt (rwd)", IBLEDGER: "ibledger"}
# The targets: ibledger's throughput at 100 clients at least this share of BFT-SMaRt's, and its
# median latency at 1 client at most this multiple of BFT-SMaRt's.
THROUGHPUT_TARGET = 0.6
THROUGHPUT_CLIENTS = 100
LATENCY_TARGET = 1.5
LATENCY_CLIENTS = 1


@dataclass(frozen=True, slots=True)
class Measurement:
    system: str
    clients: int
    run: int
    committed_ops_per_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    sent: int  # requests sent inside the window
    unanswered: int  # of those, never answered (refused, timed out, lost)
    dir: str = ""


def from_records(
    system: str,
    clients: int,
    run: int,
    records: Sequence[stats.TxRecord],
    measure_s: float,
    directory: str = "",
) -> Measurement:
    """A run measured on its own records, the window being ``[0, measure_s)``."""
    rates = stats.rates(records, 0.0, measure_s)
    window = stats.in_window(records, 0.0, measure_s)
    latency = stats.latency_summary(stats.latencies_ms(window))
    return Measurement(
        system,
        clients,
        run,
        rates["committed_tx_per_s"],
        latency["p50_ms"],
        latency["p99_ms"],
        latency["mean_ms"],
        int(rates["submitted"]),
        sum(1 for r in window if not r.is_committed),
        directory,
    )


def from_bench_json(clients: int, run: int, text: str) -> Measurement:
    """A run of ``ibledger bench --json``: its printed summary."""
    try:
        document = json.loads(text)
        summary = document["summary"]
        latency = summary["latency"]
        return Measurement(
            IBLEDGER,
            clients,
            run,
            _number(summary["committed_tx_per_s"]),
            _number(latency["p50_ms"]),
            _number(latency["p99_ms"]),
            _number(latency["mean_ms"]),
            int(summary["submitted"]),
            int(summary["rejected"]) + int(summary["uncommitted"]),
            str(document.get("dir", "")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not an `ibledger bench --json` summary: {exc}") from None


def _number(value: Any) -> float:
    """A figure of a JSON summary, where null stands for undefined (NaN)."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


def _median(values: list[float]) -> float:
    defined = [v for v in values if not math.isnan(v)]
    return statistics.median(defined) if defined else math.nan


def medians(measurements: Sequence[Measurement]) -> dict[tuple[str, int], dict[str, Any]]:
    """Per (system, clients): the median of each figure over its runs, and the runs' values."""
    groups: dict[tuple[str, int], list[Measurement]] = {}
    for m in measurements:
        groups.setdefault((m.system, m.clients), []).append(m)
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for key, group in sorted(groups.items(), key=lambda item: (item[0][1], item[0][0])):
        out[key] = {
            "runs": len(group),
            "committed_ops_per_s": _median([m.committed_ops_per_s for m in group]),
            "p50_ms": _median([m.p50_ms for m in group]),
            "p99_ms": _median([m.p99_ms for m in group]),
            "unanswered": sum(m.unanswered for m in group),
            "committed_ops_per_s_runs": [m.committed_ops_per_s for m in group],
            "p50_ms_runs": [m.p50_ms for m in group],
        }
    return out


def _ratio(numerator: float, denominator: float) -> float:
    if math.isnan(numerator) or math.isnan(denominator) or denominator == 0:
        return math.nan
    return numerator / denominator


def ratios(table: dict[tuple[str, int], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The two target ratios from the medians; ``met`` is None when a side is missing."""

    def figure(system: str, clients: int, name: str) -> float:
        row = table.get((system, clients))
        return math.nan if row is None else float(row[name])

    throughput = _ratio(
        figure(IBLEDGER, THROUGHPUT_CLIENTS, "committed_ops_per_s"),
        figure(BFTSMART, THROUGHPUT_CLIENTS, "committed_ops_per_s"),
    )
    latency = _ratio(
        figure(IBLEDGER, LATENCY_CLIENTS, "p50_ms"), figure(BFTSMART, LATENCY_CLIENTS, "p50_ms")
    )
    return {
        "throughput_100_clients": {
            "what": f"ibledger / BFT-SMaRt committed ops/s at {THROUGHPUT_CLIENTS} clients",
            "ratio": throughput,
            "target": f">= {THROUGHPUT_TARGET}",
            "met": None if math.isnan(throughput) else throughput >= THROUGHPUT_TARGET,
        },
        "p50_1_client": {
            "what": f"ibledger p50 / BFT-SMaRt p50 at {LATENCY_CLIENTS} client",
            "ratio": latency,
            "target": f"<= {LATENCY_TARGET}",
            "met": None if math.isnan(latency) else latency <= LATENCY_TARGET,
        },
    }


def document(
    measurements: Sequence[Measurement], config: dict[str, Any], machine: dict[str, Any]
) -> dict[str, Any]:
    """The JSON results: configuration, machine, every run, the medians and the ratios (NaN
    written as null)."""
    table = medians(measurements)
    doc: dict[str, Any] = _jsonable(
        {
            "config": config,
            "machine": machine,
            "runs": [asdict(m) for m in measurements],
            "medians": [
                {"system": system, "clients": clients, **row}
                for (system, clients), row in table.items()
            ],
            "ratios": ratios(table),
        }
    )
    return doc


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 3)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _show(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{float(value):,.{digits}f}"


def markdown(doc: dict[str, Any]) -> str:
    """The medians and ratios of a results document as Markdown."""
    machine = doc["machine"]
    config = doc["config"]
    lines = [
        f"Peer benchmark, median of {config['runs']} run(s) per row, systems alternated"
        + (" (quick: short windows, not for comparison)" if config.get("quick") else ""),
        "",
        "| system | clients | committed ops/s | p50 ms | p99 ms | unanswered | runs (ops/s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in doc["medians"]:
        runs = ", ".join(_show(v) for v in row["committed_ops_per_s_runs"])
        lines.append(
            f"| {LABELS.get(row['system'], row['system'])} | {row['clients']} | "
            f"{_show(row['committed_ops_per_s'])} | {_show(row['p50_ms'], 2)} | "
            f"{_show(row['p99_ms'], 2)} | {row['unanswered']} | {runs} |"
        )
    lines += ["", "| ratio | value | target | met |", "|---|---|---|---|"]
    for item in doc["ratios"].values():
        met = {True: "yes", False: "no", None: "-"}[item["met"]]
        lines.append(f"| {item['what']} | {_show(item['ratio'], 2)} | {item['target']} | {met} |")
    verify = machine.get("ed25519_verify_per_s_1_core", [])
    lines += [
        "",
        f"Machine: {machine.get('cpus')} cores, {machine.get('platform', '?')}; "
        f"load average {machine.get('loadavg_start', '?')} at the start, "
        f"{machine.get('loadavg_end', '?')} at the end; Ed25519 verify on one core "
        + (" / ".join(f"{_show(v, 0)}/s" for v in verify) or "-")
        + " (start / end of the run).",
        f"BFT-SMaRt {config.get('bftsmart_commit', '?')}, ThroughputLatencyServer x4, rwd; "
        f"windows: {config.get('windows', '?')}.",
    ]
    return "\n".join(lines)
