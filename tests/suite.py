"""The whole suite as four pytest processes: `make test` runs this.

The real-process tests (marked ``slow``: node processes, networks, campaigns) spend much of
their time waiting on those processes, for view-change time-outs and for catch-up, while the
rest of the suite is pure CPU. Run one after the other they took about 15 minutes on a 2-core
machine; side by side, the pure tests fill the waits. The loopback real-process tests stay in
one process, one after another, because their module-scoped networks must not share a machine's
time with each other more than they already do; the network-namespace tests, whose validators
sit in namespaces of their own, run in a third. A fourth takes a few long real-process tests
once the pure tests are done (marked ``late``), so two networks then share the machine where
one network and the pure tests did.

Each process writes to its own log; the logs are printed whole when all have finished (the
pure one first), then one line per process with its exit status and time. The exit status is
the first non-zero one, so a failure in any fails `make test`. Extra arguments go to every
process (``python -m tests.suite -x``).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .process_group import stop_process_group

# Long real-process tests (marked ``late``) start only once the pure group has finished, in a
# second loopback process: from then on two networks share the machine where one network and
# the pure tests did, and the real-process group no longer holds the whole critical path.
GROUPS: tuple[tuple[str, list[str], str | None], ...] = (
    ("pure", ["-m", "not slow"], None),
    ("real processes", ["-m", "slow and not netns and not late", "--durations=12"], None),
    # Validators in network namespaces: their own network stacks and ports, so they run beside
    # the loopback networks without sharing a port space; skipped, saying why, without root.
    ("network namespaces", ["-m", "netns"], None),
    ("late real processes", ["-m", "slow and late and not netns"], "pure"),
)


@dataclass
class Run:
    name: str
    process: subprocess.Popen[bytes]
    output: IO[bytes]
    began: float
    seconds: float = 0.0
    status: int | None = None


def start(name: str, args: list[str], extra: list[str], scratch: Path) -> Run:
    output = (scratch / f"{name.replace(' ', '-')}.log").open("w+b")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, *extra]
    process = subprocess.Popen(
        command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
    )
    return Run(name, process, output, time.monotonic())


def main(argv: list[str] | None = None) -> int:
    extra = sys.argv[1:] if argv is None else argv
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ibledger-suite-") as directory:
        scratch = Path(directory)
        runs = [start(name, args, extra, scratch) for name, args, after in GROUPS if after is None]
        waiting = [(name, args, after) for name, args, after in GROUPS if after is not None]
        print(f"running the suite as {len(GROUPS)} processes: " + ", ".join(g[0] for g in GROUPS))
        sys.stdout.flush()
        try:
            while waiting or any(r.status is None for r in runs):
                for run in runs:
                    if run.status is None and run.process.poll() is not None:
                        run.status = run.process.returncode
                        run.seconds = time.monotonic() - run.began
                        print(f"{run.name}: finished in {run.seconds:.0f} s", flush=True)
                finished = {r.name for r in runs if r.status is not None}
                for group in [g for g in waiting if g[2] in finished]:
                    waiting.remove(group)
                    runs.append(start(group[0], group[1], extra, scratch))
                time.sleep(0.5)
        except KeyboardInterrupt:
            for run in runs:
                stop_process_group(run.process, 30)
            raise
        for run in runs:
            run.output.seek(0)
            print(f"\n===== {run.name} =====", flush=True)
            sys.stdout.buffer.write(run.output.read())
            sys.stdout.flush()
            run.output.close()
    print()
    for run in runs:
        print(f"{run.name}: exit status {run.status}, {run.seconds:.0f} s")
    print(f"suite: {time.monotonic() - began:.0f} s")
    # pytest exits 5 when a group selects no test (say, -k matching only the other group).
    statuses = [r.status for r in runs if r.status not in (0, 5)]
    if statuses:
        return statuses[0] or 1
    return 0 if any(r.status == 0 for r in runs) else 5


if __name__ == "__main__":
    sys.exit(main())
