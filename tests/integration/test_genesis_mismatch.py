"""A validator started from a genesis that differs by one byte (issue: it joined, voted and
served from its own state). Peers compare genesis digests when they connect: both sides refuse
with a clear error, the node with the odd genesis never joins, and the other three commit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ibledger.node.crypto import generate_keypair, write_private_key
from ibledger.node.jsonfile import read_genesis, write_json

from .cluster import Cluster

pytestmark = pytest.mark.slow


def test_a_node_with_another_genesis_is_refused_by_every_peer(tmp_path: Path) -> None:
    cluster = Cluster.create(tmp_path / "network")
    node_dir = cluster.directory / "nodes" / "node3"
    genesis = read_genesis(cluster.directory / "genesis.json")
    genesis["participants"][1]["name"] += "."  # one byte
    write_json(node_dir / "genesis.json", genesis)
    toml = node_dir / "node.toml"
    toml.write_text(toml.read_text().replace('"../../genesis.json"', '"genesis.json"'))
    # node3 runs but never becomes ready, and `network up` says so and why.
    try:
        err = cluster.up_without("node3")
        assert "node3: not ready within 20 s: 0 of the 2 peers a quorum needs" in err
        assert "peer refused this node: different genesis" in err
        tx_ids = cluster.submit("node0", [cluster.envelope("three of four")])
        cluster.wait_committed("node0", tx_ids, timeout_s=60)
        deadline = time.monotonic() + 60
        logs: dict[str, str] = {}
        while time.monotonic() < deadline:
            logs = {
                n: (cluster.directory / "nodes" / n / "node.log").read_text()
                for n in cluster.node_ids
            }
            refused_everywhere = all("peer connection refused" in t for t in logs.values())
            if refused_everywhere and "peer refused this node" in logs["node3"]:
                break
            time.sleep(0.5)
        for node_id, text in logs.items():
            # node3 refuses the others and is refused by them; each of the others refuses node3.
            assert "peer connection refused" in text, node_id
            assert "GENESIS_MISMATCH" in text, node_id
        assert "peer refused this node: different genesis" in logs["node3"]
        # It took no part: nothing reached it, and the three others agree among themselves.
        assert cluster.status("node3").height == 0
        assert cluster.wait_heights_equal(["node0", "node1", "node2"], timeout_s=60) >= 1
    finally:
        cluster.down()


def test_a_node_of_another_crypto_suite_is_refused_by_name(tmp_path: Path) -> None:
    """node3 runs an sm2-sm3 genesis (its own SM2 validator key, SM2 keys throughout) on an
    Ed25519 network: every peer refuses it with SUITE_MISMATCH, naming both suites."""
    cluster = Cluster.create(tmp_path / "network")
    node_dir = cluster.directory / "nodes" / "node3"
    genesis = read_genesis(cluster.directory / "genesis.json")
    genesis["crypto_suite"] = "sm2-sm3"
    own = generate_keypair("sm2-sm3")
    for validator in genesis["validators"]:
        key = own if validator["id"] == "node3" else generate_keypair("sm2-sm3")
        validator["public_key"] = key.public_key.hex()
    for participant in genesis["participants"]:
        participant["keys"] = [
            {"suite": "sm2-sm3", "public_key": generate_keypair("sm2-sm3").public_key.hex()}
        ]
    write_json(node_dir / "genesis.json", genesis)
    key_file = node_dir / "keys" / "validator.key.pem"
    key_file.unlink()
    write_private_key(key_file, own)
    toml = node_dir / "node.toml"
    toml.write_text(toml.read_text().replace('"../../genesis.json"', '"genesis.json"'))
    # node3 runs but never becomes ready, and `network up` says so, naming both suites.
    try:
        err = cluster.up_without("node3")
        assert (
            "SUITE_MISMATCH: node3 runs crypto suite sm2-sm3, this node runs ed25519-sha256" in err
        )
        tx_ids = cluster.submit("node0", [cluster.envelope("three of four")])
        cluster.wait_committed("node0", tx_ids, timeout_s=60)
        deadline = time.monotonic() + 60
        logs: dict[str, str] = {}
        while time.monotonic() < deadline:
            logs = {
                n: (cluster.directory / "nodes" / n / "node.log").read_text()
                for n in cluster.node_ids
            }
            if all("SUITE_MISMATCH" in text for text in logs.values()):
                break
            time.sleep(0.5)
        for node_id, text in logs.items():
            assert "SUITE_MISMATCH" in text, node_id
        assert "runs crypto suite sm2-sm3, this node runs ed25519-sha256" in logs["node0"]
        assert "runs crypto suite ed25519-sha256, this node runs sm2-sm3" in logs["node3"]
        assert cluster.status("node3").height == 0
    finally:
        cluster.down()
