"""D4, disk full: one validator's data directory is on a small tmpfs that fills up under load.

The node must say so and stop (no vote or answer on state it could not record, no restart loop),
the other three go on committing, and once space is freed a plain restart brings it back: it
opens its ledger and catches up, every replica holds every acknowledged transaction exactly once
with the same blocks and state roots, and its audit log, on the same disk, still verifies. Needs
root (mount); skipped with the reason otherwise.

Deadlines bound hangs only: a slow machine fills the disk later, never fails the test."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos import harness
from tests.integration.cluster import Cluster, run_cli

pytestmark = pytest.mark.slow

FULL = "full"
TMPFS_SIZE = "32m"
LEFT_FREE = 256 * 1024  # what the filler leaves: a few blocks' worth of writes


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "mount and umount are needed"
    return None


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[tuple[Cluster, Path]]:
    reason = _unavailable()
    if reason is not None:
        pytest.skip(reason)
    cluster = harness.create_cluster(tmp_path / "network")
    data = cluster.directory / "nodes" / "node3" / "data"
    data.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(data)], check=True
    )
    try:
        yield cluster, data
    finally:
        cluster.down()
        subprocess.run(["umount", "-l", str(data)], check=False)


def _fill(data: Path) -> Path:
    filler = data / "filler"
    stat = os.statvfs(data)
    room = stat.f_bavail * stat.f_frsize - LEFT_FREE
    with filler.open("wb") as out:
        chunk = b"\0" * (1 << 20)
        while room > 0:
            room -= out.write(chunk[: min(len(chunk), room)])
    return filler


def _wait(what: str, condition: object, timeout_s: float = harness.HANG_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_a_full_disk_stops_the_node_cleanly_and_it_rejoins_once_space_is_freed(
    mounted: tuple[Cluster, Path],
) -> None:
    cluster, data = mounted
    harness.start(cluster)
    load = harness.Load(cluster, threads=2, seed=4)
    campaign = harness.Campaign(cluster, load, random.Random(4), log=lambda _: None)
    pid = harness.node_pid(cluster, "node3")
    assert pid is not None
    load.start()
    try:
        cluster.wait_heights_at_least(cluster.node_ids, 3, harness.HANG_S)
        filler = _fill(data)
        # The node's writes fail for want of space: it stops, once, and says why.
        _wait("node3 to stop on the full disk", lambda: not harness.alive(pid))
        load.down("node3")
        log = (cluster.directory / "nodes" / "node3" / "node.log").read_text(errors="replace")
        assert "No space left on device" in log or "ENOSPC" in log, log[-3000:]
        assert log.count('"event": "starting"') == 1, "the node was restarted without being asked"
        # The others commit without it (3 of 4 are a quorum).
        others = [n for n in cluster.node_ids if n != "node3"]
        height = max(cluster.status(n).height for n in others)
        cluster.wait_heights_at_least(others, height + 3, harness.HANG_S)

        filler.unlink()
        campaign.restart("node3")
        load.up("node3")
        row = campaign.check_row("disk-full", [], 1, None)
    finally:
        load.stop()
    harness.assert_row_clean(cluster, row)
    # Its audit log, also on the full disk, is still one intact chain across the stop.
    genesis = str(cluster.directory / "genesis.json")
    report = run_cli("audit", "verify", str(data / "audit"), "--genesis", genesis, "--json")
    assert json.loads(report.stdout)["ok"] is True, report.stdout
