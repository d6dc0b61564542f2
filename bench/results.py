"""A run's results folder: ``run.json`` (configuration, summary, per-second series, faults),
``txs.csv`` (one row per transaction), ``series.csv`` and, with matplotlib (the ``[bench]``
extra), ``latency_cdf.png`` and ``timeline.png``.  A sweep adds ``sweep.json`` and
``sweep.png`` beside one sub-folder per rate.  ``report`` re-renders a folder from its files;
``compare`` sets two side by side."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from . import stats
from .phases import summary_line as phase_summary

RUN_FILE = "run.json"
SWEEP_FILE = "sweep.json"
NO_PLOTS = (
    "plots skipped: matplotlib is not installed (pip install 'ibledger[bench]', or "
    "`pip install matplotlib`); the JSON and CSV files are complete"
)


def summarize(
    records: list[stats.TxRecord],
    start: float,
    end: float,
    requested_rate: float | None,
    faults: list[dict[str, Any]],
) -> dict[str, Any]:
    """The summary of one run; fills each fault's ``recovery_s`` from per-second commits."""
    window = stats.in_window(records, start, end)
    rates = stats.rates(records, start, end)
    latency = stats.latency_summary(stats.latencies_ms(window))
    series = stats.per_second(records, start, end)
    counts = [row["committed"] for row in series]
    since = 0.0  # a later fault's baseline starts once the earlier one has recovered
    for fault in sorted(faults, key=lambda f: f.get("struck_at") or math.inf):
        struck = fault.get("struck_at")
        if struck is None:
            fault["recovery_s"] = None
            fault["pre_fault_tx_per_s"] = None
            continue
        fault["pre_fault_tx_per_s"] = _clean(stats.pre_fault_level(counts, struck, since=since))
        recovery = stats.recovery_seconds(counts, struck, since=since)
        fault["recovery_s"] = recovery
        since = struck + (recovery if recovery is not None else math.inf)
    # Poisson arrivals fluctuate around the rate: the offer is judged against the arrivals
    # scheduled in the window (for constant arrivals, the rate itself).
    scheduled = None
    if requested_rate is not None:
        due = sum(1 for r in records if start <= r.due < end)
        scheduled = due / (end - start) if due else requested_rate
    valid, reason = stats.offered_validity(scheduled, rates["offered_tx_per_s"])
    codes: dict[str, int] = {}
    for r in window:
        if r.code:
            codes[r.code] = codes.get(r.code, 0) + 1
    outcomes: dict[str, int] = {}
    for r in window:
        if r.result:
            outcomes[r.result] = outcomes.get(r.result, 0) + 1
    return {
        "valid": valid,
        "validity": reason,
        "requested_tx_per_s": requested_rate,
        "scheduled_tx_per_s": None if scheduled is None else _clean(scheduled),
        **{k: _clean(v) for k, v in rates.items()},
        "latency": {k: _clean(v) for k, v in latency.items()},
        "rejected_by_code": codes,
        "results_by_code": outcomes,
        "faults": faults,
        "series": [{k: _clean(v) for k, v in row.items()} for row in series],
    }


def _clean(value: float) -> float | None:
    """JSON has no NaN: an undefined figure is null."""
    return None if isinstance(value, float) and math.isnan(value) else round(value, 3)


def write_run(
    out: Path,
    config: dict[str, Any],
    summary: dict[str, Any],
    records: list[stats.TxRecord],
    start: float,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / RUN_FILE).write_text(json.dumps({"config": config, "summary": summary}, indent=2))
    with (out / "txs.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["due_s", "submitted_s", "committed_s", "latency_ms", "code", "result"])
        for r in records:
            committed = "" if not r.is_committed else f"{r.committed - start:.6f}"
            latency = "" if not r.is_committed else f"{(r.committed - r.submitted) * 1000:.3f}"
            writer.writerow(
                [
                    f"{r.due - start:.6f}",
                    f"{r.submitted - start:.6f}",
                    committed,
                    latency,
                    r.code,
                    r.result,
                ]
            )
    with (out / "series.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["second", "offered", "committed", "p50_ms", "p99_ms"])
        for row in summary["series"]:
            writer.writerow(
                [
                    "" if row[k] is None else row[k]
                    for k in ("second", "offered", "committed", "p50_ms", "p99_ms")
                ]
            )


def read_latencies(out: Path) -> list[float]:
    """Latencies (ms) of the transactions submitted in the measured window, from txs.csv."""
    run = json.loads((out / RUN_FILE).read_text())
    duration = float(run["config"]["duration"])
    latencies = []
    with (out / "txs.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["latency_ms"] and 0 <= float(row["submitted_s"]) < duration:
                latencies.append(float(row["latency_ms"]))
    return latencies


def plot_run(out: Path) -> str | None:
    """Write the run's PNGs; the reason when it cannot."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return NO_PLOTS
    run = json.loads((out / RUN_FILE).read_text())
    summary = run["summary"]
    latencies = sorted(read_latencies(out))
    title = run["config"].get("title", out.name)
    figure, axis = plt.subplots(figsize=(7, 4.5))
    if latencies:
        n = len(latencies)
        axis.plot(latencies, [(i + 1) / n for i in range(n)], linewidth=1.5)
        axis.set_xscale("log")
    axis.set_xlabel("submit-to-commit latency (ms, log scale)")
    axis.set_ylabel("fraction of transactions")
    axis.set_title(f"Latency CDF: {title}")
    axis.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(out / "latency_cdf.png", dpi=110)
    plt.close(figure)

    series = summary["series"]
    seconds = [row["second"] for row in series]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    edges = [*seconds, float(len(seconds))]
    for name, alpha in (("committed", 1.0), ("offered", 0.6)):
        counts = [row[name] for row in series]
        top.step(edges, [*counts, *counts[-1:]], where="post", label=name, alpha=alpha)
    top.set_ylim(bottom=0)
    top.set_ylabel("tx per second")
    top.legend(loc="lower right")
    for name in ("p50_ms", "p99_ms"):
        bottom.plot(
            [x + 0.5 for x in seconds],
            [math.nan if row[name] is None else row[name] for row in series],
            label=name.replace("_ms", ""),
        )
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel("seconds into the measured window")
    bottom.legend(loc="upper right")
    for fault in summary["faults"]:
        if fault.get("struck_at") is None:
            continue
        for axis in (top, bottom):
            axis.axvline(fault["struck_at"], color="red", linestyle="--", linewidth=1)
        top.annotate(
            fault["label"],
            (fault["struck_at"], top.get_ylim()[1]),
            color="red",
            fontsize=8,
            va="top",
        )
    top.set_title(f"Throughput and latency: {title}")
    figure.tight_layout()
    figure.savefig(out / "timeline.png", dpi=110)
    plt.close(figure)
    return None


def plot_sweep(out: Path) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return NO_PLOTS
    sweep = json.loads((out / SWEEP_FILE).read_text())
    points = sweep["points"]
    figure, axis = plt.subplots(figsize=(7, 4.5))
    axis.plot(
        [p["committed_tx_per_s"] for p in points],
        [p["p99_ms"] for p in points],
        marker="o",
        label="p99",
    )
    axis.plot(
        [p["committed_tx_per_s"] for p in points],
        [p["p50_ms"] for p in points],
        marker="o",
        label="p50",
    )
    axis.set_xlabel("committed tx/s")
    axis.set_ylabel("latency (ms)")
    axis.set_yscale("log")
    if sweep.get("saturation_tx_per_s"):
        axis.axvline(sweep["saturation_tx_per_s"], color="grey", linestyle=":", label="saturation")
    axis.legend()
    axis.set_title("Open-loop sweep")
    axis.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(out / "sweep.png", dpi=110)
    plt.close(figure)
    return None


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:,.1f}"


def run_table(run: dict[str, Any]) -> str:
    config, summary = run["config"], run["summary"]
    lat = summary["latency"]
    mode = (
        f"closed loop, {config['clients']} clients"
        if config.get("clients")
        else f"open loop, {config['rate']:g} tx/s {config['arrival']}"
    )
    rows = [
        ("run", config.get("title", "")),
        ("mode", f"{mode}, {config['processes']} process(es), workload {config['workload']}"),
        ("network", f"{config['nodes']} nodes ({config['network']})"),
        ("window", f"{config['duration']:g} s after {config['warmup']:g} s warm-up"),
        ("offered", f"{summary['offered_tx_per_s']:.1f} tx/s"),
        (
            "admitted",
            f"{summary['admitted_tx_per_s']:.1f} tx/s "
            f"({summary['rejected']:.0f} rejected"
            + "".join(f", {n} {code}" for code, n in sorted(summary["rejected_by_code"].items()))
            + ")",
        ),
        (
            "committed",
            f"{summary['committed_tx_per_s']:.1f} tx/s "
            f"({summary['uncommitted']:.0f} admitted never seen committed)",
        ),
        (
            "latency ms",
            f"p50 {_ms(lat['p50_ms'])}  p90 {_ms(lat['p90_ms'])}  "
            f"p99 {_ms(lat['p99_ms'])}  p99.9 {_ms(lat['p99.9_ms'])}  "
            f"max {_ms(lat['max_ms'])}  (n={lat['count']:.0f})",
        ),
    ]
    for fault in summary["faults"]:
        recovery = fault.get("recovery_s")
        rows.append(
            (
                "fault",
                f"{fault['label']} struck at {_ms(fault.get('struck_at'))} s; pre-fault "
                f"{_ms(fault.get('pre_fault_tx_per_s'))} tx/s; back to 90 % after "
                + ("never (within the window)" if recovery is None else f"{recovery:.1f} s"),
            )
        )
    busy = config.get("client_cpu_share") or []
    if busy:
        rows.append(
            (
                "client cpu",
                f"{max(busy):.0%} of a core in the busiest of {len(busy)} process(es)"
                + ("  (near its limit: try more --processes)" if max(busy) >= 0.9 else ""),
            )
        )
    outcomes = summary.get("results_by_code") or {}
    rows.append(
        (
            "executed",
            ", ".join(f"{n} {code}" for code, n in sorted(outcomes.items()))
            if outcomes
            else "result codes not read (noop: UNKNOWN_OPERATION by design; or no regulator)",
        )
    )
    rows.append(("phases", phase_summary(config.get("phases") or {})))
    rows.append(("validity", summary["validity"]))
    if "dir" in run:
        rows.append(("results", run["dir"]))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name.ljust(width)}  {value}" for name, value in rows)


def sweep_table(sweep: dict[str, Any]) -> str:
    lines = ["  requested  offered  committed    p50 ms    p99 ms  valid"]
    for p in sweep["points"]:
        lines.append(
            f"  {p['requested_tx_per_s']:>9g} {p['offered_tx_per_s']:>8.1f} "
            f"{p['committed_tx_per_s']:>10.1f} {_ms(p['p50_ms']):>9} {_ms(p['p99_ms']):>9}  "
            f"{'yes' if p['valid'] else 'NO'}"
        )
    saturation = sweep.get("saturation_tx_per_s")
    lines.append(
        "  saturation: "
        + (
            f"{saturation:g} tx/s (highest rate committing >= 98 % of its offer)"
            if saturation
            else "none of the rates kept up"
        )
    )
    at70 = sweep.get("at_70_percent")
    if at70:
        lines.append(
            f"  at 70 % of saturation ({at70['requested_tx_per_s']:g} tx/s): "
            f"p99 {_ms(at70['p99_ms'])} ms, committed {at70['committed_tx_per_s']:.1f} tx/s"
            + ("" if at70["valid"] else "  (INVALID: offered load fell short)")
        )
    return "\n".join(lines)


def report(out: Path) -> tuple[str, list[str]]:
    """The text of a results folder (a run or a sweep) and notes, re-rendering its plots."""
    notes: list[str] = []
    if (out / SWEEP_FILE).is_file():
        sweep = json.loads((out / SWEEP_FILE).read_text())
        for sub in sorted(p for p in out.iterdir() if (p / RUN_FILE).is_file()):
            note = plot_run(sub)
            if note:
                notes.append(note)
        note = plot_sweep(out)
        if note:
            notes.append(note)
        return sweep_table(sweep), sorted(set(notes))
    if not (out / RUN_FILE).is_file():
        raise FileNotFoundError(f"{out} holds no {RUN_FILE} or {SWEEP_FILE}")
    run = json.loads((out / RUN_FILE).read_text())
    note = plot_run(out)
    return run_table(run), [note] if note else []


def figures(out: Path) -> dict[str, float | None]:
    if (out / SWEEP_FILE).is_file():
        sweep = json.loads((out / SWEEP_FILE).read_text())
        at70 = sweep.get("at_70_percent") or {}
        return {
            "saturation tx/s": sweep.get("saturation_tx_per_s"),
            "p99 ms at 70 %": at70.get("p99_ms"),
        }
    summary = json.loads((out / RUN_FILE).read_text())["summary"]
    lat = summary["latency"]
    figures: dict[str, float | None] = {
        "offered tx/s": summary["offered_tx_per_s"],
        "committed tx/s": summary["committed_tx_per_s"],
        "p50 ms": lat["p50_ms"],
        "p90 ms": lat["p90_ms"],
        "p99 ms": lat["p99_ms"],
        "p99.9 ms": lat["p99.9_ms"],
        "max ms": lat["max_ms"],
    }
    for n, fault in enumerate(summary["faults"]):
        figures[f"fault {n + 1} recovery s"] = fault.get("recovery_s")
    return figures


def _validity(out: Path) -> str:
    if (out / SWEEP_FILE).is_file():
        valid = json.loads((out / SWEEP_FILE).read_text())["valid"]
    else:
        valid = json.loads((out / RUN_FILE).read_text())["summary"]["valid"]
    return "valid" if valid else "INVALID: the offered load fell short"


def compare(a: Path, b: Path) -> str:
    fa, fb = figures(a), figures(b)
    width = max(len(k) for k in (*fa, *fb))
    lines = [
        f"  A = {a} ({_validity(a)})",
        f"  B = {b} ({_validity(b)})",
        f"  {'':{width}}  {'A':>12}  {'B':>12}  {'B/A':>7}",
    ]
    for key in [*fa, *(k for k in fb if k not in fa)]:
        va, vb = fa.get(key), fb.get(key)
        ratio = f"{vb / va:7.2f}" if va and vb is not None else "      -"
        lines.append(f"  {key:{width}}  {_ms(va):>12}  {_ms(vb):>12}  {ratio}")
    return "\n".join(lines)
