"""Backup under load and restore into a fresh node, with four real node processes.

`ibledger node backup` takes an online snapshot of node1 while clients keep submitting to every
node; node1 is stopped, its data directory wiped, `ibledger node restore` rebuilds its ledger
from the backup (refusing while the node runs and while a ledger is there), and the restarted
node catches up from its peers. At the end the four chains are identical (block hashes, state
root) and every acknowledged transaction is on every node exactly once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ibledger.node import storage_keys as keys

from ..node.backup_files import reencode
from .cluster import SUITES, Cluster, run_cli

pytestmark = pytest.mark.slow

RESTORED = "node1"


@pytest.fixture(params=SUITES)
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    cluster = Cluster.create(
        tmp_path / "network",
        crypto=request.param,
        checkpoint_interval=8,  # so the backup holds checkpoint certificates to verify
        # The load comes from one identity; its per-sender quota is not what is tested here.
        admission={"sender_pending_max": 1_000_000, "sender_burst": 1_000_000},
    )
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


class Load:
    """Batches of ten transactions every 50 ms, round-robin over the nodes that are up."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.targets = list(cluster.node_ids)
        self.admitted: list[bytes] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load")

    def _run(self) -> None:
        round_ = 0
        while not self._stop.is_set():
            envelopes = [self.cluster.envelope(f"load-{round_}-{i}") for i in range(10)]
            # The target is chosen and used under the lock, so once ``without`` returns no
            # submission to that node is still in flight (signing happens before, outside it).
            with self._lock:
                target = self.targets[round_ % len(self.targets)]
                try:
                    self.admitted.extend(self.cluster.submit(target, envelopes))
                except grpc.RpcError as exc:  # reported by the test
                    self.errors.append(exc)
            round_ += 1
            time.sleep(0.05)

    def without(self, node_id: str) -> None:
        with self._lock:
            self.targets = [n for n in self.cluster.node_ids if n != node_id]

    def with_all(self) -> None:
        with self._lock:
            self.targets = list(self.cluster.node_ids)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def _node(cluster: Cluster) -> list[str]:
    return ["--network", str(cluster.directory), "--node", RESTORED]


def _stop(cluster: Cluster, node_id: str) -> None:
    """SIGTERM, as an operator stops a node, and wait until the process is gone."""
    pid = cluster.pid(node_id)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"{node_id} did not stop")


def _flip_certificate_byte(records: dict[bytes, bytes]) -> None:
    certificate = bytearray(records[keys.certificate_key(3)])
    certificate[-5] ^= 0x01  # inside the last signature
    records[keys.certificate_key(3)] = bytes(certificate)


def test_backup_under_load_restores_a_fresh_node_that_catches_up(
    cluster: Cluster, tmp_path: Path
) -> None:
    first = cluster.submit("node0", [cluster.envelope(f"before-{i}") for i in range(40)])
    cluster.wait_committed("node0", first, timeout_s=60)
    backup_file = tmp_path / "node1.backup"
    data_dir = cluster.directory / "nodes" / RESTORED / "data"

    with Load(cluster) as load:
        time.sleep(1.0)
        taken = json.loads(
            run_cli("node", "backup", *_node(cluster), "--out", str(backup_file), "--json").stdout
        )
        time.sleep(1.0)  # the node kept committing while and after it wrote the file
        assert cluster.status(RESTORED).height > taken["height"] > 0, taken
        assert taken["node_id"] == RESTORED

        refused = run_cli(
            "node", "restore", "--from", str(backup_file), *_node(cluster), check=False
        )
        assert refused.returncode == 1 and "NODE_RUNNING" in refused.stderr, refused.stderr

        load.without(RESTORED)
        _stop(cluster, RESTORED)
        refused = run_cli(
            "node", "restore", "--from", str(backup_file), *_node(cluster), check=False
        )
        assert refused.returncode == 1 and "TARGET_NOT_EMPTY" in refused.stderr, refused.stderr

        shutil.rmtree(data_dir)  # the node's disk is lost: ledger, consensus records, audit log
        # A backup whose digest is right but whose block 3 certificate lost a signature byte:
        # only checking the certificates against the genesis validators catches it.
        forged = tmp_path / "forged.backup"
        reencode(backup_file, forged, _flip_certificate_byte)
        refused = run_cli("node", "restore", "--from", str(forged), *_node(cluster), check=False)
        assert refused.returncode == 1, refused.stdout
        assert "BACKUP_DOES_NOT_VERIFY" in refused.stderr and "height 3" in refused.stderr
        assert not (data_dir / "ledger").exists()
        restored = json.loads(
            run_cli("node", "restore", "--from", str(backup_file), *_node(cluster), "--json").stdout
        )
        assert (restored["height"], restored["tip_hash"], restored["state_root"]) == (
            taken["height"],
            taken["tip_hash"],
            taken["state_root"],
        )
        assert restored["checkpoint_verified"] >= 8, restored  # certificates signed by a quorum
        time.sleep(2.0)  # the others move on while node1 is down

        cluster.up()  # starts node1 alone, from the restored ledger
        load.with_all()
        time.sleep(2.0)
    assert not load.errors, load.errors[:3]

    cluster.wait_committed("node2", load.admitted, timeout_s=120)
    height = cluster.wait_heights_equal(cluster.node_ids, timeout_s=120)
    assert height > taken["height"]  # node1 fetched and verified what it missed
    summaries = {n: cluster.chain_summary(n) for n in cluster.node_ids}
    assert len({tuple(hashes) for hashes, _, _ in summaries.values()}) == 1
    assert len({root for _, root, _ in summaries.values()}) == 1
    assert cluster.acked  # the load ran; how much it did depends on the machine
    print(
        f"backup at height {taken['height']} ({taken['records']} records, {taken['bytes']} bytes);"
        f" restored, caught up to {height}; {len(cluster.acked)} acknowledged txs on every node"
    )
    for node_id, (_, _, counts) in summaries.items():
        missing = [t.hex() for t in cluster.acked if counts.get(t) != 1]
        assert not missing, f"{node_id}: {len(missing)} acknowledged txs not present exactly once"
    # It caught up through state transfer from the restored height (verifying each block's
    # commit certificate as it applied it), not from some later point.
    entries = [
        json.loads(line)
        for line in (cluster.directory / "nodes" / RESTORED / "node.log").read_text().splitlines()
    ]
    last_start = max(i for i, e in enumerate(entries) if e.get("event") == "starting")
    catch_ups = [e for e in entries[last_start:] if e.get("event") == "catch-up-start"]
    assert catch_ups and catch_ups[0]["height"] == taken["height"], catch_ups[:1]
