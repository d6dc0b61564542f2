"""B14, amnesia: a validator whose data directory vanished rejoins without ever signing a vote
at a block it may have voted on before, as a non-voter until it has caught up past them.

The load is stopped so that the network stands close to node2's last votes; node2 is killed,
its whole data directory removed, and it is started again. Its vote record (beside its key,
node/vote_record.py) names a ledger directory that no longer exists, so the node starts with a
vote floor at least as high as every vote it signed before (read from the vote log each node
keeps of the votes it sends, outside its data directory), says so in its log and its metrics,
and fetches the chain from its peers. Until the others have committed past the floor without
it, it signs nothing at or below it; then it votes again. Afterwards every acknowledged
transaction is on every replica exactly once, with the same blocks and state roots, and no node
signed two digests for one view and sequence number across all its processes.

Deadlines bound hangs only."""

from __future__ import annotations

import json
import random
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from ibledger.cli.manifest import load_manifest
from tests.chaos import harness

# Real processes; tests/suite.py runs it in its late process, off the critical path.
pytestmark = [pytest.mark.slow, pytest.mark.late]

NODE = "node2"


def _votes(cluster: harness.Cluster, node: str) -> list[dict[str, object]]:
    path = harness.vote_log_dir(cluster) / f"{node}.jsonl"
    votes = []
    for line in path.read_text().splitlines():
        try:
            votes.append(json.loads(line))
        except ValueError:
            continue  # a line torn by kill -9
    return votes


def _block_votes(votes: list[dict[str, object]], pid: int) -> list[int]:
    kinds = ("preprepare", "prepare", "commit")
    return [int(str(v["seq"])) for v in votes if v["pid"] == pid and v["kind"] in kinds]


def _logged_floor(node_dir: Path, since: int) -> int:
    with (node_dir / "node.log").open("rb") as handle:
        handle.seek(since)
        lines = handle.read().decode(errors="replace").splitlines()
    for line in lines:
        if '"vote-floor"' in line:
            return int(json.loads(line)["vote_floor"])
    raise AssertionError("no vote-floor line in the log:\n" + "\n".join(lines[-30:]))


def _metric(cluster: harness.Cluster, node: str, name: str) -> float:
    entry = next(n for n in load_manifest(cluster.directory).nodes if n.id == node)
    url = f"http://{entry.metrics.host}:{entry.metrics.port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not exported")


def _wait(condition: object, what: str) -> None:
    deadline = time.monotonic() + harness.HANG_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def test_a_validator_that_lost_its_data_directory_never_votes_twice(tmp_path: Path) -> None:
    cluster = harness.create_cluster(tmp_path / "network")
    harness.start(cluster)
    load = harness.Load(cluster, threads=2, seed=14)
    campaign = harness.Campaign(cluster, load, random.Random(14), log=lambda _: None)
    node_dir = cluster.directory / "nodes" / NODE
    load.start()
    try:
        cluster.wait_heights_at_least(cluster.node_ids, 20, harness.HANG_S)
        load.stop()
        height = max(cluster.status(n).height for n in cluster.node_ids)
        cluster.wait_heights_at_least(cluster.node_ids, height, harness.HANG_S)
        before = harness.node_pid(cluster, NODE)
        assert before is not None
        harness.kill9(cluster, NODE)
        voted_before = _block_votes(_votes(cluster, NODE), before)
        assert voted_before, "node2 signed no block vote before it was killed"
        shutil.rmtree(node_dir / "data")

        since = harness.log_size(cluster, NODE)
        campaign.restart(NODE)
        after = harness.node_pid(cluster, NODE)
        assert after is not None and after != before
        floor = _logged_floor(node_dir, since)
        assert floor >= max(voted_before), (floor, max(voted_before))
        assert _metric(cluster, NODE, "ibledger_vote_floor_height") == floor

        # With no load the others stand still: it fetches their chain, voting on nothing.
        cluster.wait_heights_at_least([NODE], height, harness.HANG_S)
        assert _block_votes(_votes(cluster, NODE), after) == []

        # The others commit past the floor without it; from there it votes again.
        load.start()
        others = [n for n in cluster.node_ids if n != NODE]
        cluster.wait_heights_at_least(others, floor + 10, harness.HANG_S)
        _wait(lambda: _block_votes(_votes(cluster, NODE), after), "node2 votes again")
        assert min(_block_votes(_votes(cluster, NODE), after)) > floor
        row = campaign.check_row("amnesia", [], 1, None)
    finally:
        load.stop()
        cluster.down()
    harness.assert_row_clean(cluster, row)
