"""``python -m tests.chaos`` (``make chaos``): the longer fault campaigns and their summary table.

    python -m tests.chaos [--out DIR] [--seed N] [--rounds N] [--kinds KIND,...]

Four validators on this machine under client load take faults of each kind in turn: a crash and
an I/O error at every named failpoint, ``kill -9`` of the primary and of a backup, ``SIGSTOP``
and ``SIGCONT`` of each. As root, with ``ip`` and ``nft``, a second network with one network
namespace per validator host then takes partitions: an isolated primary, an isolated backup, a
2-2 split and an asymmetric partition (a host that sends but receives nothing). After each kind
the replicas' chains are compared and the client history is checked against them.

The table (one row per kind, and one over everything) is printed and written as ``summary.json``
and ``summary.md`` to ``--out`` (default ``chaos-results/chaos-<UTC time>``); the exit status is
1 when any row found a lost or duplicated transaction, a fork or a state-root mismatch."""

from __future__ import annotations

import argparse
import datetime
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ibledger.node import failpoints

from . import harness

LOCAL_KINDS = (
    "failpoint-crash",
    "failpoint-error",
    "kill-primary",
    "kill-backup",
    "pause-primary",
    "pause-backup",
)
PARTITION_KINDS = (
    "partition-primary",
    "partition-backup",
    "split-2-2",
    "asymmetric",
    "swizzle-clog",
)
# An I/O error where the storage could fail: the block and checkpoint writes and the consensus
# records (the other points are not I/O).
ERROR_POINTS = [
    "ledger.before-block-write",
    "ledger.before-checkpoint-write",
    "consensus.before-persist",
    "audit.before-write",
]
COLUMNS = [
    ("fault_kind", "fault kind"),
    ("faults_injected", "faults injected"),
    ("acknowledged", "txs acknowledged"),
    ("found_exactly_once", "found exactly once"),
    ("forks", "forks"),
    ("state_root_mismatches", "state-root mismatches"),
    ("conflicting_votes", "conflicting votes"),
    ("recover_median_s", "recover median (s)"),
    ("recover_max_s", "recover max (s)"),
]


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for row in rows:
        cells = ["-" if row.get(key) is None else str(row[key]) for key, _ in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def failed(rows: list[dict[str, Any]]) -> list[str]:
    return [
        row["fault_kind"]
        for row in rows
        if row["found_exactly_once"] != row["acknowledged"]
        or row["forks"]
        or row["state_root_mismatches"]
        or row.get("conflicting_votes")
    ]


def run_local(
    root: Path, kinds: list[str], rounds: int, seed: int, say: Any, point_rounds: int = 1
) -> list[dict[str, Any]]:
    cluster = harness.create_cluster(root / "network")
    harness.start(cluster)
    load = harness.Load(cluster, threads=2, seed=seed)
    campaign = harness.Campaign(cluster, load, random.Random(seed), log=say)
    rows = []
    try:
        load.start()
        for kind in kinds:
            say(f"{kind}:")
            if kind == "failpoint-crash":
                points = sorted(failpoints.POINTS)
                rows.append(campaign.run(kind, point_rounds * len(points), points))
            elif kind == "failpoint-error":
                rows.append(campaign.run(kind, point_rounds * len(ERROR_POINTS), ERROR_POINTS))
            else:
                rows.append(campaign.run(kind, rounds))
            say("  " + json.dumps(rows[-1]))
        rows.append(campaign.check_row("all local faults", campaign.faults,
                                       sum(r["faults_injected"] for r in rows),
                                       None))  # fmt: skip
    finally:
        load.stop()
        cluster.down()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--out", type=Path, help="results directory")
    parser.add_argument("--seed", type=int, help="random seed (printed; default: from the clock)")
    parser.add_argument("--rounds", type=int, default=2, help="faults per kill or pause kind")
    parser.add_argument(
        "--point-rounds",
        type=int,
        default=1,
        help="faults per failpoint in the failpoint kinds (default 1; the full C7 loop is 20)",
    )
    parser.add_argument("--kinds", help="comma-separated kinds (default: all)")
    options = parser.parse_args(argv)
    seed = options.seed if options.seed is not None else int(time.time())
    kinds = options.kinds.split(",") if options.kinds else [*LOCAL_KINDS, *PARTITION_KINDS]
    unknown = [k for k in kinds if k not in (*LOCAL_KINDS, *PARTITION_KINDS)]
    if unknown:
        parser.error(f"unknown fault kinds: {', '.join(unknown)}")
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = options.out or Path("chaos-results") / f"chaos-{stamp}"
    began = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - began:6.1f} s] {text}", flush=True)

    say(f"seed {seed}")
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ibledger-chaos-") as scratch:
        local = [k for k in kinds if k in LOCAL_KINDS]
        if local:
            rows += run_local(
                Path(scratch) / "local", local, options.rounds, seed, say, options.point_rounds
            )
        partitions = [k for k in kinds if k in PARTITION_KINDS]
        if partitions:
            from . import partitions as netns_campaign

            reason = netns_campaign.unavailable_reason()
            if reason is None:
                rows += netns_campaign.run(
                    Path(scratch) / "netns", partitions, options.rounds, seed, say
                )
            else:
                notes.append(f"partitions not run: {reason}")
                say(notes[-1])
    seconds = round(time.monotonic() - began, 1)
    out.mkdir(parents=True, exist_ok=True)
    report = {"seed": seed, "seconds": seconds, "rows": rows, "notes": notes}
    (out / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(rows)
    text = f"Seed {seed}, {seconds} s.\n\n{table}" + "".join(f"\n{n}\n" for n in notes)
    (out / "summary.md").write_text(text)
    print()
    print(text)
    print(f"written to {out}/summary.json and summary.md")
    bad = failed(rows)
    if bad:
        print(f"FAILED: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
