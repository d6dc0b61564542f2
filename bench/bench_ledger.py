"""Ledger write path: blocks/s and tx/s appended to LevelDB with sync=True.

    python -m bench ledger [--blocks N] [--txs-per-block K] [--repeats R] [--no-sync]

Each run appends N blocks of K signed envelopes to a fresh database in a temporary directory.
The signatures are verified once beforehand (as admission does), so the run measures what a
committed block costs the ledger: envelope decoding, the verified-cache look-up, execution,
the Merkle root, the write set and one synced WriteBatch.  Execution is a stand-in contract that
writes one 120-byte state value per transaction, so that the figure is about the ledger rather
than any one business rule.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Mapping
from typing import Any

from ibledger.contracts import runtime
from ibledger.node.crypto import generate_keypair
from ibledger.node.ledger import Ledger
from ibledger.node.tx import build_transaction, decode_envelope

from ._util import median_rate, print_table

GENESIS_TIME_MS = 1_767_225_600_000


def _stand_in_execute(state: Any, call: Any, ctx: Any) -> Any:
    return runtime.Outcome(
        code="OK",
        message="",
        writes=((b"bench/" + ctx.tx_id, b"v" * 120),),
        events=(),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench ledger")
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--txs-per-block", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-sync", action="store_true")
    options = parser.parse_args(argv)

    admin = generate_keypair()
    genesis: Mapping[str, Any] = {
        "chain_id": "bench",
        "crypto_suite": "ed25519-sha256",
        "genesis_time_ms": GENESIS_TIME_MS,
        "participants": [
            {
                "id": "ADMIN",
                "name": "Operator",
                "roles": ["consortium_admin"],
                "keys": [{"suite": "ed25519-sha256", "public_key": admin.public_key.hex()}],
            }
        ],
        "governance": {"admin_quorum": 1},
    }
    total = options.blocks * options.txs_per_block
    envelopes = [
        build_transaction(
            admin,
            chain_id="bench",
            sender="ADMIN",
            operation="asset.transfer",
            args={"isin": "CND10006PJH0", "to": "BANK_B", "quantity": 1000, "memo": "x" * 80},
            nonce=n,
            expires_at_ms=GENESIS_TIME_MS + 12 * 3600 * 1000,
        )
        for n in range(total)
    ]
    size = len(envelopes[0])
    original_execute = runtime.execute
    runtime.execute = _stand_in_execute
    try:

        def run() -> int:
            with tempfile.TemporaryDirectory() as directory:
                ledger = Ledger.open(directory, genesis, sync=not options.no_sync)
                ledger.verifier.verify([decode_envelope(e) for e in envelopes])  # admission
                for height in range(options.blocks):
                    chunk = envelopes[
                        height * options.txs_per_block : (height + 1) * options.txs_per_block
                    ]
                    header = ledger.next_header(GENESIS_TIME_MS + (height + 1) * 1000, chunk)
                    ledger.append_block(header, chunk, certificate=b"c" * 200)
                ledger.close()
            blocks: int = options.blocks
            return blocks

        started = time.perf_counter()
        blocks_rate, runs = median_rate(run, options.repeats)
        elapsed = time.perf_counter() - started
    finally:
        runtime.execute = original_execute
    print_table(
        f"Ledger append, {options.blocks} blocks x {options.txs_per_block} txs of {size} B, "
        f"sync={'off' if options.no_sync else 'on'}, median of {options.repeats} runs "
        f"({elapsed:.1f} s in all)",
        [
            ("blocks/s", f"{blocks_rate:,.1f}  (runs: {', '.join(f'{r:,.1f}' for r in runs)})"),
            ("tx/s", f"{blocks_rate * options.txs_per_block:,.0f}"),
        ],
    )


if __name__ == "__main__":
    main()
