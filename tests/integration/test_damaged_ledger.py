"""D3, a damaged LevelDB on a real validator: detect, refuse, rebuild from a peer.

node3 is killed under load and one byte in the middle of its newest LevelDB log is flipped. Its
next start must refuse (LevelDB's checksums, opened with ``paranoid_checks``; the node names the
damage and exits, so it neither serves nor votes), while the other three go on committing. The
documented rebuild (docs/operations.md, "Backup and restore") then runs as an operator would:
move the damaged ledger aside, take an online backup of a healthy validator, restore it into
node3 (verified block by block against the genesis validators) and start node3, which catches up
from its peers. Afterwards every acknowledged transaction is on every replica exactly once, with
the same blocks and state roots, and no node signed conflicting votes.

Deadlines bound hangs only."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.chaos import harness

from .cluster import run_cli

pytestmark = pytest.mark.slow

DAMAGED = "node3"


def _flip_a_byte_mid_log(ledger: Path) -> Path:
    logs = sorted(ledger.glob("*.log"), key=lambda p: p.stat().st_size)
    assert logs and logs[-1].stat().st_size > 64, sorted(p.name for p in ledger.iterdir())
    log = logs[-1]
    data = bytearray(log.read_bytes())
    # Inside the first record's payload (a record header is 7 bytes): covered by its checksum.
    at = min(len(data) // 2, 4096)
    data[at] ^= 0xFF
    log.write_bytes(bytes(data))
    return log


def test_a_damaged_ledger_is_refused_and_rebuilt_from_a_peer(tmp_path: Path) -> None:
    cluster = harness.create_cluster(tmp_path / "network")
    harness.start(cluster)
    load = harness.Load(cluster, threads=2, seed=3)
    campaign = harness.Campaign(cluster, load, random.Random(3), log=lambda _: None)
    node_dir = cluster.directory / "nodes" / DAMAGED
    load.start()
    try:
        cluster.wait_heights_at_least(cluster.node_ids, 5, harness.HANG_S)
        load.down(DAMAGED)
        harness.kill9(cluster, DAMAGED)
        ledger = node_dir / "data" / "ledger"
        _flip_a_byte_mid_log(ledger)

        # It refuses to start on the damaged ledger, naming it; `network up` says which node.
        since = harness.log_size(cluster, DAMAGED)
        assert not harness.network_up(cluster)
        assert harness.node_pid(cluster, DAMAGED) is None or not harness.alive(
            harness.node_pid(cluster, DAMAGED) or 0
        )
        with (node_dir / "node.log").open("rb") as handle:
            handle.seek(since)
            tail = handle.read().decode(errors="replace")
        assert '"event": "start-failed"' in tail, tail[-2000:]
        assert "corrupt" in tail.lower(), tail[-2000:]
        # The other three go on without it.
        others = [n for n in cluster.node_ids if n != DAMAGED]
        height = max(cluster.status(n).height for n in others)
        cluster.wait_heights_at_least(others, height + 3, harness.HANG_S)

        # The rebuild, step by step as docs/operations.md gives it.
        ledger.rename(ledger.with_name("ledger.damaged"))
        backup = tmp_path / "node0.backup"
        network = ["--network", str(cluster.directory)]
        run_cli("node", "backup", *network, "--node", "node0", "--out", str(backup))
        run_cli("node", "restore", "--from", str(backup), *network, "--node", DAMAGED)
        time.sleep(1.0)  # the others move past the backup: node3 must fetch the rest
        campaign.restart(DAMAGED)
        load.up(DAMAGED)
        row = campaign.check_row("damaged-ledger", [], 1, None)
    finally:
        load.stop()
        cluster.down()
    assert row["acknowledged"] > 0, row
    assert row["found_exactly_once"] == row["acknowledged"], row
    assert row["forks"] == 0 and row["state_root_mismatches"] == 0, row
    assert row["conflicting_votes"] == 0, harness.vote_conflicts(cluster)[1]
