"""D3, a damaged LevelDB on a real validator: detect, refuse, rebuild from a peer.

Two validators are damaged in turn, in one network run. Each is killed under load; then node3's
newest LevelDB log has one byte in its middle flipped, and node2's loses the second half of its
newest log (a tail cut short after it was synced, which LevelDB alone would reopen without a
word, the node then missing blocks it had voted on). Each next start must refuse (LevelDB's
checksums, opened with ``paranoid_checks``; the store's synced-write witness for the cut tail):
the node names the damage and exits, so it neither serves nor votes, while the other three go
on committing. The documented rebuild (docs/operations.md, "Backup and restore") then runs as
an operator would: move the damaged ledger aside, take an online backup of a healthy validator,
restore it into the node (verified block by block against the genesis validators) and start
it, and it catches up from its peers. Afterwards every acknowledged transaction is on every
replica exactly once, with the same blocks and state roots, and no node signed conflicting
votes.

Deadlines bound hangs only."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.chaos import harness

from .cluster import run_cli

# Long: tests/suite.py runs it in its late process.
pytestmark = [pytest.mark.slow, pytest.mark.late]


def _flip_a_byte_mid_log(ledger: Path) -> str:
    log = _newest_log(ledger)
    data = bytearray(log.read_bytes())
    # Inside the first record's payload (a record header is 7 bytes): covered by its checksum.
    at = min(len(data) // 2, 4096)
    data[at] ^= 0xFF
    log.write_bytes(bytes(data))
    return "corrupt"


def _cut_the_log_tail(ledger: Path) -> str:
    log = _newest_log(ledger)
    data = log.read_bytes()
    log.write_bytes(data[: len(data) // 2])
    return "lost synced writes"


def _newest_log(ledger: Path) -> Path:
    logs = sorted(ledger.glob("*.log"), key=lambda p: p.stat().st_size)
    assert logs and logs[-1].stat().st_size > 4096, sorted(p.name for p in ledger.iterdir())
    return logs[-1]


def _damage_refuse_and_rebuild(
    cluster: harness.Cluster,
    load: harness.Load,
    campaign: harness.Campaign,
    node: str,
    damage: Callable[[Path], str],
    backups: Path,
) -> dict[str, Any]:
    node_dir = cluster.directory / "nodes" / node
    height = max(cluster.status(n).height for n in cluster.node_ids if n != node)
    cluster.wait_heights_at_least(cluster.node_ids, height + 5, harness.HANG_S)
    load.down(node)
    harness.kill9(cluster, node)
    ledger = node_dir / "data" / "ledger"
    named = damage(ledger)

    # It refuses to start on the damaged ledger, naming the damage; `network up` says which node.
    since = harness.log_size(cluster, node)
    assert not harness.network_up(cluster)
    assert harness.node_pid(cluster, node) is None or not harness.alive(
        harness.node_pid(cluster, node) or 0
    )
    with (node_dir / "node.log").open("rb") as handle:
        handle.seek(since)
        tail = handle.read().decode(errors="replace")
    assert '"event": "start-failed"' in tail, tail[-2000:]
    assert "corrupt" in tail.lower() and named in tail, tail[-2000:]
    # The other three go on without it.
    others = [n for n in cluster.node_ids if n != node]
    height = max(cluster.status(n).height for n in others)
    cluster.wait_heights_at_least(others, height + 3, harness.HANG_S)

    # The rebuild, step by step as docs/operations.md gives it.
    ledger.rename(ledger.with_name("ledger.damaged"))
    backup = backups / f"{node}-from-node0.backup"
    network = ["--network", str(cluster.directory)]
    run_cli("node", "backup", *network, "--node", "node0", "--out", str(backup))
    run_cli("node", "restore", "--from", str(backup), *network, "--node", node)
    time.sleep(1.0)  # the others move past the backup: the node must fetch the rest
    campaign.restart(node)
    load.up(node)
    return campaign.check_row(f"damaged-ledger-{node}", [], 1, None)


def test_a_damaged_ledger_is_refused_and_rebuilt_from_a_peer(tmp_path: Path) -> None:
    cluster = harness.create_cluster(tmp_path / "network")
    harness.start(cluster)
    load = harness.Load(cluster, threads=2, seed=3)
    campaign = harness.Campaign(cluster, load, random.Random(3), log=lambda _: None)
    rows = []
    load.start()
    try:
        for node, damage in (("node3", _flip_a_byte_mid_log), ("node2", _cut_the_log_tail)):
            rows.append(_damage_refuse_and_rebuild(cluster, load, campaign, node, damage, tmp_path))
    finally:
        load.stop()
        cluster.down()
    for row in rows:
        harness.assert_row_clean(cluster, row)
