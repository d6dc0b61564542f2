"""A long run: node memory after many transactions, and a restart and catch-up on a long chain.

    python -m bench endurance [--transactions 1000000] [--blocks 0] [--batch-size N]
                              [--rate 500] [--chunk 300] [--workload bill] [--out DIR]

It starts a fresh 4-node network (``--batch-size`` sets the genesis ``batch_size_max``: small
blocks make a long chain sooner), lifts the per-sender quotas (the load is signed by few
identities), and offers ``ibledger bench`` open-loop load in chunks of ``--chunk`` seconds until
both ``--transactions`` committed and ``--blocks`` height are reached.  The rate should stay
below the network's saturation: an overloaded run measures its backlog, not the node.

After every chunk it records each node's resident set (``VmRSS``) and peak
(``VmHWM``) from ``/proc``, the height and the chunk's committed rate.

Then, with the load stopped:

* **restart**: node3 is stopped (SIGTERM) and started again with ``ibledger network up``, three
  times; each time the seconds until its ``/readyz`` answers, and the ledger-open seconds the node
  logged;
* **catch-up**: node3 is stopped, the load runs ``--catch-up-load`` seconds without it (the
  network's steady commit rate, in blocks/s, is measured over that time), then node3 starts
  again while the same load goes on; its catch-up rate is the blocks it gained from its restart
  until it held every block the others committed while it was down, divided by that time;
* **catch-up, load stopped**: the same, but node3 starts once the load has stopped. On one
  machine the four nodes share its cores, and under load the one catching up gets about a
  quarter of them; with the load stopped it has what a node on a host of its own would have.

Everything goes to ``DIR/endurance.json`` (and each chunk's ``ibledger bench`` folder beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ibledger.cli.client import api_channel
from ibledger.cli.manifest import load_manifest
from ibledger.node.jsonfile import update_genesis
from ibledger.proto import ledger_pb2, ledger_pb2_grpc

from ._util import timed_cli

RESTARTED = "node3"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench endurance")
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--blocks", type=int, default=0)
    parser.add_argument("--batch-size", type=int, help="the genesis batch_size_max")
    parser.add_argument("--rate", type=float, default=500.0, help="offered tx/s")
    parser.add_argument("--chunk", type=float, default=300.0, help="seconds of load per chunk")
    parser.add_argument("--catch-up-load", type=float, default=60.0)
    parser.add_argument("--workload", default="bill")
    parser.add_argument("--out", type=Path, help="results folder (default: a temporary one)")
    options = parser.parse_args(argv)
    out = options.out or Path(tempfile.mkdtemp(prefix="endurance-"))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        directory = Path(workdir) / "network"
        timed_cli("network", "init", "--nodes", "4", "--dir", str(directory))
        changes: dict[str, Any] = {
            "admission": {
                "sender_pending_max": 10_000_000,
                "sender_rate_per_s": 1_000_000,
                "sender_burst": 10_000_000,
            }
        }
        if options.batch_size is not None:
            changes["consensus"] = {"batch_size_max": options.batch_size}
        update_genesis(directory / "genesis.json", changes)
        timed_cli("network", "up", "--dir", str(directory))
        report: dict[str, Any] = {"options": {k: str(v) for k, v in vars(options).items()}}
        try:
            report["chunks"] = _load_until(directory, out, options)
            report["restart"] = [_restart(directory) for _ in range(3)]
            report["catch_up"] = _catch_up(directory, out, options, load_on=True)
            report["catch_up_quiet"] = _catch_up(directory, out, options, load_on=False)
        finally:
            (out / "endurance.json").write_text(json.dumps(report, indent=2))
            timed_cli("network", "down", "--dir", str(directory), check=False)
    _print(report, out)


def _print(report: dict[str, Any], out: Path) -> None:
    last = report["chunks"][-1]
    print(f"committed {last['committed_total']:,} transactions, height {last['height']:,}")
    for node, rss in sorted(last["rss_mb"].items()):
        print(f"  {node}: RSS {rss:.1f} MB, peak {last['hwm_mb'][node]:.1f} MB")
    ready = [r["restart_to_ready_s"] for r in report["restart"]]
    print(f"restart to ready: median {statistics.median(ready):.2f} s (runs {ready})")
    for key, when in (("catch_up", "load on"), ("catch_up_quiet", "load stopped")):
        catch = report[key]
        print(
            f"catch-up, {when}: {catch['catch_up_blocks_per_s']:.1f} blocks/s against the "
            f"network's {catch['steady_blocks_per_s']:.1f} ({catch['ratio']:.1f}x)"
        )
    print(f"results: {out / 'endurance.json'}")


def _stub(directory: Path, node_id: str) -> ledger_pb2_grpc.LedgerStub:
    manifest = load_manifest(directory)
    node = next(n for n in manifest.nodes if n.id == node_id)
    return ledger_pb2_grpc.LedgerStub(
        api_channel(f"{node.api.host}:{node.api.port}", manifest.ca_cert, node.id)
    )


def _height(directory: Path, node_id: str) -> int:
    status = _stub(directory, node_id).GetStatus(ledger_pb2.GetStatusRequest(), timeout=10)
    return int(status.height)


def _memory_mb(directory: Path) -> tuple[dict[str, float], dict[str, float]]:
    rss: dict[str, float] = {}
    hwm: dict[str, float] = {}
    for pid_file in sorted(directory.glob("nodes/*/node.pid")):
        node = pid_file.parent.name
        status = Path(f"/proc/{int(pid_file.read_text())}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss[node] = int(fields["VmRSS"].split()[0]) / 1024
        hwm[node] = int(fields["VmHWM"].split()[0]) / 1024
    return rss, hwm


def _bench(directory: Path, folder: Path, options: argparse.Namespace, seconds: float) -> Any:
    """One ``ibledger bench`` open-loop chunk against the network; its run.json summary."""
    run = subprocess.run(
        [
            sys.executable, "-m", "ibledger.cli.main", "bench", "--network", str(directory),
            "--rate", str(options.rate), "--duration", str(seconds), "--warmup", "0",
            "--workload", options.workload, "--no-progress", "--out", str(folder),
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if run.returncode != 0:
        sys.exit(f"ibledger bench failed (exit {run.returncode}):\n{run.stdout}{run.stderr}")
    return json.loads((folder / "run.json").read_text())["summary"]


def _load_until(directory: Path, out: Path, options: argparse.Namespace) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = []
    committed = 0
    began = time.monotonic()
    while True:
        summary = _bench(directory, out / f"chunk-{len(chunks):03d}", options, options.chunk)
        committed += round(summary["committed_tx_per_s"] * options.chunk)
        rss, hwm = _memory_mb(directory)
        height = _height(directory, "node0")
        chunks.append(
            {
                "elapsed_s": round(time.monotonic() - began, 1),
                "committed_tx_per_s": summary["committed_tx_per_s"],
                "p99_ms": summary["latency"]["p99_ms"],
                "committed_total": committed,
                "height": height,
                "rss_mb": rss,
                "hwm_mb": hwm,
            }
        )
        print(json.dumps(chunks[-1]), flush=True)
        (out / "chunks.json").write_text(json.dumps(chunks, indent=2))
        if committed >= options.transactions and height >= options.blocks:
            return chunks


def _stop(directory: Path, node_id: str) -> None:
    pid = int((directory / "nodes" / node_id / "node.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    while Path(f"/proc/{pid}").exists():
        time.sleep(0.05)


def _restart(directory: Path) -> dict[str, Any]:
    time.sleep(2.0)  # the restarted node has executed what the others have
    _stop(directory, RESTARTED)
    ready = timed_cli("network", "up", "--dir", str(directory), "--timeout", "300")
    log = directory / "nodes" / RESTARTED / "node.log"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    opened = [e for e in entries if e.get("msg") == "ledger opened"][-1]
    return {
        "height": opened["height"],
        "ledger_open_s": opened["seconds"],
        "restart_to_ready_s": round(ready, 3),
    }


def _catch_up(
    directory: Path, out: Path, options: argparse.Namespace, *, load_on: bool
) -> dict[str, Any]:
    time.sleep(2.0)
    stopped_at = _height(directory, RESTARTED)
    _stop(directory, RESTARTED)
    first = _height(directory, "node0")
    name = "catch-up" if load_on else "catch-up-quiet"
    _bench(directory, out / f"{name}-down", options, options.catch_up_load)
    gap_end = _height(directory, "node0")
    steady = (gap_end - first) / options.catch_up_load
    command = [
        sys.executable, "-m", "ibledger.cli.main", "bench", "--network", str(directory),
        "--rate", str(options.rate), "--duration", str(options.catch_up_load),
        "--warmup", "0", "--workload", options.workload, "--no-progress",
        "--out", str(out / f"{name}-up"),
    ]  # fmt: skip
    load = (
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if load_on
        else None
    )
    try:
        # The gap is what the others committed while node3 was down; the time runs from its
        # start (start-up included) until it holds every block of that gap.
        began = time.monotonic()
        timed_cli("network", "up", "--dir", str(directory), "--timeout", "300")
        while _height(directory, RESTARTED) < gap_end:
            time.sleep(0.1)
        seconds = time.monotonic() - began
    finally:
        if load is not None:
            load.wait()
    rate = (gap_end - stopped_at) / seconds
    return {
        "load_on": load_on,
        "restarted_height_when_stopped": stopped_at,
        "network_height_at_restart": gap_end,
        "seconds": round(seconds, 3),
        "steady_blocks_per_s": round(steady, 2),
        "catch_up_blocks_per_s": round(rate, 2),
        "ratio": round(rate / steady, 2) if steady else None,
    }


if __name__ == "__main__":
    main()
