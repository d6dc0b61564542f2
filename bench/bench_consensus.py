"""How many requests per CPU second the consensus core orders: n = 4 replicas in one process,
zero network delay, Ed25519 signatures (PyNaCl) on every consensus message.

Every request is ordered and executed on all four replicas (the executor is a hash chain), so
the figure is the whole cluster's ordering throughput on one core, the cost a node pays being
a quarter of it. Run: `.venv/bin/python bench/bench_consensus.py [--quick]`.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections import deque

from ibledger.consensus import (
    Broadcast,
    Effect,
    EffectDrain,
    Execute,
    Persist,
    PersistedState,
    Replica,
    ReplicaConfig,
    Send,
    SignedMessage,
)
from ibledger.sim.signing import Ed25519Signer, Ed25519Verifier

EPOCH_MS = 1_700_000_000_000


def run_once(requests: int, batch_size: int, request_bytes: int) -> tuple[float, int, int]:
    """CPU seconds to order `requests` on all replicas, plus messages and blocks."""
    members = ("r0", "r1", "r2", "r3")
    config = ReplicaConfig(
        members,
        batch_size_max=batch_size,
        batch_timeout_ticks=1,
        checkpoint_interval=32,
        watermark_window=128,
        pending_requests_max=requests + 1,
        status_interval_ticks=1000,
    )
    signers = {m: Ed25519Signer(m) for m in members}
    verifier = Ed25519Verifier({m: s.verify_key for m, s in signers.items()})
    replicas = {m: Replica(config, m, signers[m], verifier) for m in members}
    stores = {m: PersistedState() for m in members}
    roots = dict.fromkeys(members, b"")
    executed = dict.fromkeys(members, 0)
    queue: deque[tuple[str, SignedMessage]] = deque()
    payloads = [(b"%08d" % i).ljust(request_bytes, b"x") for i in range(requests)]
    messages = 0
    blocks = 0

    def drain(m: str, effects: list[Effect]) -> None:
        nonlocal blocks
        drain = EffectDrain(replicas[m], effects)
        for e in drain:
            if isinstance(e, Persist):
                stores[m].apply(e)
            elif isinstance(e, Broadcast):
                for dst in members:
                    if dst != m:
                        queue.append((dst, e.message))
            elif isinstance(e, Send):
                queue.append((e.to, e.message))
            elif isinstance(e, Execute):
                executed[m] += len(e.block.requests)
                if m == "r0":
                    blocks += 1
                roots[m] = hashlib.sha256(roots[m] + e.block.digest).digest()
                drain.executed(e, roots[m])

    now = EPOCH_MS
    started = time.process_time()
    for m in members:
        drain(m, replicas[m].tick(now))
    for payload in payloads:
        drain("r0", replicas["r0"].submit(payload, now))
    while min(executed.values()) < requests:
        now += 1
        for m in members:
            drain(m, replicas[m].tick(now))
        while queue:
            dst, sm = queue.popleft()
            messages += 1
            drain(dst, replicas[dst].step(sm))
    elapsed = time.process_time() - started
    return elapsed, messages, blocks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests and runs")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--request-bytes", type=int, default=250)
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 5)
    requests = 2_000 if args.quick else 20_000
    batches = (1, 16, 64) if args.quick else (1, 16, 64, 256)
    print(
        f"consensus core, n=4 in one process, zero network delay, Ed25519 (PyNaCl), "
        f"{args.request_bytes} B requests, median of {runs} runs"
    )
    print(f"{'batch':>6} {'requests':>9} {'req/CPU-s':>11} {'blocks/CPU-s':>13} {'msgs/CPU-s':>11}")
    for batch in batches:
        count = min(requests, 2_000) if batch == 1 else requests
        samples = [run_once(count, batch, args.request_bytes) for _ in range(runs)]
        cpu = statistics.median(s[0] for s in samples)
        _, msgs, blocks = samples[0]
        print(
            f"{batch:>6} {count:>9} {count / cpu:>11,.0f} {blocks / cpu:>13,.0f} "
            f"{msgs / cpu:>11,.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
