"""What an operator sees, with four real node processes: `network up` failing on a taken
metrics port and naming the node and the reason, the health endpoints, metrics that the Grafana
dashboard can query, JSON logs and `network logs`, and `network status` exiting non-zero when a
node is down and saying when quorum is lost. One network serves the module; the tests run in
file order (the later ones kill nodes)."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .cluster import Cluster, run_cli

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docker/grafana/dashboards/ibledger.json"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster.create(tmp_path_factory.mktemp("ops") / "network")
    try:
        yield cluster
    finally:
        cluster.down()


def _get(cluster: Cluster, node_id: str, path: str) -> tuple[int, bytes]:
    node = next(n for n in cluster.manifest.nodes if n.id == node_id)
    url = f"http://{node.metrics.host}:{node.metrics.port}{path}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, bytes(exc.read())


def _log_entries(cluster: Cluster, node_id: str) -> list[dict[str, Any]]:
    text = (cluster.directory / "nodes" / node_id / "node.log").read_text()
    return [json.loads(line) for line in text.splitlines()]  # every line is JSON


def _wait_for(what: str, check: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_up_fails_naming_the_node_whose_metrics_port_is_taken(cluster: Cluster) -> None:
    node2 = next(n for n in cluster.manifest.nodes if n.id == "node2")
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((node2.metrics.host, node2.metrics.port))
        squatter.listen()
        result = run_cli("network", "up", "--dir", str(cluster.directory), check=False)
    assert result.returncode == 1, result.stdout
    assert "NODES_NOT_UP: 1 of 4 node(s) did not come up (node2)" in result.stderr
    assert re.search(
        rf"node2: exited with status 2: start failed: cannot listen for metrics on "
        rf"{node2.metrics.host}:{node2.metrics.port}: .*address already in use",
        result.stderr,
    ), result.stderr
    assert not (node2.dir / "node.pid").exists()
    entries = _log_entries(cluster, "node2")
    assert entries[-1]["event"] == "stopped"
    assert any(e.get("event") == "start-failed" for e in entries)

    # With the port free again, up starts node2 alone and waits until all four are ready.
    result = run_cli("network", "up", "--dir", str(cluster.directory), "--json")
    actions = {row["node_id"]: row["action"] for row in json.loads(result.stdout)["nodes"]}
    assert actions == {
        "node0": "already running",
        "node1": "already running",
        "node2": "started",
        "node3": "already running",
    }


def _readiness(cluster: Cluster, node_id: str) -> dict[str, Any]:
    status, body = _get(cluster, node_id, "/readyz")
    ready: dict[str, Any] = json.loads(body)
    ready["status"] = status
    return ready


def test_health_and_readiness_answer_on_the_metrics_port(cluster: Cluster) -> None:
    # A quorum of peers makes a node ready; all three come once every link has carried a
    # frame, which a node (re)started by the test before may not have done yet: wait for it.
    for node_id in cluster.node_ids:
        _wait_for(
            f"{node_id} to see all three peers",
            lambda node_id=node_id: _readiness(cluster, node_id).get("peers_connected") == 3,
        )
    for node_id in cluster.node_ids:
        status, body = _get(cluster, node_id, "/healthz")
        assert status == 200 and json.loads(body)["ok"] is True
        status, body = _get(cluster, node_id, "/readyz")
        ready = json.loads(body)
        assert status == 200 and ready["ok"] is True, ready
        assert ready["peers_connected"] == 3 and ready["catching_up"] is False
    assert _get(cluster, "node0", "/other")[0] == 404


def test_metrics_have_their_types_and_the_dashboard_queries_only_exported_names(
    cluster: Cluster,
) -> None:
    tx_ids = cluster.submit("node1", [cluster.envelope("metrics check")])
    cluster.wait_committed("node1", tx_ids, timeout_s=30)
    status, body = _get(cluster, "node1", "/metrics")
    assert status == 200
    text = body.decode()
    types = {
        name.removesuffix("_total"): kind
        for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE)
    }
    assert types["ibledger_blocks_committed"] == "counter"
    assert types["ibledger_consensus_events"] == "counter"
    assert types["ibledger_verifier_cache_hits"] == "counter"
    assert types["ibledger_height"] == "gauge"
    for histogram in (
        "ibledger_consensus_commit_latency_seconds",
        "ibledger_consensus_step_seconds",
        "ibledger_execution_seconds",
        "ibledger_storage_write_seconds",
        "ibledger_verifier_batch_seconds",
        "ibledger_peer_message_bytes",
        "ibledger_state_transfer_batch_seconds",
    ):
        assert types[histogram] == "histogram", histogram
    assert re.search(r"^ibledger_consensus_commit_latency_seconds_count [1-9]", text, re.M)
    # The node's process runs the collector policy of node/gc_policy.py: start-up is frozen,
    # and the full collection that preceded the freeze was observed.
    assert types["ibledger_gc_pause_seconds"] == "histogram"
    assert re.search(r'^ibledger_gc_pause_seconds_count\{generation="2"\} [1-9]', text, re.M)
    assert re.search(r"^ibledger_gc_frozen_objects [1-9]", text, flags=re.MULTILINE)
    assert re.search(r'^ibledger_build_info\{.*version="', text, flags=re.MULTILINE)
    assert re.search(r"^process_resident_memory_bytes ", text, flags=re.MULTILINE)

    # Sample names, and the families a labelled counter declares before its first event.
    exported = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", text, flags=re.MULTILINE))
    exported |= set(re.findall(r"^# HELP (\S+) ", text, flags=re.MULTILINE))
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b((?:ibledger|process)_[a-z0-9_]+)\b", target["expr"])
    }
    assert len(queried) > 20
    assert queried <= exported, sorted(queried - exported)


def test_logs_are_json_lines_and_network_logs_prints_them(cluster: Cluster) -> None:
    for node_id in cluster.node_ids:
        # Peer transitions are logged by a periodic watch, which may run after the node has
        # reported ready (a node restarted by the test above): wait for the line, boundedly.
        deadline = time.monotonic() + 60
        while True:
            entries = _log_entries(cluster, node_id)
            events = {e.get("event") for e in entries}
            if {"starting", "peer-up"} <= events or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert {"starting", "peer-up"} <= events, (node_id, events)
        assert all(e["node"] == node_id for e in entries)
    result = run_cli("network", "logs", "--dir", str(cluster.directory), "node3", "-n", "4")
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and all(json.loads(line)["node"] == "node3" for line in lines)
    result = run_cli("network", "logs", "--dir", str(cluster.directory), "-n", "2")
    assert {line.split(" | ")[0] for line in result.stdout.splitlines()} == {
        "node0",
        "node1",
        "node2",
        "node3",
    }


def test_a_killed_primary_is_reported_and_the_view_change_logs_its_cause(
    cluster: Cluster,
) -> None:
    primary = cluster.status("node1").primary
    cluster.kill(primary)
    result = run_cli("network", "status", "--dir", str(cluster.directory), check=False)
    assert result.returncode == 1
    assert f"NODES_DOWN: 1 of 4 node(s) down ({primary}); the quorum of 3 still holds" in (
        result.stderr
    )
    rows = json.loads(
        run_cli("network", "status", "--dir", str(cluster.directory), "--json", check=False).stdout
    )["nodes"]
    assert [row["node_id"] for row in rows if not row["up"]] == [primary]

    survivor = next(n for n in cluster.node_ids if n != primary)
    tx_ids = cluster.submit(survivor, [cluster.envelope("after the primary died")])
    cluster.wait_committed(survivor, tx_ids, timeout_s=60)

    def logged(event: str) -> list[dict[str, Any]]:
        return [e for e in _log_entries(cluster, survivor) if e.get("event") == event]

    _wait_for("the peer-down line", lambda: any(e["peer"] == primary for e in logged("peer-down")))
    down = next(e for e in logged("peer-down") if e["peer"] == primary)
    assert "no frame for" in down["reason"]
    changes = logged("view-change")
    assert changes, "the survivor logged its view change"
    assert changes[-1]["cause"] in ("request-timeout", "joined-peers", "new-view-timeout")
    assert changes[-1]["primary"] != primary
    assert _get(cluster, survivor, "/readyz")[0] == 200  # 2 peers are still a quorum


def test_two_of_four_down_is_reported_as_quorum_lost(cluster: Cluster) -> None:
    down = [row["node_id"] for row in _rows(cluster) if not row["up"]]
    second = next(n for n in cluster.node_ids if n not in down)
    cluster.kill(second)
    result = run_cli("network", "status", "--dir", str(cluster.directory), check=False)
    assert result.returncode == 1
    assert "QUORUM_LOST: quorum lost: 2 of 4 validators are up and 3 are needed" in result.stderr
    survivor = next(n for n in cluster.node_ids if n not in (*down, second))

    def not_ready() -> bool:
        status, body = _get(cluster, survivor, "/readyz")
        return status == 503 and "peers a quorum needs" in json.loads(body)["reason"]

    _wait_for("the survivor to report not ready", not_ready)

    # Both restart; up waits until every node is ready again and status is clean.
    run_cli("network", "up", "--dir", str(cluster.directory), "--timeout", "60")
    assert run_cli("network", "status", "--dir", str(cluster.directory)).returncode == 0


def _rows(cluster: Cluster) -> list[dict[str, Any]]:
    result = run_cli("network", "status", "--dir", str(cluster.directory), "--json", check=False)
    rows: list[dict[str, Any]] = json.loads(result.stdout)["nodes"]
    return rows


def test_a_block_changed_on_disk_after_it_was_verified_stops_the_node(cluster: Cluster) -> None:
    import plyvel

    from ibledger.node import storage_keys as keys

    cluster.kill("node3")
    ledger_dir = cluster.directory / "nodes/node3/data/ledger"
    db = plyvel.DB(str(ledger_dir))
    value = db.get(keys.write_set_key(1))
    assert value is not None
    middle = len(value) // 2
    db.put(
        keys.write_set_key(1), value[:middle] + bytes([value[middle] ^ 0x40]) + value[middle + 1 :]
    )
    db.close()
    # Block 1 is below the verified-height record, so the open trusts it and starts; the
    # background check then finds the change and stops the node, saying where and why.
    run_cli("network", "up", "--dir", str(cluster.directory), "--timeout", "30", check=False)

    def stopped() -> bool:
        return any(
            e.get("msg") == "stopping: the stored ledger no longer verifies"
            for e in _log_entries(cluster, "node3")
        ) and not any(row["up"] for row in _rows(cluster) if row["node_id"] == "node3")

    _wait_for("node3 to stop on the changed block", stopped)
    line = next(
        e
        for e in _log_entries(cluster, "node3")
        if e.get("msg") == "stopping: the stored ledger no longer verifies"
    )
    assert line["height"] == 1 and "state root" in line["reason"]
