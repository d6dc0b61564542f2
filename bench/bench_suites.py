"""The two crypto suites side by side, in one run: signatures per second raw and through the
batched verifier, and a 4-node network's committed tx/s and p50 latency on each.

    python -m bench suites [--count N] [--repeats R] [--workers W] [--rate TX_PER_S]
                           [--seconds S] [--no-network] [--json]

Raw rates are one thread on 250-byte messages (the size of a typical signed payload hash input
is smaller; 250 B keeps the figures comparable with ``openssl speed``).  The batched verifier is
the node's own (``node.verifier.BatchVerifier``), with a fresh verifier per run so its cache
never helps.  The network figures come from ``bench network`` with the same offered load for
both suites; the national suite's verification ceiling on this machine is its single-thread
verify rate x cores / 4 replicas, since every replica verifies every transaction once.

When ``gmalglib`` is installed its SM2 rates are printed too, as the library comparison the
README records (it is not a dependency).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from ibledger.node.crypto import SUITE_NAMES, generate_keypair, get_suite
from ibledger.node.tx import build_transaction, decode_envelope
from ibledger.node.verifier import BatchVerifier, SignerKey

from ._util import median_rate, print_table

MESSAGE = bytes(range(250))


def _suite_rates(name: str, count: int, repeats: int, workers: int) -> dict[str, float]:
    suite = get_suite(name)
    keypairs = [generate_keypair(name) for _ in range(16)]
    signatures = [suite.sign(keypairs[i % 16].seed, MESSAGE) for i in range(count)]
    items = [(keypairs[i % 16].public_key, MESSAGE, signatures[i]) for i in range(count)]

    def sign() -> int:
        seed = keypairs[0].seed
        for _ in range(count):
            suite.sign(seed, MESSAGE)
        return count

    def verify() -> int:
        assert all(suite.verify_many(items))
        return count

    directory = {k.key_id: SignerKey(f"P{i}", k.public_key) for i, k in enumerate(keypairs)}
    txs = [
        decode_envelope(
            build_transaction(
                keypairs[i % 16],
                chain_id="bench",
                sender=f"P{i % 16}",
                operation="bill.endorse",
                args={"bill": f"1{i:029d}", "to": "BANK_B", "amount": "100000.00"},
                nonce=i,
            ),
            hash_fn=suite.hash,
        )
        for i in range(count)
    ]

    def batched() -> int:
        with BatchVerifier(suite, directory.get, workers=workers) as verifier:
            assert all(v.ok for v in verifier.verify(txs))
        return count

    def hashing() -> int:
        for _ in range(count * 10):
            suite.hash(MESSAGE)
        return count * 10

    return {
        "sign_per_s": median_rate(sign, repeats)[0],
        "verify_per_s": median_rate(verify, repeats)[0],
        "batched_verify_per_s": median_rate(batched, repeats)[0],
        "hash_250B_per_s": median_rate(hashing, repeats)[0],
    }


def _gmalglib_rates(count: int, repeats: int) -> dict[str, float] | None:
    try:
        from gmalglib import sm2  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    secret, public = sm2.SM2().generate_keypair()
    signer = sm2.SM2(sk=secret, uid=sm2.SM2_DEFAULT_UID)
    signature = signer.sign(MESSAGE)

    def sign() -> int:
        for _ in range(count):
            signer.sign(MESSAGE)
        return count

    def verify() -> int:
        for _ in range(count):
            assert sm2.SM2(pk=public, uid=sm2.SM2_DEFAULT_UID).verify(MESSAGE, signature)
        return count

    return {
        "sign_per_s": median_rate(sign, repeats)[0],
        "verify_per_s": median_rate(verify, repeats)[0],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench suites")
    parser.add_argument("--count", type=int, default=3000, help="signatures per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--rate", type=int, default=1500, help="offered tx/s on each network")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--no-network", action="store_true", help="skip the 4-node runs")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args(argv)

    report: dict[str, Any] = {"cores": os.cpu_count(), "workers": options.workers}
    for name in SUITE_NAMES:
        report[name] = _suite_rates(name, options.count, options.repeats, options.workers)
    gmalglib = _gmalglib_rates(min(options.count, 1000), options.repeats)
    if gmalglib is not None:
        report["gmalglib-sm2"] = gmalglib
    if not options.no_network:
        from .bench_network import run_network

        for name in SUITE_NAMES:
            network = argparse.Namespace(
                rate=options.rate, seconds=options.seconds, nodes=4, batch_ms=20, crypto=name
            )
            report[name]["network"] = run_network(network)
    sm2 = report.get("sm2-sm3", {})
    ed = report.get("ed25519-sha256", {})
    if "verify_per_s" in sm2:
        sm2["verification_ceiling_tx_per_s"] = sm2["verify_per_s"] * (os.cpu_count() or 2) / 4
    if "network" in sm2 and "network" in ed:
        national = float(sm2["network"]["committed_tx_per_s"])
        goal = min(
            0.7 * float(ed["network"]["committed_tx_per_s"]),
            0.5 * sm2["verification_ceiling_tx_per_s"],
        )
        report["goal"] = {"national_tx_per_s": national, "goal_tx_per_s": round(goal, 1)}
        report["goal"]["met"] = national >= goal
    if options.json:
        print(json.dumps(report, indent=2, default=str))
        return
    for name in SUITE_NAMES:
        rows = [(key, _show(value)) for key, value in report[name].items() if key != "network"]
        rows += [
            (f"network {key}", _show(value))
            for key, value in report[name].get("network", {}).items()
        ]
        print_table(f"{name} (workers={options.workers})", rows)
    if gmalglib is not None:
        print_table("gmalglib SM2 (one thread)", [(k, _show(v)) for k, v in gmalglib.items()])
    if "goal" in report:
        print_table("goal", [(k, _show(v)) for k, v in report["goal"].items()])


def _show(value: object) -> str:
    return f"{value:,.0f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
