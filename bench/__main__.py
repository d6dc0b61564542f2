"""Run the benchmarks: `python -m bench` runs them all with their defaults;
`python -m bench NAME [options]` runs one (`python -m bench NAME --help` lists its options).
`python -m bench run [options]` is `ibledger bench [options]`, the load generator; `python -m
bench suite DIR` is the standard suite `make bench` runs; `python -m bench peer --bftsmart DIR`
measures BFT-SMaRt and ibledger side by side.  None of the three is part of the run-all."""

from __future__ import annotations

import importlib
import sys

BENCHES = {
    "verify": "bench.bench_verify",
    "ledger": "bench.bench_ledger",
    "consensus": "bench.bench_consensus",
    "network": "bench.bench_network",
    "fairness": "bench.bench_fairness",
    "suites": "bench.bench_suites",
    "startup": "bench.bench_startup",
    "yardstick": "bench.yardstick",
}
# Named only: a load run needs its options, and the suite takes minutes.
COMMANDS = {
    "run": "bench.cli",
    "suite": "bench.suite",
    "peer": "bench.peer",
    "endurance": "bench.bench_endurance",
}


def main() -> None:
    args = sys.argv[1:]
    if args and not args[0].startswith("-"):
        name, rest = args[0], args[1:]
        modules = BENCHES | COMMANDS
        if name not in modules:
            sys.exit(f"unknown benchmark {name!r}; choose from {', '.join(modules)}")
        importlib.import_module(modules[name]).main(rest)
        return
    for module in BENCHES.values():
        importlib.import_module(module).main(args)


if __name__ == "__main__":
    main()
