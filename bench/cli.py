"""``ibledger bench``: offer a load to a network and measure what it commits, and how fast.

    ibledger bench --fresh --nodes 4 --clients 100 --duration 30
    ibledger bench --network DIR --rate 500 --arrival poisson --processes 2
    ibledger bench --fresh --sweep 100:1000:100 --duration 10
    ibledger bench --fresh --rate 300 --duration 40 --fault kill-primary@20s
    ibledger bench report DIR        re-render a results folder (table and plots)
    ibledger bench compare A B       two results folders side by side

Closed loop (``--clients N``): each client sends one signed transaction and sends the next only
once its commit is notified, like BFT-SMaRt's ThroughputLatency client.  Open loop
(``--rate R``): R tx/s offered whatever the network does, constant or Poisson arrivals.
Latency is submit to commit notification, timed by the client process on the block stream it
follows.  The measured window is ``--duration`` seconds after ``--warmup`` seconds; offered and
admitted count submissions in it, committed counts commits notified in it.  An open-loop run
whose offered load fell more than 5 % short of ``--rate`` is INVALID (exit status 5): the
clients measured themselves, not the network; add ``--processes``.

Results go to ``--out`` (default ``bench-results/<UTC timestamp>``): run.json, txs.csv,
series.csv and, with matplotlib (``pip install 'ibledger[bench]'``), latency_cdf.png and
timeline.png.  Figures depend on the machine: compare runs made side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ibledger.cli.errors import EXIT_INVALID_RUN
from ibledger.cli.manifest import ManifestError, load_manifest
from ibledger.cli.output import CommandError, home

from . import engine, phases, results, stats
from .workloads import WORKLOADS, SetupError, prepare


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("network")
    where.add_argument("--network", type=Path, help="a running network's directory")
    where.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="NODE",
        help="submit to this node of the network only, by id or API host:port (repeatable; "
        "default: every node); keys and the CA come from the network's manifest",
    )
    where.add_argument(
        "--fresh", action="store_true", help="start a new network in a temporary directory"
    )
    where.add_argument("--nodes", type=int, default=4, help="validators of a --fresh network")
    where.add_argument(
        "--batch-timeout-ms", type=int, help="a --fresh network's batch timeout (ms)"
    )
    where.add_argument(
        "--view-change-timeout-ms", type=int, help="a --fresh network's base view-change timeout"
    )
    load = parser.add_argument_group("load")
    mode = load.add_mutually_exclusive_group()
    mode.add_argument("--clients", type=int, help="closed loop: this many clients")
    mode.add_argument("--rate", type=float, help="open loop: offered tx/s")
    mode.add_argument(
        "--sweep", metavar="RATES", help="open loop at each rate: R1,R2,... or start:stop:step"
    )
    load.add_argument("--arrival", choices=("constant", "poisson"), default="constant")
    load.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    load.add_argument("--warmup", type=float, default=2.0, help="seconds offered, not measured")
    load.add_argument("--workload", choices=WORKLOADS, default="noop")
    load.add_argument("--tx-size", type=int, help="pad noop envelopes to about this many bytes")
    load.add_argument("--processes", type=int, default=1, help="client processes")
    load.add_argument(
        "--drain", type=float, default=10.0, help="seconds to wait for the last commits"
    )
    load.add_argument("--seed", type=int, default=1, help="seeds Poisson arrivals and names")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND@T",
        help="kill-primary@20s, kill-backup@20s, pause-primary@20s+5s, restart@20s+2s "
        "(seconds into the measured window; local or --fresh networks only)",
    )
    parser.add_argument("--out", type=Path, help="results folder (default bench-results/<time>)")
    parser.add_argument("--title", help="a name for the run in tables and plots")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--no-progress", action="store_true", help="no live progress line even on a terminal"
    )


def build_parser(prog: str = "ibledger bench") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_verbs(parser)
    return parser


def add_verbs(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser)
    verbs = parser.add_subparsers(dest="bench_verb", metavar="[report|compare]")
    verbs.required = False
    report = verbs.add_parser("report", help="re-render a results folder")
    report.add_argument("dir", type=Path)
    compare = verbs.add_parser("compare", help="two results folders side by side")
    compare.add_argument("a", type=Path)
    compare.add_argument("b", type=Path)


def run(options: argparse.Namespace) -> int:
    """The command: a run, a sweep, a report or a comparison; raises CommandError."""
    verb = getattr(options, "bench_verb", None)
    try:
        if verb == "report":
            text, notes = results.report(options.dir)
            print(text)
            for note in notes:
                print(f"  note: {note}", file=sys.stderr)
            return 0
        if verb == "compare":
            print(results.compare(options.a, options.b))
            return 0
    except (OSError, KeyError, ValueError) as exc:
        raise CommandError("BENCH_RESULTS_INVALID", str(exc)) from None
    return _measure(options)


def _check(options: argparse.Namespace) -> tuple[list[float] | None, list[engine.FaultSpec]]:
    def bad(message: str) -> CommandError:
        return CommandError("BAD_ARGUMENT", message)

    if options.fresh and options.network:
        raise bad("--fresh starts its own network: drop --network")
    if options.clients is None and options.rate is None and options.sweep is None:
        options.clients = 1
    if options.clients is not None and options.clients < 1:
        raise bad("--clients must be at least 1")
    if options.rate is not None and options.rate <= 0:
        raise bad("--rate must be positive")
    if options.duration <= 0 or options.warmup < 0 or options.drain < 0:
        raise bad("--duration must be positive, --warmup and --drain not negative")
    if options.processes < 1:
        raise bad("--processes must be at least 1")
    if options.clients is not None and options.processes > options.clients:
        raise bad("--processes cannot exceed --clients")
    if options.nodes < 4:
        raise bad("--nodes: a BFT network needs at least 4 validators")
    sweep = None
    if options.sweep is not None:
        try:
            sweep = stats.parse_rates(options.sweep)
        except ValueError as exc:
            raise bad(f"--sweep: {exc}") from None
    try:
        faults = [engine.FaultSpec.parse(text) for text in options.fault]
    except ValueError as exc:
        raise bad(f"--fault: {exc}") from None
    for fault in faults:
        if fault.at >= options.duration:
            raise bad(f"--fault {fault.label()}: strikes after the {options.duration:g} s window")
    if faults and sweep is not None:
        raise bad("--fault and --sweep do not mix: inject faults into one run")
    return sweep, faults


@contextlib.contextmanager
def _network(options: argparse.Namespace, out: Path) -> Iterator[Path]:
    if not options.fresh:
        yield options.network or home() / "network"
        return
    consensus = {}
    if options.batch_timeout_ms is not None:
        consensus["batch_timeout_ms"] = options.batch_timeout_ms
    if options.view_change_timeout_ms is not None:
        consensus["view_change_timeout_ms"] = options.view_change_timeout_ms
    print(f"starting a fresh {options.nodes}-node network ...", file=sys.stderr)
    try:
        with engine.fresh_network(options.nodes, consensus, keep=out / "logs") as directory:
            yield directory
    except RuntimeError as exc:
        raise CommandError("BENCH_NETWORK", str(exc)) from None


def _measure(options: argparse.Namespace) -> int:
    sweep, faults = _check(options)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out: Path = options.out or Path("bench-results") / stamp
    progress = sys.stdout.isatty() and not options.no_progress and not options.json
    with _network(options, out) as directory:
        try:
            manifest = load_manifest(directory)
        except ManifestError as exc:
            raise CommandError(exc.code, exc.message) from None
        by_address = {str(n.api): n.id for n in manifest.nodes}
        chosen = [by_address.get(n, n) for n in options.node]
        node_ids = tuple(chosen) or tuple(n.id for n in manifest.nodes)
        unknown = [n for n in node_ids if manifest.node(n) is None]
        if unknown:
            raise CommandError(
                "BAD_ARGUMENT",
                f"--node: no node {', '.join(unknown)} in {manifest.path} "
                f"(known: {', '.join(f'{i} at {a}' for a, i in by_address.items())})",
            )
        target = engine.Target(directory, node_ids)
        if faults:
            try:
                for node in manifest.nodes:
                    engine.node_pid(manifest, node.id)
            except RuntimeError as exc:
                raise CommandError("BENCH_FAULT", str(exc)) from None
        try:
            workload = prepare(options.workload, manifest, options.tx_size, options.seed)
        except SetupError as exc:
            raise CommandError("BENCH_SETUP", str(exc)) from None
        base = {
            "title": options.title or out.name,
            "network": "fresh" if options.fresh else str(directory),
            "nodes": len(manifest.nodes),
            "targets": list(node_ids),
            "workload": options.workload,
            "tx_size": options.tx_size,
            "arrival": options.arrival,
            "duration": options.duration,
            "warmup": options.warmup,
            "processes": options.processes,
            "drain": options.drain,
            "seed": options.seed,
            "batch_timeout_ms": options.batch_timeout_ms,
            "view_change_timeout_ms": options.view_change_timeout_ms,
            "machine": _machine(),
            "started_utc": stamp,
        }
        if sweep is None:
            run = _one(
                target,
                options,
                workload,
                faults,
                base,
                out,
                options.clients,
                options.rate,
                progress,
            )
            _print_run(options, run)
            return 0 if run["summary"]["valid"] else EXIT_INVALID_RUN
        return _sweep(target, options, workload, base, out, sweep, progress)


def _one(
    target: engine.Target,
    options: argparse.Namespace,
    workload: Any,
    faults: list[engine.FaultSpec],
    base: dict[str, Any],
    out: Path,
    clients: int | None,
    rate: float | None,
    progress: bool,
    label: str = "",
) -> dict[str, Any]:
    load = engine.LoadSpec(
        clients=clients,
        rate=rate,
        arrival=options.arrival,
        duration=options.duration,
        warmup=options.warmup,
        processes=options.processes,
        drain=options.drain,
        seed=options.seed,
    )
    manifest = load_manifest(target.directory)
    before = phases.scrape(manifest)
    try:
        result = engine.run_load(target, load, workload, faults, progress, label)
    except (RuntimeError, OSError) as exc:
        raise CommandError("BENCH_FAILED", str(exc)) from None
    breakdown = phases.breakdown(before, phases.scrape(manifest))
    config = base | {
        "clients": clients,
        "rate": rate,
        "faults": [f.label() for f in faults],
        "phases": breakdown,
        "heights": [result.start_height, result.end_height],
        "client_cpu_share": [round(b, 3) for b in result.client_busy],
    }
    summary = results.summarize(
        result.records, result.window_start, result.window_end, rate, engine.fault_dicts(faults)
    )
    results.write_run(out, config, summary, result.records, result.window_start)
    note = results.plot_run(out)
    if note:
        print(f"note: {note}", file=sys.stderr)
    return {"config": config, "summary": summary, "dir": str(out)}


def _print_run(options: argparse.Namespace, run: dict[str, Any]) -> None:
    if options.json:
        summary = {k: v for k, v in run["summary"].items() if k != "series"}
        print(json.dumps({"dir": run["dir"], "summary": summary}, indent=2))
        return
    print(results.run_table(run))
    if not run["summary"]["valid"]:
        print(f"\nINVALID RUN: {run['summary']['validity']}", file=sys.stderr)


def _sweep(
    target: engine.Target,
    options: argparse.Namespace,
    workload: Any,
    base: dict[str, Any],
    out: Path,
    rates: list[float],
    progress: bool,
) -> int:
    points: list[dict[str, Any]] = []

    def point(rate: float, folder: str) -> dict[str, Any]:
        run = _one(
            target,
            options,
            workload,
            [],
            base,
            out / folder,
            None,
            rate,
            progress,
            label=f"{rate:g} tx/s ",
        )
        summary = run["summary"]
        entry = {
            "requested_tx_per_s": rate,
            "offered_tx_per_s": summary["offered_tx_per_s"],
            "committed_tx_per_s": summary["committed_tx_per_s"],
            "p50_ms": summary["latency"]["p50_ms"],
            "p99_ms": summary["latency"]["p99_ms"],
            "valid": summary["valid"],
            "dir": folder,
        }
        if not options.json:
            print(
                f"  {rate:g} tx/s: offered {entry['offered_tx_per_s']:.1f}, committed "
                f"{entry['committed_tx_per_s']:.1f}, p99 {entry['p99_ms']} ms"
                + ("" if entry["valid"] else "  INVALID"),
                file=sys.stderr,
            )
        return entry

    for rate in rates:
        points.append(point(rate, f"rate-{rate:g}"))
    sweep_points = [
        stats.SweepPoint(
            p["requested_tx_per_s"], p["offered_tx_per_s"], p["committed_tx_per_s"], p["valid"]
        )
        for p in points
    ]
    saturated = stats.saturation(sweep_points)
    at70 = point(round(0.7 * saturated, 1), "at-70-percent") if saturated else None
    document = {
        "config": base | {"sweep": rates},
        "points": points,
        "saturation_tx_per_s": saturated,
        "at_70_percent": at70,
        "valid": all(p["valid"] for p in points) and (at70 is None or at70["valid"]),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / results.SWEEP_FILE).write_text(json.dumps(document, indent=2))
    note = results.plot_sweep(out)
    if note:
        print(f"note: {note}", file=sys.stderr)
    if options.json:
        print(json.dumps(document, indent=2))
    else:
        print(results.sweep_table(document))
        print(f"  results    {out}")
    if not document["valid"]:
        print(
            "\nINVALID SWEEP: the offered load fell short at some rate (marked NO): those "
            "points measured the clients; add --processes",
            file=sys.stderr,
        )
        return EXIT_INVALID_RUN
    return 0


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m bench run ...``: the same command as ``ibledger bench ...``."""
    options = build_parser("python -m bench run").parse_args(argv)
    try:
        code = run(options)
    except CommandError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        code = exc.exit_code
    sys.exit(code)
