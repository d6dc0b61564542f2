"""One bank floods, another keeps working: the per-sender quota's effect.

    python -m bench fairness [--seconds S] [--rate-quota R] [--flood-factor K] [--json]

A fresh 4-node network whose genesis gives every sender a quota of ``R`` tx/s (burst ``2R``,
``4R`` pending).  A closed-loop client for CIB submits one transaction at a time and waits for
its commit, first alone for ``S`` seconds, then for ``S`` seconds while ICBC offers ``K`` times
its quota open loop through ``SubmitBatch`` on every node.  The figure is the ratio of CIB's
latency percentiles with and without the flood, measured in one run on one machine; the
flooder's admitted and refused counts show that the quota, not luck, held it back.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from ibledger.cli.client import Client, api_channel
from ibledger.cli.manifest import load_manifest
from ibledger.node.crypto import load_private_key
from ibledger.node.tx import build_transaction
from ibledger.proto import ledger_pb2, ledger_pb2_grpc

from .bench_network import _cli, _percentile


def _victim(directory: Path, seconds: float) -> list[float]:
    """CIB's submit-to-commit latencies (ms), one transaction at a time."""
    latencies: list[float] = []
    with Client.from_network(directory, "CIB") as client:
        deadline = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            started = time.perf_counter()
            client.submit("identity.update_details", {"participant": "CIB", "name": f"CIB {n}"})
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def _flood(directory: Path, rate: int, seconds: float, counts: dict[str, int]) -> None:
    manifest = load_manifest(directory)
    key = load_private_key(manifest.identities["ICBC"].key_file)
    total = int(rate * seconds)
    envelopes = [
        build_transaction(
            key,
            chain_id=manifest.chain_id,
            sender="ICBC",
            operation="identity.update_details",
            args={"participant": "ICBC", "name": f"flood {n}"},
            expires_at_ms=int(time.time() * 1000) + 3_600_000,
        )
        for n in range(total)
    ]
    stubs = [
        ledger_pb2_grpc.LedgerStub(
            api_channel(f"{n.api.host}:{n.api.port}", manifest.ca_cert, n.id)
        )
        for n in manifest.nodes
    ]
    started = time.perf_counter()
    sent = batch = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - started) * rate))
        if due > sent:
            response = stubs[batch % len(stubs)].SubmitBatch(
                ledger_pb2.SubmitBatchRequest(envelopes=envelopes[sent:due]), timeout=30
            )
            for result in response.results:
                key_name = "admitted" if result.status != ledger_pb2.REJECTED else result.code
                counts[key_name] = counts.get(key_name, 0) + 1
            sent, batch = due, batch + 1
        time.sleep(0.02)


def _summary(latencies: list[float]) -> dict[str, float | int]:
    return {
        "transactions": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(_percentile(latencies, 0.99), 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench fairness")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate-quota", type=int, default=50, help="each sender's tx/s quota")
    parser.add_argument("--flood-factor", type=int, default=10, help="flood = factor x quota")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args(argv)
    quota = options.rate_quota
    with tempfile.TemporaryDirectory() as workdir:
        directory = Path(workdir) / "network"
        _cli("network", "init", "--nodes", "4", "--dir", str(directory))
        genesis_path = directory / "genesis.json"
        genesis = json.loads(genesis_path.read_text())
        genesis["admission"].update(
            sender_rate_per_s=quota, sender_burst=2 * quota, sender_pending_max=4 * quota
        )
        genesis_path.write_text(json.dumps(genesis, indent=2))
        _cli("network", "up", "--dir", str(directory))
        try:
            _victim(directory, 2.0)  # warm-up: connections, caches, first blocks
            alone = _victim(directory, options.seconds)
            counts: dict[str, int] = {}
            flooder = threading.Thread(
                target=_flood,
                args=(directory, quota * options.flood_factor, options.seconds + 2, counts),
                daemon=True,
            )
            flooder.start()
            time.sleep(1.0)  # let the flood reach its steady state
            flooded = _victim(directory, options.seconds)
            flooder.join(timeout=60)
        finally:
            _cli("network", "down", "--dir", str(directory))
    before, during = _summary(alone), _summary(flooded)
    report = {
        "quota_tx_per_s": quota,
        "flood_offered_tx_per_s": quota * options.flood_factor,
        "flooder": counts,
        "victim_alone": before,
        "victim_during_flood": during,
        "p50_ratio": round(during["p50_ms"] / before["p50_ms"], 3),
        "p99_ratio": round(during["p99_ms"] / before["p99_ms"], 3),
    }
    if options.json:
        print(json.dumps(report, indent=2))
        return
    for name, value in report.items():
        print(f"  {name:<24} {value}")


if __name__ == "__main__":
    main()
