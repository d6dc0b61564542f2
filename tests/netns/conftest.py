"""A ``network init --hosts`` network whose validators each run in a network namespace of their
own (``tests.netns.hosts``), laid out as an operator lays it out: init in the operator's
directory, each bundle copied to its host's directory, each node started there."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .hosts import COMMAND_TIMEOUT_S, Lab, unavailable_reason, wait_for

NODES = 4
BASE_PORT = 7050  # the default: every host has the whole port range to itself
READY_TIMEOUT_S = 120  # bounds a hang only: four nodes starting on a loaded machine
CONVERGE_TIMEOUT_S = 120
COMMIT_TIMEOUT_S = 150


def operator_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``ibledger ARGS`` on the operator's machine (the root namespace: no network needed)."""
    result = subprocess.run(
        [sys.executable, "-m", "ibledger.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def make_lab() -> Lab:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    lab = Lab(NODES)
    lab.create()
    return lab


@dataclass
class HostsNetwork:
    """The running network: node ``nodeN`` on host ``lab.hosts[N]``."""

    lab: Lab
    directory: Path  # the operator's network directory (network.json, identities)

    @property
    def node_ids(self) -> list[str]:
        return [f"node{index}" for index in range(NODES)]

    def host(self, node_id: str) -> str:
        return self.lab.hosts[self.node_ids.index(node_id)]

    def api(self, node_id: str) -> str:
        return f"{self.host(node_id)}:{BASE_PORT + 1}"

    def readyz(self, node_id: str) -> tuple[int, str]:
        return self.lab.get_from_client(f"http://{self.host(node_id)}:{BASE_PORT + 2}/readyz")

    def wait_ready(self) -> None:
        def all_ready() -> bool:
            for node in self.lab.nodes:
                if not node.running():
                    log = (node.bundle / "node.out").read_text(errors="replace")
                    raise AssertionError(f"{node.node_id} exited:\n{log[-3000:]}")
            return all(self.readyz(node_id)[0] == 200 for node_id in self.node_ids)

        wait_for("every node's /readyz to answer 200", all_ready, READY_TIMEOUT_S)

    # --- what a node reports ---------------------------------------------------------------

    def height(self, node_id: str) -> int:
        return int(self.lab.metrics(self.host(node_id), BASE_PORT)["ibledger_height"])

    def view(self, node_id: str) -> int:
        return int(self.lab.metrics(self.host(node_id), BASE_PORT)["ibledger_view"])

    def heights(self) -> dict[str, int]:
        return {node_id: self.height(node_id) for node_id in self.node_ids}

    def status(self, node_id: str) -> dict[str, Any]:
        result = self.lab.cli("status", "--network", str(self.directory),
                              "--node", self.api(node_id), "--json")  # fmt: skip
        status: dict[str, Any] = json.loads(result.stdout)
        return status

    def primary(self) -> str:
        """The primary every node that answers names (they must agree)."""
        rows = self.lab.statuses(self.directory)
        primaries = {str(row["primary_node_id"]) for row in rows if row["up"]}
        assert len(primaries) == 1, f"the nodes disagree on the primary: {primaries}"
        return primaries.pop()

    def wait_converged(self, at_least: int = 0) -> int:
        """Wait until every node answers with one height (at least ``at_least``) and one tip
        hash; return that height."""
        seen: list[list[dict[str, Any]]] = [[]]

        def converged() -> bool:
            rows = self.lab.statuses(self.directory)
            seen[0] = rows
            if not all(row["up"] for row in rows):
                return False
            tips = {(row["height"], row["tip_hash"]) for row in rows}
            return len(tips) == 1 and rows[0]["height"] >= at_least

        try:
            wait_for("every node at one height and block hash", converged, CONVERGE_TIMEOUT_S)
        except AssertionError as exc:
            summary = [(r.get("node_id"), r.get("height"), r.get("tip_hash"), r.get("code"))
                       for r in seen[0]]  # fmt: skip
            raise AssertionError(f"{exc}; last seen: {summary}") from None
        height: int = seen[0][0]["height"]
        return height

    # --- transactions ----------------------------------------------------------------------

    def _update(self, name: str, node_id: str, *extra: str, namespace: str | None = None) -> Any:
        result = self.lab.cli(
            "participant", "update", "CSDC", "--name", name, "--as", "ADMIN",
            "--network", str(self.directory), "--node", self.api(node_id), "--json", *extra,
            namespace=namespace,
        )  # fmt: skip
        return json.loads(result.stdout)

    def commit(self, name: str, via: str) -> int:
        """A transaction submitted to ``via``, waited for until it commits; its height."""
        receipt = self._update(name, via, "--timeout", str(COMMIT_TIMEOUT_S))
        assert receipt["code"] == "OK" and receipt["status"] == "COMMITTED", receipt
        height: int = receipt["height"]
        return height

    def submit(self, name: str, via: str, *, from_host: bool = False) -> str:
        """A transaction admitted by ``via`` without waiting for its commit; its id. With
        ``from_host`` the client runs on ``via``'s own host (reaching it while it is cut off)."""
        namespace = self.lab.namespace(self.host(via)) if from_host else None
        submission = self._update(name, via, "--no-wait", namespace=namespace)
        assert submission["code"] == "OK", submission
        tx_id: str = submission["tx_id"]
        return tx_id

    def wait_committed(self, tx_id: str, via: str) -> int:
        result = self.lab.cli("tx", "wait", tx_id, "--network", str(self.directory),
                              "--node", self.api(via), "--timeout", str(COMMIT_TIMEOUT_S),
                              "--json")  # fmt: skip
        receipt = json.loads(result.stdout)
        assert receipt["status"] == "COMMITTED", receipt
        height: int = receipt["height"]
        return height


def start_network(lab: Lab, root: Path) -> HostsNetwork:
    """``network init --hosts`` with the lab's addresses, every bundle copied to its host's
    directory, every node started there in its host's namespace, all of them ready."""
    directory = root / "operator" / "network"
    operator_cli("network", "init", "--dir", str(directory),
                 "--hosts", ",".join(lab.hosts))  # fmt: skip
    network = HostsNetwork(lab, directory)
    for node_id, host in zip(network.node_ids, lab.hosts, strict=True):
        home = root / "hosts" / host
        home.mkdir(parents=True)
        shutil.copytree(directory / "bundles" / node_id, home / node_id)  # keeps file modes
        lab.start_node(node_id, host, home / node_id)
    network.wait_ready()
    return network


@pytest.fixture(scope="module")
def hosts_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostsNetwork]:
    lab = make_lab()
    try:
        yield start_network(lab, tmp_path_factory.mktemp("netns"))
    finally:
        lab.destroy()


@pytest.fixture
def network(hosts_network: HostsNetwork) -> Iterator[HostsNetwork]:
    """The module's network, healed and converged before the test and healed after it, so a
    failing test leaves no fault behind for the next."""
    hosts_network.lab.heal_all()
    hosts_network.wait_converged()
    try:
        yield hosts_network
    finally:
        hosts_network.lab.heal_all()
