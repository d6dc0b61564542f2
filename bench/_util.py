"""Small helpers shared by the benchmarks: medians of repeated runs, a table printer and a
timed ``ibledger`` command."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable


def timed_cli(*args: str, check: bool = True) -> float:
    """Run ``ibledger ARGS`` as a child process (output captured); its seconds."""
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ibledger.cli.main", *args],
        check=check,
        capture_output=True,
        env=os.environ.copy(),
    )
    return time.perf_counter() - began


def median_rate(run: Callable[[], int], repeats: int) -> tuple[float, list[float]]:
    """Run ``run`` (which returns how many operations it did) ``repeats`` times; ops/s median."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        count = run()
        rates.append(count / (time.perf_counter() - started))
    return statistics.median(rates), rates


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n{title}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")
