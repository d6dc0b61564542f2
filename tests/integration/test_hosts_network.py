"""A ``network init --hosts`` network run as real processes on loopback, with a distinct base
port per node and host names mixed with addresses (``127.0.0.1`` and ``localhost``): the nodes
bind every interface and reach each other by the names genesis gives them. ``network up`` starts
them, a transaction commits, ``network down`` stops them; then the same validators run from
their bundles (each started alone from its own directory, as an operator does on its host) and
commit a transaction again."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "ibledger.cli.main"]
NODES = 4
PORT_FIRST, PORT_LAST = 20000, 60000


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=180,  # bounds a hang only
        stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("IBLEDGER_PASS")},
    )


def _three_free(base: int) -> bool:
    sockets = []
    try:
        for port in range(base, base + 3):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(("0.0.0.0", port))
        return True
    except OSError:
        return False
    finally:
        for sock in sockets:
            sock.close()


def _free_bases(count: int) -> list[int]:
    """``count`` base ports whose three ports are free now, ten apart."""
    bases: list[int] = []
    base = PORT_FIRST + (os.getpid() * 37) % (PORT_LAST - PORT_FIRST)
    for _ in range(1000):
        if _three_free(base):
            bases.append(base)
            if len(bases) == count:
                return bases
        base = base + 10 if base + 10 < PORT_LAST else PORT_FIRST
    raise AssertionError("no free loopback ports")


def _commit_a_transaction(directory: Path, name: str) -> None:
    result = _cli("participant", "update", "CSDC", "--name", name, "--as", "ADMIN",
                  "--network", str(directory), "--json")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["code"] == "OK"
    shown = _cli("participant", "show", "CSDC", "--as", "REGULATOR",
                 "--network", str(directory), "--json")  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert name in shown.stdout


def _ready(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=1):
            return True
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def hosts_network(tmp_path: Path) -> Path:
    bases = _free_bases(NODES)
    names = ["127.0.0.1", "localhost", "127.0.0.1", "localhost"]
    hosts = ",".join(f"{name}:{base}" for name, base in zip(names, bases, strict=True))
    directory = tmp_path / "network"
    init = _cli("network", "init", "--dir", str(directory), "--hosts", hosts)
    assert init.returncode == 0, init.stderr
    return directory


def test_a_hosts_network_commits_under_network_up_and_from_its_bundles(
    hosts_network: Path,
) -> None:
    directory = hosts_network
    genesis = json.loads((directory / "genesis.json").read_text())
    assert [v["peer_address"].split(":")[0] for v in genesis["validators"]] == [
        "127.0.0.1",
        "localhost",
        "127.0.0.1",
        "localhost",
    ]
    try:
        up = _cli("network", "up", "--dir", str(directory), "--timeout", "60")
        assert up.returncode == 0, up.stdout + up.stderr
        _commit_a_transaction(directory, "Registrar under network up")
    finally:
        down = _cli("network", "down", "--dir", str(directory))
    assert down.returncode == 0, down.stderr

    # Each bundle alone, from its own directory: its own data, the same genesis and ports.
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for bundle in sorted((directory / "bundles").iterdir()):
            log = (bundle / "node.out").open("wb")
            processes.append(
                subprocess.Popen(
                    [*CLI, "node", "start", "--config", "node.toml"],
                    cwd=bundle,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            log.close()
        # The metrics port is the API port + 1 (base + 2).
        api_ports = [int(v["api_address"].rpartition(":")[2]) for v in genesis["validators"]]
        urls = [f"http://127.0.0.1:{port + 1}/readyz" for port in api_ports]
        deadline = time.monotonic() + 60
        while not all(_ready(url) for url in urls):
            assert all(p.poll() is None for p in processes), "a bundle's node exited"
            assert time.monotonic() < deadline, "the bundles' nodes did not become ready"
            time.sleep(0.2)
        _commit_a_transaction(directory, "Registrar from the bundles")
        # Every host answers ``status --all`` over the API's TLS (verified by the CA).
        every = _cli("status", "--all", "--network", str(directory), "--json")
        assert every.returncode == 0, every.stderr
        assert [row["up"] for row in json.loads(every.stdout)["nodes"]] == [True] * NODES
        for bundle in sorted((directory / "bundles").iterdir()):
            assert any((bundle / "data").iterdir()), f"{bundle.name} wrote no ledger"
            log_text = (bundle / "node.log").read_text()
            assert log_text.count('"event": "peer-up"') >= NODES - 1, bundle.name
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
