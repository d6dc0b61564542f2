"""Run the benchmarks: `python -m bench` runs them all with their defaults;
`python -m bench NAME [options]` runs one (`python -m bench NAME --help` lists its options)."""

from __future__ import annotations

import importlib
import sys

BENCHES = {
    "verify": "bench.bench_verify",
    "ledger": "bench.bench_ledger",
    "consensus": "bench.bench_consensus",
    "network": "bench.bench_network",
    "fairness": "bench.bench_fairness",
    "startup": "bench.bench_startup",
}


def main() -> None:
    args = sys.argv[1:]
    if args and not args[0].startswith("-"):
        name, rest = args[0], args[1:]
        if name not in BENCHES:
            sys.exit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHES)}")
        importlib.import_module(BENCHES[name]).main(rest)
        return
    for module in BENCHES.values():
        importlib.import_module(module).main(args)


if __name__ == "__main__":
    main()
