"""The standard suite `make bench` runs (about five minutes a run), into one results folder:

    python -m bench suite [DIR] [--runs N]   (default bench-results/suite-<UTC timestamp>)

1. closed loop, 1 client, 20 s;
2. closed loop, 100 clients in 2 processes, 20 s;
3. an open-loop sweep over 200:1400:300 tx/s, 8 s a rate, then 70 % of saturation;
4. open loop at 200 tx/s for 30 s, the primary killed at 10 s, 1 s base view-change timeout.

Each step runs on its own fresh 4-node network and lands in a sub-folder, with its plots
(``run-K/`` per run when ``--runs`` is above 1).  Before the first step and after the last the
suite measures the raw limits it is judged against (``bench.yardstick``: one-thread Ed25519
verify, synced LevelDB batches, a grpc.aio round trip), and it ends with ``targets.json`` and
``targets.md``: each step's figures per run, their medians, and the targets that are ratios to
those limits (saturation against the verification ceiling, recovery after the kill).  The
figures depend on the machine and its load: compare ratios measured in one run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import results, yardstick

STEPS: tuple[tuple[str, list[str]], ...] = (
    ("closed-1", ["--clients", "1", "--duration", "20", "--warmup", "3"]),
    ("closed-100", ["--clients", "100", "--processes", "2", "--duration", "20", "--warmup", "5"]),
    ("sweep", ["--sweep", "200:1400:300", "--duration", "8", "--warmup", "2", "--drain", "5"]),
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
REPLICAS = 4
SATURATION_SHARE_MIN = 0.35  # of the verification ceiling (issue targets)
RECOVERY_S_MAX = 2.0  # back to 90 % of the pre-fault throughput, 1 s view-change timeout

Figures = dict[str, float | None]


def step_figures(folder: Path) -> Figures:
    """The figures the targets use from one step's folder (``results.figures``), or none when
    the step left no results."""
    sweep_file = folder / results.SWEEP_FILE
    if not (sweep_file.is_file() or (folder / results.RUN_FILE).is_file()):
        return {}
    every = results.figures(folder)
    if sweep_file.is_file():
        saturation = every["saturation tx/s"]
        points = json.loads(sweep_file.read_text()).get("points", [])
        top = max((p["requested_tx_per_s"] for p in points), default=None)
        return {
            "saturation tx/s": saturation,
            # 1 when even the sweep's highest rate kept up: the saturation is only a lower bound.
            "saturation at the sweep's top": (
                None if saturation is None or top is None else float(saturation >= top)
            ),
            "p99 ms at 70 %": every["p99 ms at 70 %"],
        }
    figures: Figures = {key: every[key] for key in ("committed tx/s", "p50 ms", "p99 ms")}
    if "fault 1 recovery s" in every:
        figures["recovery s"] = every["fault 1 recovery s"]
    return figures


def _median(values: Sequence[float | None]) -> float | None:
    # A run without the figure (a recovery never seen, a step that failed) counts as worst:
    # a median must not hide it.
    if not values:
        return None
    ordered = sorted(math.inf if v is None else v for v in values)
    middle = statistics.median(ordered)
    return None if math.isinf(middle) else middle


def summarize(
    per_run: Sequence[Mapping[str, Figures]],
    limits: Mapping[str, Mapping[str, float]],
    cores: int,
) -> dict[str, Any]:
    """Medians over the runs, and the targets judged against the raw limits of this run."""
    steps = [name for name, _ in STEPS]
    medians: dict[str, Figures] = {}
    for step in steps:
        keys = sorted({key for run in per_run for key in run.get(step, {})})
        medians[step] = {
            key: _median([run.get(step, {}).get(key) for run in per_run]) for key in keys
        }
    verify = min(float(side["ed25519_verify_per_s_one_thread"]) for side in limits.values())
    ceiling = verify * cores / REPLICAS
    saturation = medians.get("sweep", {}).get("saturation tx/s")
    recovery = medians.get("kill-primary", {}).get("recovery s")
    # The median run's saturation was the sweep's highest rate: only a lower bound.
    at_top = medians.get("sweep", {}).get("saturation at the sweep's top") == 1.0
    targets = [
        {
            "target": "saturation / verification ceiling (one-thread verify x cores / replicas)"
            + (" (a lower bound: the sweep kept up at its highest rate)" if at_top else ""),
            "measured": None if saturation is None else round(saturation / ceiling, 3),
            "goal": f">= {SATURATION_SHARE_MIN}",
            "met": saturation is not None and saturation / ceiling >= SATURATION_SHARE_MIN,
        },
        {
            "target": "seconds until throughput is back to 90 % after the primary is killed",
            "measured": recovery,
            "goal": f"<= {RECOVERY_S_MAX}",
            "met": recovery is not None and recovery <= RECOVERY_S_MAX,
        },
    ]
    return {
        "runs": len(per_run),
        "cores": cores,
        "limits": dict(limits),
        "verification_ceiling_tx_per_s": round(ceiling, 1),
        "per_run": list(per_run),
        "medians": medians,
        "targets": targets,
    }


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def render(summary: Mapping[str, Any]) -> str:
    runs = summary["runs"]
    lines = [f"Standard suite, {runs} run(s); each cell the median (per run in brackets)", ""]
    lines += ["| step | figure | median | runs |", "|---|---|---|---|"]
    for step, figures in summary["medians"].items():
        for key, value in figures.items():
            each = ", ".join(_cell(run.get(step, {}).get(key)) for run in summary["per_run"])
            lines.append(f"| {step} | {key} | {_cell(value)} | {each} |")
    lines += ["", "| target | measured | goal | met |", "|---|---|---|---|"]
    for target in summary["targets"]:
        met = "yes" if target["met"] else "no"
        lines.append(
            f"| {target['target']} | {_cell(target['measured'])} | {target['goal']} | {met} |"
        )
    limits = summary["limits"]
    lines += [
        "",
        f"Machine: {summary['cores']} cores. Raw limits before / after the steps: Ed25519 verify "
        f"{_cell(limits['before']['ed25519_verify_per_s_one_thread'])} / "
        f"{_cell(limits['after']['ed25519_verify_per_s_one_thread'])} per s on one thread "
        f"(ceiling {_cell(summary['verification_ceiling_tx_per_s'])} tx/s from the lower), "
        f"synced LevelDB batches {_cell(limits['before']['leveldb_synced_batches_per_s'])} / "
        f"{_cell(limits['after']['leveldb_synced_batches_per_s'])} per s, grpc.aio round trip "
        f"{_cell(limits['before']['grpc_aio_round_trip_us'])} / "
        f"{_cell(limits['after']['grpc_aio_round_trip_us'])} us.",
    ]
    return "\n".join(lines) + "\n"


def _run_steps(out: Path, stamp: str) -> tuple[dict[str, Figures], bool]:
    out.mkdir(parents=True, exist_ok=True)
    index = []
    failed = False
    figures: dict[str, Figures] = {}
    for name, step in STEPS:
        command = [
            sys.executable,
            "-m",
            "ibledger.cli.main",
            "bench",
            "--fresh",
            "--nodes",
            str(REPLICAS),
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
        figures[name] = step_figures(out / name)
    (out / "index.json").write_text(json.dumps({"started_utc": stamp, "steps": index}, indent=2))
    return figures, failed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench suite")
    parser.add_argument("dir", nargs="?", type=Path, help="results folder")
    parser.add_argument("--runs", type=int, default=1, help="repeat the steps (medians)")
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if options.runs < 1:
        parser.error("--runs must be at least 1")
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out: Path = options.dir or Path("bench-results") / f"suite-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    print("measuring the raw limits ...", flush=True)
    limits = {"before": yardstick.measure()}
    per_run = []
    failed = False
    for number in range(1, options.runs + 1):
        folder = out if options.runs == 1 else out / f"run-{number}"
        figures, run_failed = _run_steps(folder, stamp)
        per_run.append(figures)
        failed |= run_failed
    limits["after"] = yardstick.measure()
    summary = summarize(per_run, limits, os.cpu_count() or 1)
    (out / "targets.json").write_text(json.dumps(summary, indent=2))
    table = render(summary)
    (out / "targets.md").write_text(table)
    print("\n" + table)
    print(f"suite results: {out}" + ("  (some steps failed or were INVALID)" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
