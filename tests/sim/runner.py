"""Run seeds: one at a time, in blocks, or from the regression list; print how to reproduce.

The engine lives in the installed package (`ibledger.sim`); this module keeps the seed-swarm
command line (`python -m tests.sim`) and the regression list, which belong to the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ibledger.sim.runner import SimResult, run_scenario, run_seed

__all__ = ["REGRESSION_FILE", "SimResult", "main", "regression_seeds", "run_scenario", "run_seed"]

REGRESSION_FILE = Path(__file__).with_name("regression_seeds.txt")


def regression_seeds() -> list[tuple[int, int, bool]]:
    """(seed, n, heavy) from regression_seeds.txt: `<seed> <n> [heavy]  # what it found`."""
    out: list[tuple[int, int, bool]] = []
    for line in REGRESSION_FILE.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        n = int(parts[1]) if len(parts) > 1 else 4
        out.append((int(parts[0]), n, "heavy" in parts[2:]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim", description=__doc__)
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SIM_SEED", "1")))
    parser.add_argument("--seeds", type=int, default=1, help="run this many consecutive seeds")
    parser.add_argument("--n", type=int, default=int(os.environ.get("SIM_N", "4")))
    parser.add_argument("--ed25519", action="store_true", help="real signatures (slower)")
    parser.add_argument(
        "--heavy",
        action="store_true",
        default=os.environ.get("SIM_HEAVY") == "1",
        help="three times longer fault phase, more faults and more requests",
    )
    parser.add_argument(
        "--real-ledger",
        action="store_true",
        default=os.environ.get("SIM_REAL_LEDGER") == "1",
        help="execute into the node's ledger and contracts over in-memory stores",
    )
    parser.add_argument(
        "--storage-faults",
        action="store_true",
        default=os.environ.get("SIM_STORAGE_FAULTS") == "1",
        help="with --real-ledger: more power-loss crashes and a failed storage write",
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    failures = 0
    started = time.process_time()
    for seed in range(args.seed, args.seed + args.seeds):
        result = run_seed(
            seed,
            args.n,
            ed25519=args.ed25519,
            heavy=args.heavy,
            real_ledger=args.real_ledger or args.storage_faults,
            storage_faults=args.storage_faults,
        )
        if not result.ok:
            failures += 1
            print(result.report())
        elif args.verbose or args.seeds == 1:
            print(
                f"ok seed={seed} n={args.n} height={result.height} events={result.events} "
                f"converged_at={result.converged_at_ms}ms trace={result.trace_digest[:16]}"
            )
            if args.verbose:
                print("  " + result.description)
                print("  " + " ".join(f"{k}={v}" for k, v in sorted(result.stats.items())))
    elapsed = time.process_time() - started
    print(f"{args.seeds} seeds, {failures} failures, {elapsed:.1f}s CPU")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
