"""Pinned run fingerprints: a refactoring of the consensus core that keeps the message order must
reproduce these runs exactly (`test_sim_pinned_traces.py` compares them).

A fingerprint covers more than the simulator's trace digest (every delivery with its sender,
receiver, message type and signature prefix, every submission, fault, state transfer, view
change and execution, in order): it adds the number of events, the height reached, when the run
converged, and the simulator's statistics, which sum every honest replica's drop and protocol
counters. A change that only reorders or drops an internal effect still shows, since a crashing
replica cuts its effect list at a seeded position.

After a deliberate behaviour change, rewrite the file with
`python -m tests.sim.pinned_traces --write` and say in the commit why the runs changed.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from ibledger.sim.runner import SimResult, run_seed

PINNED_FILE = Path(__file__).with_name("pinned_traces.txt")
# (seed, n, heavy): every fault kind, crash mode and Byzantine mode appear in this set.
PINNED_RUNS: tuple[tuple[int, int, bool], ...] = (
    *((seed, 4, False) for seed in range(1, 51)),
    *((seed, 7, False) for seed in range(1, 51)),
    *((seed, 4, True) for seed in range(1, 4)),
)


def fingerprint(result: SimResult) -> str:
    """A SHA-256 over everything a run shows from outside, in a fixed order."""
    fields = (
        result.trace_digest,
        result.events,
        result.height,
        result.converged_at_ms,
        tuple(sorted(result.stats.items())),
        tuple(result.violations),
    )
    return hashlib.sha256(repr(fields).encode()).hexdigest()


def run_key(seed: int, n: int, heavy: bool) -> str:
    return f"{seed} {n} {'heavy' if heavy else 'light'}"


def compute() -> dict[str, str]:
    return {
        run_key(seed, n, heavy): fingerprint(run_seed(seed, n, heavy=heavy))
        for seed, n, heavy in PINNED_RUNS
    }


def read_pinned() -> dict[str, str]:
    """`<seed> <n> <heavy|light> <fingerprint>` per line."""
    pinned: dict[str, str] = {}
    for line in PINNED_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            seed, n, mode, digest = line.split()
            pinned[f"{seed} {n} {mode}"] = digest
    return pinned


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim.pinned_traces", description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite the pinned file")
    args = parser.parse_args(argv)
    computed = compute()
    if args.write:
        lines = ["# seed n mode fingerprint (see pinned_traces.py)"]
        lines += [f"{key} {digest}" for key, digest in computed.items()]
        PINNED_FILE.write_text("\n".join(lines) + "\n")
        print(f"wrote {len(computed)} fingerprints")
        return 0
    pinned = read_pinned()
    changed = [key for key, digest in computed.items() if pinned.get(key) != digest]
    for key in changed:
        print(f"changed: {key}")
    print(f"{len(computed)} runs, {len(changed)} changed")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
