"""Start-up time against chain height: a restarted node's ledger open and time to ready.

    python -m bench startup [--heights 100,2000] [--txs-per-block N] [--repeats R] [--json]

It creates a fresh 4-node network in a temporary directory, drives it to each height in turn
with small signed batches, and at each height stops node3 (SIGTERM) and measures, on its data
directory:

* ``open tail:1000`` — ``Ledger.open`` as nodes opened it before the verified-height record:
  every block of the last 1,000 re-verified, commit certificates included;
* ``open recorded`` — ``Ledger.open(verify="recorded")``, what a node does now: only blocks above
  the record, and the tip block;
* ``restart to ready`` — ``ibledger network up`` restarting node3 until its ``/readyz`` answers,
  and the ``ledger opened`` seconds the node itself logged.

Both opens use the node's own commit-certificate check, and each is the median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ibledger.cli.client import api_channel
from ibledger.cli.manifest import load_manifest
from ibledger.node.config import load_node_config
from ibledger.node.crypto import load_private_key
from ibledger.node.ledger import Ledger
from ibledger.node.server import Node
from ibledger.node.tx import build_transaction
from ibledger.proto import ledger_pb2, ledger_pb2_grpc

from ._util import timed_cli


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench startup")
    parser.add_argument("--heights", default="100,2000", help="comma-separated heights")
    parser.add_argument("--txs-per-block", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", type=Path, help="build the network here and leave it (stopped)")
    options = parser.parse_args(argv)
    heights = sorted(int(h) for h in options.heights.split(","))

    with tempfile.TemporaryDirectory() as workdir:
        directory = options.keep or Path(workdir) / "network"
        timed_cli("network", "init", "--nodes", "4", "--dir", str(directory))
        genesis_path = directory / "genesis.json"
        genesis = json.loads(genesis_path.read_text())
        genesis["admission"].update(
            sender_pending_max=10_000_000, sender_rate_per_s=1_000_000, sender_burst=10_000_000
        )
        genesis_path.write_text(json.dumps(genesis, indent=2))
        timed_cli("network", "up", "--dir", str(directory))
        try:
            rows = [_measure(directory, height, options) for height in heights]
        finally:
            timed_cli("network", "down", "--dir", str(directory))
    if options.json:
        print(json.dumps(rows, indent=2))
        return
    print("\nRestarted node3 of 4: seconds to open its ledger, and to be ready again")
    print(f"  {'height':>7} {'open tail:1000':>15} {'open recorded':>14} {'node logged':>12} "
          f"{'start to listening':>19} {'restart to ready':>17}")  # fmt: skip
    for row in rows:
        print(
            f"  {row['height']:>7} {row['open_tail_1000_s']:>15.3f} "
            f"{row['open_recorded_s']:>14.3f} {row['node_logged_open_s']:>12.3f} "
            f"{row['node_start_to_listening_s']:>19.3f} {row['restart_to_ready_s']:>17.2f}"
        )


def _seconds_between(first: str, second: str) -> float:
    def parse(stamp: str) -> float:
        return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    return round(parse(second) - parse(first), 3)


class _Load:
    nonce = 0


def _drive_to(directory: Path, height: int, txs_per_block: int) -> int:
    manifest = load_manifest(directory)
    admin = load_private_key(manifest.identities["ADMIN"].key_file)
    node = manifest.nodes[0]
    stub = ledger_pb2_grpc.LedgerStub(
        api_channel(f"{node.api.host}:{node.api.port}", manifest.ca_cert, node.id)
    )
    current = int(stub.GetStatus(ledger_pb2.GetStatusRequest(), timeout=5).height)
    while current < height:
        envelopes = []
        for _ in range(txs_per_block):
            _Load.nonce += 1
            envelopes.append(
                build_transaction(
                    admin,
                    chain_id=manifest.chain_id,
                    sender="ADMIN",
                    operation="identity.update_details",
                    args={"participant": "CSDC", "name": f"Registrar revision {_Load.nonce}"},
                    nonce=_Load.nonce,
                    expires_at_ms=int(time.time() * 1000) + 3_600_000,
                )
            )
        stub.SubmitBatch(ledger_pb2.SubmitBatchRequest(envelopes=envelopes), timeout=10)
        time.sleep(0.02)
        current = int(stub.GetStatus(ledger_pb2.GetStatusRequest(), timeout=5).height)
    return current


def _measure(directory: Path, height: int, options: argparse.Namespace) -> dict[str, Any]:
    reached = _drive_to(directory, height, options.txs_per_block)
    time.sleep(1.0)  # let node3 execute what node0 has
    node_dir = directory / "nodes" / "node3"
    pid = int((node_dir / "node.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    while Path(f"/proc/{pid}").exists():
        time.sleep(0.05)
    config = load_node_config(node_dir / "node.toml")
    check = Node(config)._certificate_check()
    ledger_dir = config.data_dir / "ledger"

    def open_time(mode: str) -> float:
        times = []
        for _ in range(options.repeats):
            began = time.perf_counter()
            with Ledger.open(ledger_dir, config.genesis.raw, verify=mode, certificate_check=check):
                pass
            times.append(time.perf_counter() - began)
        return statistics.median(times)

    tail = open_time("tail:1000")
    recorded = open_time("recorded")
    restart = timed_cli("network", "up", "--dir", str(directory), "--timeout", "120")
    entries = list(map(json.loads, (node_dir / "node.log").read_text().splitlines()))
    start = max(i for i, e in enumerate(entries) if e.get("event") == "starting")
    logged = next(e for e in entries[start:] if e.get("msg") == "ledger opened")
    listening = next(e for e in entries[start:] if e.get("msg") == "listening")
    return {
        "height": reached,
        "node3_height": logged["height"],
        "open_tail_1000_s": tail,
        "open_recorded_s": recorded,
        "node_logged_open_s": logged["seconds"],
        "node_start_to_listening_s": _seconds_between(entries[start]["ts"], listening["ts"]),
        "restart_to_ready_s": restart,
    }


if __name__ == "__main__":
    main()
