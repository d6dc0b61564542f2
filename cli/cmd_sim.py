"""``ibledger sim``: the deterministic simulator as a research instrument.

Runs N real consensus replicas in this process on a simulated clock and network (ibledger.sim),
under an open-loop load, chosen one-way delays, loss and a fault schedule, and reports in
simulated time: committed tx/s, submit-to-commit latency percentiles beside the analytical PBFT
latency, messages and bytes per committed block, view changes. The only wall-clock reading is the
cost of the run itself (wall seconds per simulated second); the same options and seed give the
same report and the same trace digest.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ..sim.experiment import NODES_MAX, NODES_MIN, ExperimentConfig, run_experiment
from ..sim.faults import FaultError, parse_fault
from ..sim.latency import LatencyError, Matrix, parse_latency, parse_regions
from .output import CommandError, emit

LATENCY_HELP = (
    "one-way delay model: fixed:MS, uniform:LO:HI (ms), lognormal:MU:SIGMA (exp(N(MU,SIGMA)) ms) "
    "or matrix:FILE (a region-to-region table of one-way delays in ms: a header line of region "
    "names, then one line per region: its name and one delay per column; # comments). "
    "Default fixed:5"
)
FAULT_HELP = (
    "a fault (repeatable; times in simulated seconds): crash:NODE@T or crash:NODE@T1-T2 "
    "(restart at T2), partition:A,B|C,D@T1-T2, isolate:NODE@T1-T2, isolate-primary@T[-T2]; "
    "NODE is an index or rN"
)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "sim",
        help="simulate an N-replica PBFT network in simulated time and measure it",
        description="Run N real consensus replicas on a simulated clock and network under an "
        "open-loop load, with a chosen delay model, message loss, batching and fault schedule. "
        "Reports, in simulated time, committed tx/s, submit-to-commit latency (p50/p90/p99/max) "
        "beside the analytical PBFT latency, messages and bytes per committed block and view "
        "changes, and the wall seconds each simulated second cost. Deterministic: the same "
        "options and --seed give the same result.",
    )
    parser.add_argument(
        "--nodes", type=int, default=4, help=f"replicas, {NODES_MIN} to {NODES_MAX} (default 4)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--duration", type=float, default=10.0, help="simulated seconds of load (default 10)"
    )
    parser.add_argument(
        "--rate", type=float, default=100.0, help="offered load, tx per simulated second (100)"
    )
    parser.add_argument(
        "--arrivals",
        choices=("poisson", "constant"),
        default="poisson",
        help="request arrival process (default poisson)",
    )
    parser.add_argument("--tx-size", type=int, default=200, help="request bytes (default 200)")
    parser.add_argument("--latency", default="fixed:5", help=LATENCY_HELP)
    parser.add_argument(
        "--regions",
        default=None,
        help="with matrix:FILE, which region each replica is in: NAME:COUNT,... (counts in "
        "replica order), or one NAME per replica, or round-robin (default)",
    )
    parser.add_argument(
        "--loss", type=float, default=0.0, help="probability a message is lost (default 0)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=64, help="requests per block at most (default 64)"
    )
    parser.add_argument(
        "--batch-timeout-ms",
        type=float,
        default=50.0,
        help="longest wait of a request before the primary proposes it (default 50)",
    )
    parser.add_argument(
        "--eager-blocks",
        type=int,
        default=0,
        help="propose at once while fewer of the primary's blocks are in flight (default 0: "
        "always wait for the batch timeout; a network made by network init uses 1)",
    )
    parser.add_argument(
        "--view-change-timeout-ms",
        type=float,
        default=1000.0,
        help="base view-change timeout (default 1000; doubles per failed view)",
    )
    parser.add_argument(
        "--tick-ms", type=int, default=10, help="replica tick, as a node's tick_ms (default 10)"
    )
    parser.add_argument("--fault", action="append", default=[], help=FAULT_HELP)
    parser.add_argument(
        "--client-retry-ms",
        type=float,
        default=2000.0,
        help="a client resubmits to every replica after this long (default 2000)",
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=10.0,
        help="simulated seconds after the load for outstanding requests (default 10)",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.set_defaults(handler=run)


def config_from_options(options: argparse.Namespace) -> ExperimentConfig:
    n = options.nodes
    if not NODES_MIN <= n <= NODES_MAX:
        raise CommandError("invalid-argument", f"--nodes must be {NODES_MIN} to {NODES_MAX}")
    try:
        matrix_text = None
        kind, _, path = options.latency.partition(":")
        if kind == "matrix" and path:
            try:
                matrix_text = Path(path).read_text()
            except OSError as exc:
                raise CommandError("invalid-argument", f"--latency {path}: {exc}") from None
        model = parse_latency(options.latency, matrix_text)
        regions = (
            parse_regions(options.regions, n, model.regions) if isinstance(model, Matrix) else ()
        )
        if options.regions is not None and not isinstance(model, Matrix):
            raise CommandError("invalid-argument", "--regions needs --latency matrix:FILE")
        faults = tuple(parse_fault(spec, n) for spec in options.fault)
    except (LatencyError, FaultError) as exc:
        raise CommandError("invalid-argument", str(exc)) from None
    config = ExperimentConfig(
        n=n,
        seed=options.seed,
        duration_s=options.duration,
        rate_tps=options.rate,
        arrivals=options.arrivals,
        latency=model,
        regions=regions,
        loss=options.loss,
        batch_size_max=options.batch_size,
        batch_timeout_ms=options.batch_timeout_ms,
        eager_blocks=options.eager_blocks,
        view_change_timeout_ms=options.view_change_timeout_ms,
        tick_ms=options.tick_ms,
        tx_bytes=options.tx_size,
        faults=faults,
        client_retry_ms=options.client_retry_ms,
        drain_s=options.drain,
    )
    try:
        config.validate()
    except ValueError as exc:
        raise CommandError("invalid-argument", str(exc)) from None
    return config


def _text(summary: dict[str, Any]) -> str:
    lat = summary["latency_ms"]
    model = summary["analytical_latency_ms"]
    approx = "" if model["exact_delays"] else " (at mean delays: an approximation)"
    faults = ", ".join(summary["faults"]) or "none"
    lines = [
        f"simulated {summary['nodes']} replicas (f={summary['f']}), seed {summary['seed']}, "
        f"{summary['duration_s']:g} s of load ({summary['simulated_s']:g} s simulated)",
        f"  network {summary['latency_model']}, loss {summary['loss']:g}; batch "
        f"{summary['batch_size_max']} / {summary['batch_timeout_ms']:g} ms; view-change timeout "
        f"{summary['view_change_timeout_ms']:g} ms; tick {summary['tick_ms']} ms; faults: {faults}",
        f"  offered {summary['offered_tps']:g} tx/s ({summary['arrivals']}), committed "
        f"{summary['committed_tps']:g} tx/s; {summary['committed']}/{summary['submitted']} "
        f"requests committed",
        f"  latency ms: p50 {lat['p50']:.2f}  p90 {lat['p90']:.2f}  p99 {lat['p99']:.2f}  "
        f"max {lat['max']:.2f}  mean {lat['mean']:.2f}",
        f"  analytical mean ms: {model['total']:.2f} = forward {model['forward']:.2f} + batch "
        f"wait {model['batch_wait']:.2f} + pre-prepare/prepare/commit {model['agreement']:.2f}"
        f"{approx}",
        f"  blocks {summary['blocks']} ({summary['requests_per_block']:g} tx/block); per block: "
        f"{summary['messages_per_block']:g} messages, {summary['bytes_per_block']:g} bytes",
        f"  view changes {summary['view_changes']}; safety violations {len(summary['violations'])}",
        f"  wall {summary['wall_s']:.2f} s, {summary['wall_s_per_simulated_s']:.3f} wall s per "
        f"simulated s ({summary['cpu_s_per_simulated_s']:.3f} CPU s); "
        f"trace {summary['trace_digest'][:16]}",
    ]
    lines.extend(f"  violation: {v}" for v in summary["violations"])
    return "\n".join(lines)


def run(options: argparse.Namespace) -> int:
    config = config_from_options(options)
    # The run's own cost; simulated logic never sees these clocks. CPU time is printed too:
    # on a shared machine it is the steadier figure.
    started, cpu_started = time.perf_counter(), time.process_time()
    result = run_experiment(config)
    wall_s = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    simulated_s = max(result.simulated_s, 1e-9)
    summary = result.summary()
    summary["wall_s"] = round(wall_s, 3)
    summary["wall_s_per_simulated_s"] = round(wall_s / simulated_s, 4)
    summary["cpu_s"] = round(cpu_s, 3)
    summary["cpu_s_per_simulated_s"] = round(cpu_s / simulated_s, 4)
    emit(options, summary, _text(summary))
    return 1 if result.violations else 0
