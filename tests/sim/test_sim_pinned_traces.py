"""The pinned runs replay exactly: a refactoring of the core that keeps the message order keeps
every fingerprint in pinned_traces.txt (see pinned_traces.py)."""

from __future__ import annotations

from .pinned_traces import PINNED_RUNS, compute, read_pinned, run_key


def test_the_pinned_file_covers_every_pinned_run() -> None:
    assert sorted(read_pinned()) == sorted(run_key(*run) for run in PINNED_RUNS)


def test_pinned_runs_replay_their_fingerprints() -> None:
    pinned = read_pinned()
    changed = [key for key, digest in compute().items() if pinned[key] != digest]
    assert not changed, f"{len(changed)} of {len(pinned)} pinned runs changed: {changed}"
