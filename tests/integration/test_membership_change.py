"""Membership at a height on a running network (contracts/membership.py, node/epochs.py).

Four validators run under load, and are never restarted for it. ``network add-node node4``
proposes node4 by governance (an admin quorum of 1: it executes at once), waits for the agreed
height, seeds node4 from an online backup of a member and registers it; once started, node4
catches up and votes in the five-validator set. ``network remove-node node3`` then removes
node3: the old set orders up to the first checkpoint a watermark window ahead, every running
node hands over to the four remaining validators there, node3 leaves at that height (it logs
why and exits) and is retired from network.json. node2, killed before that end and started
after it, finishes the old set's part from its peers and catches up in the new set; node1,
killed and restarted after the change, resumes in it. ``network rotate-key node0`` then gives
node0, the new set's first primary, a new signing key: it stops at the end of its set, and
started again votes with the new key. Every acknowledged transaction is on every remaining
replica exactly once with equal blocks and state roots, no node signed conflicting votes, and
nothing after the second hand-over is certified by node3.

Deadlines bound hangs only."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from ibledger.consensus import decode_commit_certificate
from ibledger.proto import ledger_pb2
from tests.chaos import harness

from .cluster import Cluster, run_cli

# Long: tests/suite.py runs it in its late process.
pytestmark = [pytest.mark.slow, pytest.mark.late]

ADDED = "node4"
REMOVED = "node3"
LAGGARD = "node2"
RESTARTED = "node1"
ROTATED = "node0"


def test_a_validator_is_added_and_another_removed_at_the_agreed_heights_under_load(
    tmp_path: Path,
) -> None:
    cluster = harness.create_cluster(tmp_path / "network")
    harness.start(cluster)
    load = harness.Load(cluster, threads=2, seed=5)
    campaign = harness.Campaign(cluster, load, random.Random(5), log=lambda _: None)
    network = ["--network", str(cluster.directory), "--json"]
    load.start()
    try:
        cluster.wait_heights_at_least(cluster.node_ids, 5, harness.HANG_S)
        added = json.loads(run_cli("network", "add-node", ADDED, "--as", "ADMIN", *network).stdout)
        joined_at = int(added["from_height"])
        assert added["seeded_height"] >= joined_at - 1, added
        assert (joined_at - 1) % harness.CHECKPOINT_INTERVAL == 0, added
        cluster.reload_manifest()
        assert ADDED in cluster.node_ids
        assert harness.network_up(cluster)
        load.up(ADDED)
        cluster.wait_heights_at_least(cluster.node_ids, joined_at + 20, harness.HANG_S)
        assert _voted_above(cluster, ADDED, joined_at - 1), "node4 never voted in its set"

        # remove-node waits for node3 to leave; node2 is down across that end meanwhile.
        load.down(REMOVED)
        load.down(LAGGARD)
        harness.kill9(cluster, LAGGARD)
        removed = json.loads(run_cli("network", "remove-node", REMOVED, "--as", "ADMIN",
                                     *network).stdout)  # fmt: skip
        left_at = int(removed["from_height"])
        end = left_at - 1
        assert end % harness.CHECKPOINT_INTERVAL == 0, removed
        assert not harness.alive(harness.node_pid(cluster, REMOVED) or 0)
        log = (cluster.directory / "nodes" / REMOVED / "node.log").read_text()
        retired = [json.loads(line) for line in log.splitlines() if '"event": "retired"' in line]
        assert retired and retired[0]["height"] == end, retired
        cluster.reload_manifest()
        assert REMOVED not in cluster.node_ids
        remaining = cluster.node_ids

        running = [n for n in remaining if n != LAGGARD]
        cluster.wait_heights_at_least(running, left_at + 20, harness.HANG_S)
        campaign.restart(LAGGARD)
        load.up(LAGGARD)
        cluster.wait_heights_at_least(remaining, left_at + 40, harness.HANG_S)
        # A validator restarted in the new set resumes in it.
        load.down(RESTARTED)
        harness.kill9(cluster, RESTARTED)
        campaign.restart(RESTARTED)
        load.up(RESTARTED)
        height = max(cluster.status(n).height for n in remaining)
        cluster.wait_heights_at_least(remaining, height + 10, harness.HANG_S)
        signers = _certificate_signers(cluster, "node4", end - 1, end + 3)

        # node0 (the new set's first primary) gets a new signing key: it signs with the old one
        # up to the end of its set and stops; started again, it votes with the new one.
        old_key = _public_key(cluster, ROTATED)
        rotated = json.loads(run_cli("network", "rotate-key", ROTATED, "--as", "ADMIN",
                                     *network).stdout)  # fmt: skip
        rotated_at = int(rotated["from_height"])
        assert rotated["public_key"] != old_key
        load.down(ROTATED)
        campaign.restart(ROTATED)
        load.up(ROTATED)
        cluster.wait_heights_at_least(remaining, rotated_at + 20, harness.HANG_S)
        assert _public_key(cluster, ROTATED) == rotated["public_key"]
        assert _voted_above(cluster, ROTATED, rotated_at - 1), "node0 never voted with its new key"
        row = campaign.check_row("membership-change", [], 3, None, nodes=remaining)
    finally:
        load.stop()
        cluster.down()
    harness.assert_row_clean(cluster, row)
    # The blocks up to the end carry the old set's certificates; those after, the new set's.
    for height, signed in signers.items():
        if height > end:
            assert REMOVED not in signed and set(signed) <= set(remaining), (height, signed)


def _public_key(cluster: Cluster, node: str) -> str:
    answer = run_cli(
        "query", "membership", "--as", "ADMIN", "--network", str(cluster.directory), "--json"
    ).stdout
    latest = json.loads(answer)["result"]["latest"]
    return next(v["public_key"] for v in latest["validators"] if v["id"] == node)


def _voted_above(cluster: Cluster, node: str, height: int) -> bool:
    path = harness.vote_log_dir(cluster) / f"{node}.jsonl"
    if not path.exists():
        return False
    for line in path.read_text().splitlines():
        vote = json.loads(line)
        if vote["kind"] == "commit" and vote["seq"] > height:
            return True
    return False


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
