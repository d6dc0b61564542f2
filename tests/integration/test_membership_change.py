"""Membership at a height on a running network (contracts/membership.py, node/epochs.py).

Five validators run under load. A consortium admin removes node4 by governance: the approving
block schedules epoch 1, the old set orders up to the first checkpoint a watermark window
ahead, and every running node hands over to the four remaining validators there without a
restart. node4 leaves at that height (it logs why and exits). node3, killed before the end and
started after it, finishes the old set's part from its peers and catches up in the new set;
node1, killed and restarted after the change, resumes in the new set. Every acknowledged
transaction is on every remaining replica exactly once with equal blocks and state roots, no
node signed conflicting votes, and nothing after the hand-over is certified by node4.

Deadlines bound hangs only."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from ibledger.consensus import decode_commit_certificate
from ibledger.proto import ledger_pb2
from tests.chaos import harness

from .cluster import Cluster, run_cli

pytestmark = pytest.mark.slow

REMOVED = "node4"
LAGGARD = "node3"
RESTARTED = "node1"


def test_a_validator_is_removed_at_the_agreed_height_under_load(tmp_path: Path) -> None:
    cluster = Cluster.create(
        tmp_path / "network",
        view_change_timeout_ms=harness.VIEW_CHANGE_TIMEOUT_MS,
        checkpoint_interval=harness.CHECKPOINT_INTERVAL,
        admission=harness.LOAD_ADMISSION,
        nodes=5,
    )
    harness.start(cluster)
    load = harness.Load(cluster, threads=2, seed=5)
    campaign = harness.Campaign(cluster, load, random.Random(5), log=lambda _: None)
    remaining = [n for n in cluster.node_ids if n != REMOVED]
    load.start()
    try:
        cluster.wait_heights_at_least(cluster.node_ids, 5, harness.HANG_S)
        result = run_cli(
            "governance", "propose", "remove-validator", REMOVED, "--as", "ADMIN",
            "--network", str(cluster.directory), "--node", cluster.address("node0"), "--json",
        )  # fmt: skip
        receipt = json.loads(result.stdout)
        assert receipt["code"] == "OK" and receipt["executed"] is True, receipt
        scheduled_at, from_height = int(receipt["height"]), int(receipt["from_height"])
        end = from_height - 1
        assert end % harness.CHECKPOINT_INTERVAL == 0
        assert end >= scheduled_at + 4 * harness.CHECKPOINT_INTERVAL
        load.down(REMOVED)
        # node3 goes down before the end and comes back after it: it must finish the old set's
        # part from its peers, then catch up in the new set.
        load.down(LAGGARD)
        harness.kill9(cluster, LAGGARD)

        # The others go on past the hand-over, without a restart.
        running = [n for n in remaining if n != LAGGARD]
        cluster.wait_heights_at_least(running, from_height + 20, harness.HANG_S)
        campaign.restart(LAGGARD)
        load.up(LAGGARD)
        cluster.wait_heights_at_least(remaining, from_height + 40, harness.HANG_S)
        # A validator restarted in the new set resumes in it.
        load.down(RESTARTED)
        harness.kill9(cluster, RESTARTED)
        campaign.restart(RESTARTED)
        load.up(RESTARTED)
        height = max(cluster.status(n).height for n in remaining)
        cluster.wait_heights_at_least(remaining, height + 10, harness.HANG_S)
        # node4 orders up to the end, then leaves, saying why.
        deadline = time.monotonic() + harness.HANG_S
        while harness.alive(harness.node_pid(cluster, REMOVED) or 0):
            assert time.monotonic() < deadline, "node4 did not leave"
            time.sleep(0.2)
        log = (cluster.directory / "nodes" / REMOVED / "node.log").read_text()
        retired = [json.loads(line) for line in log.splitlines() if '"event": "retired"' in line]
        assert retired and retired[0]["height"] == end, retired
        row = campaign.check_row("membership-change", [], 1, None, nodes=remaining)
        signers = _certificate_signers(cluster, "node0", end - 1, end + 3)
    finally:
        load.stop()
        cluster.down()
    assert row["acknowledged"] > 0, row
    assert row["found_exactly_once"] == row["acknowledged"], row
    assert row["forks"] == 0 and row["state_root_mismatches"] == 0, row
    assert row["conflicting_votes"] == 0, harness.vote_conflicts(cluster)[1]
    # The blocks up to the end carry the old set's certificates; those after, the new set's.
    for height, signed in signers.items():
        if height <= end:
            assert set(signed) <= set(cluster.node_ids), (height, signed)
        else:
            assert REMOVED not in signed and set(signed) <= set(remaining), (height, signed)


def _certificate_signers(
    cluster: Cluster, node: str, first: int, last: int
) -> dict[int, list[str]]:
    stub, viewer = cluster.stub(node), cluster.session(node)
    signers = {}
    for height in range(first, last + 1):
        block = stub.GetBlock(ledger_pb2.GetBlockRequest(height=height, viewer=viewer), timeout=10)
        certificate = decode_commit_certificate(block.certificate)
        signers[height] = [replica for replica, _ in certificate.signatures]
    return signers
