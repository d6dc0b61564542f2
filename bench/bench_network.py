"""A 4-node loopback network under a steady offered load: committed tx/s and latency.

    python -m bench network [--rate TX_PER_S] [--seconds S] [--nodes N] [--batch-ms MS]
                            [--crypto SUITE] [--eager-blocks K] [--json]

It creates a fresh network in a temporary directory (``ibledger network init`` / ``up``), signs
all transactions beforehand, then offers them open-loop at ``--rate`` through ``SubmitBatch``,
round-robin over the nodes, one batch every ``--batch-ms``.  A block stream from node0 timestamps
each commit; latency is submit-to-commit as that client sees it.  The network is stopped at the
end.  The figure is only valid when the offered load was actually sent (it is printed).
``--eager-blocks`` sets the genesis parameter of that name (``network init`` writes 1; 0 makes
the primary wait for the batch timeout, as before eager proposals existed), so the open-loop
tail can be compared with and without them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

from ibledger.cli.client import api_channel
from ibledger.cli.manifest import load_manifest
from ibledger.consensus import request_id
from ibledger.node.crypto import ED25519_SHA256, SUITE_NAMES, load_private_key
from ibledger.node.jsonfile import update_genesis
from ibledger.node.tx import build_transaction
from ibledger.proto import ledger_pb2, ledger_pb2_grpc

from .engine import chain_hash


def _cli(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "ibledger.cli.main", *args],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench network")
    parser.add_argument("--rate", type=int, default=1000, help="offered tx/s")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--batch-ms", type=int, default=20)
    parser.add_argument("--crypto", choices=SUITE_NAMES, default=ED25519_SHA256)
    parser.add_argument(
        "--eager-blocks",
        type=int,
        default=None,
        help="the genesis eager_blocks (default: what network init writes)",
    )
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args(argv)
    report = run_network(options)
    if options.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"\nNetwork of {options.nodes} nodes on loopback ({options.crypto}), offered "
        f"{options.rate} tx/s for {options.seconds:.0f} s in batches every {options.batch_ms} ms"
    )
    for key, value in report.items():
        print(f"  {key:<28} {value}")


def run_network(options: argparse.Namespace) -> dict[str, object]:
    """A fresh network of ``options.crypto``, loaded as the module docstring says; its report."""
    with tempfile.TemporaryDirectory() as workdir:
        directory = Path(workdir) / "network"
        _cli(
            "network", "init", "--nodes", str(options.nodes), "--dir", str(directory),
            "--crypto", options.crypto,
        )  # fmt: skip
        # All the load is signed by one identity: lift its per-sender quota, which would
        # otherwise measure the admission policy instead of consensus.
        admission = {
            "sender_pending_max": 10_000_000,
            "sender_rate_per_s": 1_000_000,
            "sender_burst": 10_000_000,
        }
        changes: dict[str, object] = {"admission": admission}
        if getattr(options, "eager_blocks", None) is not None:
            changes["consensus"] = {"eager_blocks": options.eager_blocks}
        update_genesis(directory / "genesis.json", changes)
        _cli("network", "up", "--dir", str(directory))
        try:
            return _run_load(directory, options)
        finally:
            _cli("network", "down", "--dir", str(directory))


def _run_load(directory: Path, options: argparse.Namespace) -> dict[str, object]:
    manifest = load_manifest(directory)
    admin = load_private_key(manifest.identities["ADMIN"].key_file)
    total = int(options.rate * options.seconds)
    envelopes = [
        build_transaction(
            admin,
            chain_id=manifest.chain_id,
            sender="ADMIN",
            operation="identity.update_details",
            args={"participant": "CSDC", "name": f"Registrar revision {n}"},
            nonce=n + 1,
            expires_at_ms=int(time.time() * 1000) + 3_600_000,
        )
        for n in range(total)
    ]
    # Matched by request id: an anonymous block stream withholds the envelopes themselves.
    hash_fn = chain_hash(manifest)
    ids = [request_id(e, hash_fn) for e in envelopes]
    stubs = [
        ledger_pb2_grpc.LedgerStub(
            api_channel(f"{n.api.host}:{n.api.port}", manifest.ca_cert, n.id)
        )
        for n in manifest.nodes
    ]
    committed_at: dict[bytes, float] = {}
    blocks: list[int] = []  # transactions per block of the measured load
    start_height = stubs[0].GetStatus(ledger_pb2.GetStatusRequest()).height + 1
    stream = stubs[0].StreamBlocks(ledger_pb2.StreamBlocksRequest(from_height=start_height))

    def watch() -> None:
        try:
            for block in stream:
                now = time.perf_counter()
                blocks.append(len(block.request_ids))
                for rid in block.request_ids:
                    committed_at.setdefault(rid, now)
        except grpc.RpcError:
            pass

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    submitted_at: dict[bytes, float] = {}
    rejected = 0
    started = time.perf_counter()
    sent = 0
    batch_index = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - started) * options.rate), sent + 1000)
        if due > sent:
            now = time.perf_counter()
            response = stubs[batch_index % len(stubs)].SubmitBatch(
                ledger_pb2.SubmitBatchRequest(envelopes=envelopes[sent:due])
            )
            for tx_id, result in zip(ids[sent:due], response.results, strict=True):
                if result.status == ledger_pb2.REJECTED:
                    rejected += 1
                else:
                    submitted_at[tx_id] = now
            sent = due
            batch_index += 1
        time.sleep(options.batch_ms / 1000)
    send_seconds = time.perf_counter() - started
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline and len(committed_at) < len(submitted_at):
        time.sleep(0.1)
    stream.cancel()
    latencies = [
        (committed_at[t] - submitted_at[t]) * 1000 for t in submitted_at if t in committed_at
    ]
    last_commit = max(committed_at.values(), default=started)
    return {
        "offered_tx_per_s": round(total / send_seconds, 1),
        "committed": f"{len(latencies)} of {len(submitted_at)} admitted ({rejected} rejected)",
        "committed_tx_per_s": round(len(latencies) / (last_commit - started), 1),
        "latency_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "latency_p99_ms": round(_percentile(latencies, 0.99), 1) if latencies else None,
        "latency_max_ms": round(max(latencies), 1) if latencies else None,
        # Per-block work (votes, synced writes) is paid once per block: how many it took.
        "blocks": len(blocks),
        "tx_per_block": round(statistics.mean(blocks), 1) if blocks else None,
    }


if __name__ == "__main__":
    main()
