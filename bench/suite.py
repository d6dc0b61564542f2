"""The standard suite `make bench` runs (about five minutes), into one results folder:

    python -m bench suite [DIR]      (default bench-results/suite-<UTC timestamp>)

1. closed loop, 1 client, 20 s;
2. closed loop, 100 clients in 2 processes, 20 s;
3. an open-loop sweep over 100:700:150 tx/s, 8 s a rate, then 70 % of saturation;
4. open loop at 200 tx/s for 30 s, the primary killed at 10 s, 1 s base view-change timeout.

Each step runs on its own fresh 4-node network and lands in a sub-folder, with its plots; the
suite prints each step's table and ends with ``index.json`` naming them.  The figures depend
on the machine and its load: they are indicative, for comparing runs made side by side.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

STEPS: tuple[tuple[str, list[str]], ...] = (
    ("closed-1", ["--clients", "1", "--duration", "20", "--warmup", "3"]),
    ("closed-100", ["--clients", "100", "--processes", "2", "--duration", "20", "--warmup", "5"]),
    ("sweep", ["--sweep", "100:700:150", "--duration", "8", "--warmup", "2", "--drain", "5"]),
    (
        "kill-primary",
        [
            "--rate",
            "200",
            "--duration",
            "30",
            "--warmup",
            "3",
            "--fault",
            "kill-primary@10s",
            "--view-change-timeout-ms",
            "1000",
        ],
    ),
)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args[0]) if args else Path("bench-results") / f"suite-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    index = []
    failed = False
    for name, step in STEPS:
        command = [
            sys.executable,
            "-m",
            "ibledger.cli.main",
            "bench",
            "--fresh",
            "--nodes",
            "4",
            *step,
            "--title",
            name,
            "--out",
            str(out / name),
            "--no-progress",
        ]
        print(f"\n== {name}: ibledger bench {' '.join(command[4:])}", flush=True)
        code = subprocess.run(command, check=False).returncode
        index.append({"step": name, "dir": name, "exit_status": code, "args": step})
        failed |= code != 0
    (out / "index.json").write_text(json.dumps({"started_utc": stamp, "steps": index}, indent=2))
    print(f"\nsuite results: {out}" + ("  (some steps failed or were INVALID)" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
