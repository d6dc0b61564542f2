"""O1: the README's "Running validators on separate hosts", step by step, with one network
namespace per host (``docs/operations.md``, "Separate hosts, containers, Kubernetes", says the
same):

1. ``ibledger network init --dir network --hosts HOST,...`` on the operator's machine;
2. each ``bundles/<node>`` copied to its host keeping file modes (``scp -rp``; here ``cp -rp``
   into the host's own directory);
3. on each host, ``cd <node> && ibledger node start --config node.toml``;
4. ``curl -fsS http://HOST:PORT+2/readyz`` answers 200 on every host;
5. from the operator's machine, with ``network.json`` and the identities, a transaction
   submitted to one host and read back from another, and ``ibledger network status``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import HostsNetwork, make_lab, operator_cli
from .hosts import Lab

pytestmark = [pytest.mark.slow, pytest.mark.netns]


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = make_lab()
    try:
        yield lab
    finally:
        lab.destroy()


def test_the_documented_steps_run_a_network_across_hosts(lab: Lab, tmp_path: Path) -> None:
    operator = tmp_path / "operator"
    operator.mkdir()
    # 1. init with the hosts' addresses (the default base port 7050).
    operator_cli("network", "init", "--dir", str(operator / "network"),
                 "--hosts", ",".join(lab.hosts))  # fmt: skip
    bundles = operator / "network" / "bundles"
    assert sorted(p.name for p in bundles.iterdir()) == ["node0", "node1", "node2", "node3"]
    readme = (bundles / "node3" / "README.txt").read_text()
    assert f"Copy this directory to {lab.hosts[3]}" in readme

    for index, host in enumerate(lab.hosts):
        node = f"node{index}"
        # 2. copy the bundle to its host, keeping the keys' 0600 modes.
        home = tmp_path / "hosts" / host
        home.mkdir(parents=True)
        subprocess.run(["cp", "-rp", str(bundles / node), str(home / node)], check=True)
        assert (home / node / "keys" / "validator.key.pem").stat().st_mode & 0o077 == 0
        # 3. start it there, in the host's namespace, from the bundle directory.
        lab.start_node(node, host, home / node)

    # 4. /readyz on each host's metrics port, asked from the client's machine.
    network = HostsNetwork(lab, operator / "network")
    network.wait_ready()
    for node in network.node_ids:
        status, body = network.readyz(node)
        assert status == 200 and json.loads(body)["ok"] is True, body

    # 5. a transaction through the CLI against node0's host, seen committed on node2's host.
    directory = str(operator / "network")
    sent = lab.cli("participant", "update", "CSDC", "--name", "Registrar across hosts",
                   "--as", "ADMIN", "--network", directory, "--node", network.api("node0"),
                   "--json")  # fmt: skip
    receipt = json.loads(sent.stdout)
    assert receipt["status"] == "COMMITTED" and receipt["code"] == "OK", receipt
    shown = lab.cli("participant", "show", "CSDC", "--as", "REGULATOR", "--network", directory,
                    "--node", network.api("node2"), "--json")  # fmt: skip
    assert json.loads(shown.stdout)["name"] == "Registrar across hosts"
    other = network.status("node2")
    assert other["height"] >= receipt["height"]
    block = lab.cli("block", "show", str(receipt["height"]), "--network", directory,
                    "--node", network.api("node2"), "--json")  # fmt: skip
    assert json.loads(block.stdout)["block_hash"] == receipt["block_hash"]

    # ``network status`` from the operator's machine sees every host up, on one view.
    table = lab.cli("network", "status", "--dir", directory, "--json")
    rows = json.loads(table.stdout)["nodes"]
    assert [row["up"] for row in rows] == [True] * 4, rows
    assert {row["primary_node_id"] for row in rows} == {"node0"}
    network.wait_converged(at_least=receipt["height"])  # every host on one chain
