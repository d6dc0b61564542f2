"""BFT-SMaRt and ibledger side by side, closed loop, in one run on one machine:

    python -m bench peer --bftsmart DIR [--runs 3] [--quick] [--out DIR]

DIR is a git checkout of BFT-SMaRt (github.com/bft-smart/library) at commit 681cec8cf83e
(``bench.bftsmart.COMMIT``; ``$BFTSMART_DIR`` when ``--bftsmart`` is not given).  It is compiled
with javac against Debian's jars (the command names the packages to install when some are
missing) into DIR/build/ibledger-peer, once per commit.  Then, for 1 client and for 100 clients,
``--runs`` times, the two systems take turns (the order flips every run):

* BFT-SMaRt: four stock ThroughputLatencyServer replicas on loopback, durable (``rwd``: each
  replica writes and syncs every decided batch), the shipped configuration, and our client
  (``bench.bftsmart``): N threads, one ServiceProxy each, ``invokeOrdered`` of 200-byte requests;
* ibledger: ``ibledger bench --fresh --nodes 4 --clients N`` (a new network each run, every
  block synced before it is acknowledged), ``noop`` transactions padded to about 200 bytes,
  each client sending the next once the commit of the last was notified.

The figures are the medians over the runs of committed ops/s, p50 and p99, and the two ratios
the targets are set in: ibledger / BFT-SMaRt throughput at 100 clients (target >= 0.6) and
ibledger p50 / BFT-SMaRt p50 at 1 client (target <= 1.5).  With them go the machine's cores,
its load average and a one-core Ed25519 verify rate measured at the start and at the end.
Results: ``--out`` (default bench-results/peer-<UTC time>): peer.json, peer.md and one folder
per run with its logs.  Absolute figures move with the machine and its load; compare the ratios
of one run.  ``--quick`` shortens every window (a smoke run; its figures mean nothing).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import bftsmart, peer_report
from .bench_verify import single_core_rate

CLIENT_COUNTS = (1, 100)
REQUEST_BYTES = 200
IBLEDGER_PROCESSES = {1: 1, 100: 2}  # client processes: one core's Python is not enough for 100


@dataclass(frozen=True, slots=True)
class Window:
    """Seconds of warm-up and of measurement for one system at one client count."""

    warmup: float
    measure: float


# The JVM needs longer to warm up (JIT) than a fresh ibledger network; the measured windows of
# the two systems are equal.
WINDOWS: dict[tuple[str, int], Window] = {
    (peer_report.BFTSMART, 1): Window(30, 20),
    (peer_report.BFTSMART, 100): Window(60, 30),
    (peer_report.IBLEDGER, 1): Window(10, 20),
    (peer_report.IBLEDGER, 100): Window(15, 30),
}
QUICK_WINDOWS: dict[tuple[str, int], Window] = {
    (peer_report.BFTSMART, 1): Window(5, 5),
    (peer_report.BFTSMART, 100): Window(8, 5),
    (peer_report.IBLEDGER, 1): Window(2, 5),
    (peer_report.IBLEDGER, 100): Window(3, 5),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench peer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--bftsmart",
        type=Path,
        default=os.environ.get("BFTSMART_DIR"),
        help="a BFT-SMaRt git checkout at the benchmark's commit (default: $BFTSMART_DIR)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per system and client count")
    parser.add_argument("--quick", action="store_true", help="short windows: a smoke run")
    parser.add_argument("--out", type=Path, help="results folder (default bench-results/peer-*)")
    return parser


def check_options(options: argparse.Namespace) -> None:
    if options.bftsmart is None:
        raise bftsmart.PeerError(
            "BAD_ARGUMENT",
            "--bftsmart DIR (or $BFTSMART_DIR) names no checkout; get one with: git clone "
            f"{bftsmart.REPOSITORY} DIR && git -C DIR checkout {bftsmart.COMMIT}",
        )
    if options.runs < 1:
        raise bftsmart.PeerError("BAD_ARGUMENT", "--runs must be at least 1")


def machine_facts() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "java": _java_version(),
        "loadavg_start": _loadavg(),
    }


def _loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _java_version() -> str:
    try:
        done = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    except OSError:
        return "?"
    lines = (done.stderr or done.stdout).splitlines()
    return lines[0].strip() if lines else "?"


def run_ibledger(clients: int, run: int, window: Window, folder: Path) -> peer_report.Measurement:
    """One ``ibledger bench --fresh`` closed-loop run; its JSON summary is the measurement."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "ibledger.cli.main",
        "bench",
        "--fresh",
        "--nodes",
        "4",
        "--clients",
        str(clients),
        "--processes",
        str(IBLEDGER_PROCESSES.get(clients, 1)),
        "--workload",
        "noop",
        "--tx-size",
        str(REQUEST_BYTES),
        "--warmup",
        f"{window.warmup:g}",
        "--duration",
        f"{window.measure:g}",
        "--title",
        f"peer-ibledger-{clients}-{run}",
        "--out",
        str(folder / "bench"),
        "--json",
        "--no-progress",
    ]
    log = folder / "bench.log"
    with log.open("w") as handle:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=handle, text=True)
    (folder / "summary.json").write_text(done.stdout)
    if done.returncode != 0:
        raise bftsmart.PeerError(
            "PEER_IBLEDGER_FAILED", f"ibledger bench exited with {done.returncode}; see {log}"
        )
    try:
        return peer_report.from_bench_json(clients, run, done.stdout)
    except ValueError as exc:
        raise bftsmart.PeerError("PEER_IBLEDGER_FAILED", f"{exc}; see {log}") from None


def run_bftsmart(
    built: bftsmart.Build, clients: int, run: int, window: Window, folder: Path
) -> peer_report.Measurement:
    report = bftsmart.run(built, folder, clients, window.warmup, window.measure, REQUEST_BYTES)
    if report.late_threads:
        raise bftsmart.PeerError(
            "PEER_BFTSMART_FAILED",
            f"{report.late_threads} client thread(s) still waited on a reply "
            f"{bftsmart.DRAIN_S:g} s after the window; see {folder}",
        )
    return peer_report.from_records(
        peer_report.BFTSMART, clients, run, report.records, window.measure, str(folder)
    )


def _line(m: peer_report.Measurement) -> str:
    return (
        f"  {peer_report.LABELS[m.system]:<16} {m.clients:>3} clients, run {m.run}: "
        f"{m.committed_ops_per_s:8.1f} ops/s  p50 {m.p50_ms:8.2f} ms  p99 {m.p99_ms:8.2f} ms  "
        f"unanswered {m.unanswered}"
    )


def measure(options: argparse.Namespace) -> dict[str, Any]:
    check_options(options)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out: Path = options.out or Path("bench-results") / f"peer-{stamp}"
    checkout = Path(options.bftsmart).resolve()
    bftsmart.check_packages()  # before anything is written
    bftsmart.check_checkout(checkout)
    print(f"building BFT-SMaRt in {checkout / bftsmart.BUILD_DIR} ...", file=sys.stderr)
    built = bftsmart.build(checkout, out / "build.log")
    out.mkdir(parents=True, exist_ok=True)
    windows = QUICK_WINDOWS if options.quick else WINDOWS
    machine = machine_facts()
    print("measuring Ed25519 verify on one core ...", file=sys.stderr)
    verify = [single_core_rate()]
    measurements: list[peer_report.Measurement] = []
    for clients in CLIENT_COUNTS:
        for run in range(1, options.runs + 1):
            order = list(peer_report.SYSTEMS)
            if run % 2 == 0:
                order.reverse()  # neither system always runs on the warmer machine
            for system in order:
                window = windows[(system, clients)]
                folder = out / f"{system}-{clients}-run{run}"
                if system == peer_report.BFTSMART:
                    m = run_bftsmart(built, clients, run, window, folder)
                else:
                    m = run_ibledger(clients, run, window, folder)
                measurements.append(m)
                print(_line(m), file=sys.stderr, flush=True)
    verify.append(single_core_rate())
    machine |= {"loadavg_end": _loadavg(), "ed25519_verify_per_s_1_core": verify}
    config = {
        "started_utc": stamp,
        "runs": options.runs,
        "quick": options.quick,
        "client_counts": list(CLIENT_COUNTS),
        "request_bytes": REQUEST_BYTES,
        "bftsmart_commit": built.commit,
        "bftsmart_mode": "rwd",
        "ibledger_processes": {str(k): v for k, v in IBLEDGER_PROCESSES.items()},
        "windows": ", ".join(
            f"{peer_report.LABELS[s]} {c}: {w.warmup:g}+{w.measure:g} s"
            for (s, c), w in windows.items()
        ),
    }
    doc = peer_report.document(measurements, config, machine)
    (out / "peer.json").write_text(json.dumps(doc, indent=2))
    table = peer_report.markdown(doc)
    (out / "peer.md").write_text(table + "\n")
    print(table)
    print(f"\nresults: {out}")
    return doc


def main(argv: list[str] | None = None) -> None:
    options = build_parser().parse_args(argv)
    try:
        measure(options)
    except bftsmart.PeerError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        sys.exit(2 if exc.code == "BAD_ARGUMENT" else 1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
