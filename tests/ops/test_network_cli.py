"""cli/network.py: ``network init`` output, and ``up``/``down``/``status`` with real processes.

Processes run ``tests/ops/fake_node.py`` (through ``IBLEDGER_NODE_COMMAND``), which loads the
node's configuration and serves GetStatus on its API address.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import sys
from pathlib import Path

import pytest

from ibledger.cli import network
from ibledger.cli.manifest import load_manifest
from ibledger.contracts.identifiers import validate
from ibledger.contracts.runtime import genesis_writes
from ibledger.node.config import load_genesis, load_node_config
from ibledger.node.crypto import load_private_key
from ibledger.node.pki import load_ca, read_certificate, verify_node_certificate

from .conftest import CliRunner

FAKE_NODE = Path(__file__).with_name("fake_node.py")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_a_complete_network(template_network: Path) -> None:
    directory = template_network
    assert _mode(directory / "ca/ca.key") == 0o600
    ca = load_ca(directory / "ca")
    manifest = load_manifest(directory)
    assert manifest.chain_id == "ibledger-local"
    assert [node.id for node in manifest.nodes] == ["node0", "node1", "node2", "node3"]

    genesis = load_genesis(directory / "genesis.json")
    assert genesis.crypto_suite == "ed25519-sha256"
    assert genesis.consensus == genesis.consensus.__class__(**network.CONSENSUS_DEFAULTS)
    assert len(genesis_writes(genesis.raw)) > 0

    ports = []
    for node in manifest.nodes:
        node_dir = directory / "nodes" / node.id
        for key in ("keys/validator.key.pem", "tls/node.key"):
            assert _mode(node_dir / key) == 0o600, key
        assert (node_dir / "data").is_dir() and not any((node_dir / "data").iterdir())
        config = load_node_config(node.config)
        assert config.node_id == node.id
        entry = genesis.validator(node.id)
        assert entry is not None
        assert str(entry.api_address) == str(config.api.listen) == str(node.api)
        assert str(entry.peer_address) == str(config.peer.listen) == str(node.peer)
        assert str(config.metrics.listen) == str(node.metrics)
        certificate = read_certificate(node_dir / "tls/node.crt")
        assert verify_node_certificate(certificate, ca.certificate) == node.id
        ports += [node.api.port, node.peer.port, node.metrics.port]
        assert config.log.file == node_dir / "node.log"  # the node writes and rotates it
    assert len(set(ports)) == len(ports) == 12
    # Prometheus discovery for docker/prometheus.yml: every node's metrics address, by id.
    targets = json.loads((directory / network.PROMETHEUS_TARGETS).read_text())
    assert {t["labels"]["node"]: t["targets"] for t in targets} == {
        node.id: [str(node.metrics)] for node in manifest.nodes
    }

    participants = {p["id"]: p for p in genesis.raw["participants"]}
    assert (
        set(manifest.identities)
        == set(participants)
        == {
            "ADMIN",
            "ICBC",
            "CIB",
            "SPDB",
            "HUAWEI",
            "SUPPLIER",
            "PBOC",
            "CSDC",
            "REGULATOR",
        }
    )
    for name, identity in manifest.identities.items():
        assert _mode(identity.key_file) == 0o600
        keypair = load_private_key(identity.key_file)
        assert participants[name]["keys"][0]["public_key"] == keypair.public_key.hex()
        assert list(identity.roles) == participants[name]["roles"]
    for participant in participants.values():
        for kind in ("lei", "uscc"):
            if kind in participant:
                assert validate(kind, participant[kind], production=True).valid
    assert participants["ADMIN"]["roles"] == ["consortium_admin"]
    assert participants["HUAWEI"]["roles"] == ["enterprise"]
    assert genesis.raw["governance"] == {"admin_quorum": 1}  # a majority of the single ADMIN


def test_init_writes_admins_and_their_quorum(tmp_path: Path, cli: CliRunner) -> None:
    directory = tmp_path / "net"
    code, _, err = cli("network", "init", "--dir", str(directory), "--nodes", "1", "--admins", "4")
    assert code == 0, err
    genesis = load_genesis(directory / "genesis.json")
    assert genesis.raw["governance"] == {"admin_quorum": 3}
    admins = [p["id"] for p in genesis.raw["participants"] if "consortium_admin" in p["roles"]]
    assert admins == ["ADMIN", "ADMIN2", "ADMIN3", "ADMIN4"]
    assert set(admins) <= set(load_manifest(directory).identities)
    code, _, _ = cli(
        "network",
        "init",
        "--dir",
        str(directory),
        "--nodes",
        "1",
        "--force",
        "--admins",
        "3",
        "--admin-quorum",
        "3",
    )
    assert code == 0
    assert load_genesis(directory / "genesis.json").raw["governance"] == {"admin_quorum": 3}
    for flags, wrong in (
        (["--admins", "0"], "--admins must be from 1 to 16, got 0"),
        (["--admins", "2", "--admin-quorum", "3"], "--admin-quorum must be from 1 to --admins (2)"),
        (["--admin-quorum", "0"], "--admin-quorum must be from 1 to --admins (1), got 0"),
    ):
        code, _, err = cli("network", "init", "--dir", str(tmp_path / "x"), "--nodes", "1", *flags)
        assert code == 1 and "BAD_ARGUMENT" in err and wrong in err, err
        assert not (tmp_path / "x" / "genesis.json").exists()


def test_second_init_refuses_without_force(tmp_path: Path, cli: CliRunner) -> None:
    directory = tmp_path / "net"
    code, out, _ = cli("network", "init", "--dir", str(directory), "--nodes", "1", "--json")
    assert code == 0
    assert json.loads(out)["nodes"][0]["node_id"] == "node0"
    first_ca = (directory / "ca/ca.crt").read_bytes()

    code, _, err = cli("network", "init", "--dir", str(directory), "--nodes", "1")
    assert code == 1
    assert err.startswith("error: NETWORK_EXISTS: ")
    assert "pass --force to replace it" in err
    assert (directory / "ca/ca.crt").read_bytes() == first_ca

    code, _, _ = cli("network", "init", "--dir", str(directory), "--nodes", "2", "--force")
    assert code == 0
    assert (directory / "ca/ca.crt").read_bytes() != first_ca
    assert [n.id for n in load_manifest(directory).nodes] == ["node0", "node1"]
    load_node_config(directory / "nodes/node1/node.toml")


def test_init_defaults_to_home_and_checks_arguments(
    tmp_path: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IBLEDGER_HOME", str(tmp_path / "home"))
    assert network.default_network_dir() == tmp_path / "home/network"
    code, _, err = cli("network", "init", "--nodes", "0")
    assert code == 1 and "BAD_ARGUMENT" in err
    code, out, _ = cli("network", "init", "--nodes", "1", "--chain-id", "test-chain-1")
    assert code == 0, out
    assert load_manifest(tmp_path / "home/network").chain_id == "test-chain-1"


@pytest.fixture
def fake_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(FAKE_NODE))}"
    monkeypatch.setenv(network.NODE_COMMAND_ENV, command)
    for variable in (
        "FAKE_NODE_FAIL",
        "FAKE_NODE_FAIL_LOGGED",
        "FAKE_NODE_HANG",
        "FAKE_NODE_IGNORE_TERM",
    ):
        monkeypatch.delenv(variable, raising=False)


def _status(cli: CliRunner, directory: Path, expect: int = 0) -> list[dict[str, object]]:
    code, out, err = cli("network", "status", "--dir", str(directory), "--json")
    assert code == expect, err
    rows: list[dict[str, object]] = json.loads(out)["nodes"]
    return rows


def _alive(pid: int) -> bool:
    return network._pid_alive(pid)


@pytest.mark.usefixtures("fake_nodes")
def test_up_status_down(network_copy: Path, cli: CliRunner, cleanup_processes: list[Path]) -> None:
    directory = network_copy
    cleanup_processes.append(directory)
    code, out, err = cli("network", "up", "--dir", str(directory), "--timeout", "20")
    assert code == 0, err
    assert out.count(" started ") == 4

    pids = {}
    for node_id in ("node0", "node1", "node2", "node3"):
        pids[node_id] = int((directory / f"nodes/{node_id}/node.pid").read_text())
        assert _alive(pids[node_id])
        assert os.getsid(pids[node_id]) == pids[node_id]  # its own session
    assert "serving on" in (directory / "nodes/node2/node.out").read_text()
    assert '"event": "listening"' in (directory / "nodes/node2/node.log").read_text()

    rows = _status(cli, directory)
    assert [row["node_id"] for row in rows] == ["node0", "node1", "node2", "node3"]
    for row in rows:
        assert row["up"] is True
        assert row["pid"] == pids[str(row["node_id"])]
        assert row["height"] == 7 and row["view"] == 0 and row["primary_node_id"] == "node0"
        assert row["peers_connected"] == row["peers_total"] == 3
        assert isinstance(row["state_root"], str) and len(row["state_root"]) == 64
        assert row["role"] == "validator" and row["lag_blocks"] is None

    code, out, _ = cli("network", "status", "--dir", str(directory))
    assert code == 0
    assert out.splitlines()[0].split() == [
        "node",
        "role",
        "state",
        "pid",
        "height",
        "view",
        "primary",
        "peers",
        "state",
        "root",
        "lag",
    ]
    assert out.splitlines()[1].split()[:3] == ["node0", "validator", "up"]

    # A second up starts nothing: every pid is alive and runs this node's config.
    code, out, _ = cli("network", "up", "--dir", str(directory), "--json")
    assert code == 0
    assert {row["action"] for row in json.loads(out)["nodes"]} == {"already running"}

    code, out, _ = cli("network", "down", "--dir", str(directory), "--json")
    assert code == 0
    assert {row["result"] for row in json.loads(out)["nodes"]} == {"stopped"}
    assert not any(_alive(pid) for pid in pids.values())
    assert not list(directory.glob("nodes/*/node.pid"))
    assert "stopping" in (directory / "nodes/node0/node.out").read_text()

    for row in _status(cli, directory, expect=1):
        assert row["up"] is False
        for key in ("pid", "height", "view", "primary_node_id", "state_root"):
            assert row[key] is None

    code, out, _ = cli("network", "down", "--dir", str(directory))
    assert code == 0 and out.count("not running") == 4


@pytest.mark.usefixtures("fake_nodes")
def test_up_reports_a_node_that_exits_with_its_log(
    network_copy: Path,
    cli: CliRunner,
    cleanup_processes: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory = network_copy
    cleanup_processes.append(directory)
    monkeypatch.setenv("FAKE_NODE_FAIL", "node2")
    code, out, err = cli("network", "up", "--dir", str(directory), "--timeout", "20")
    assert code == 1
    assert "error: NODES_NOT_UP: 1 of 4 node(s) did not come up (node2)" in err
    assert "node2: exited with status 3: fake node node2: simulated start failure; last" in err
    assert "fake node node2: simulated start failure" in err
    assert "exited with status 3" in out
    assert not (directory / "nodes/node2/node.pid").exists()
    rows = {row["node_id"]: row for row in _status(cli, directory, expect=1)}
    assert [rows[n]["up"] for n in ("node0", "node1", "node2", "node3")] == [
        True,
        True,
        False,
        True,
    ]

    # The failure was in this start only: the next start's log tail does not repeat it.
    monkeypatch.delenv("FAKE_NODE_FAIL")
    monkeypatch.setenv("FAKE_NODE_HANG", "node2")
    code, _, err = cli("network", "up", "--dir", str(directory), "--timeout", "5")
    assert code == 1
    assert "node2: not ready within 5 s: metrics port" in err
    assert "hanging without an API" in err
    assert "simulated start failure" not in err

    assert cli("network", "down", "--dir", str(directory))[0] == 0
    assert not list(directory.glob("nodes/*/node.pid"))


@pytest.mark.usefixtures("fake_nodes")
def test_down_kills_a_node_that_ignores_sigterm(
    tmp_path: Path,
    cli: CliRunner,
    cleanup_processes: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory = tmp_path / "net"
    cleanup_processes.append(directory)
    assert cli("network", "init", "--dir", str(directory), "--nodes", "1")[0] == 0
    monkeypatch.setenv("FAKE_NODE_IGNORE_TERM", "node0")
    assert cli("network", "up", "--dir", str(directory))[0] == 0
    pid = int((directory / "nodes/node0/node.pid").read_text())

    code, _, err = cli("network", "init", "--dir", str(directory), "--force")
    assert code == 1 and "NETWORK_RUNNING" in err  # never deletes a running network

    code, out, _ = cli("network", "down", "--dir", str(directory), "--timeout", "0.5", "--json")
    assert code == 0
    assert json.loads(out)["nodes"][0]["result"] == "killed after SIGTERM timeout"
    assert not _alive(pid)


def test_stale_pid_file_is_not_trusted(network_copy: Path, cli: CliRunner) -> None:
    # Our own pid is alive but is not running this node's config: never signal it.
    (network_copy / "nodes/node0/node.pid").write_text(f"{os.getpid()}\n")
    code, out, _ = cli("network", "down", "--dir", str(network_copy), "--json")
    assert code == 0
    assert json.loads(out)["nodes"][0]["result"] == "not running (stale pid file)"
    assert not (network_copy / "nodes/node0/node.pid").exists()


def test_commands_need_a_network(tmp_path: Path, cli: CliRunner) -> None:
    for verb in ("up", "down", "status"):
        code, _, err = cli("network", verb, "--dir", str(tmp_path / "none"))
        assert code == 1
        assert "NETWORK_INVALID" in err and "network.json: does not exist" in err


def test_node_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(network.NODE_COMMAND_ENV, raising=False)
    assert network.node_command(Path("/n/node.toml")) == [
        sys.executable,
        "-m",
        "ibledger.cli.main",
        "node",
        "start",
        "--config",
        "/n/node.toml",
    ]
    monkeypatch.setenv(network.NODE_COMMAND_ENV, "python3 'my node.py'")
    assert network.node_command(Path("/n/node.toml")) == [
        "python3",
        "my node.py",
        "--config",
        "/n/node.toml",
    ]


@pytest.mark.usefixtures("fake_nodes")
def test_up_names_the_reason_a_node_logged_and_status_says_quorum_lost(
    network_copy: Path,
    cli: CliRunner,
    cleanup_processes: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory = network_copy
    cleanup_processes.append(directory)
    monkeypatch.setenv("FAKE_NODE_FAIL_LOGGED", "node1,node3")
    code, _, err = cli("network", "up", "--dir", str(directory), "--timeout", "20")
    assert code == 1
    assert "node1: exited with status 2: start failed: simulated bind" in err
    assert "node3: exited with status 2: start failed: simulated bind" in err
    assert "node0: ready" in err  # progress, one plain line per node off a terminal
    code, _, err = cli("network", "status", "--dir", str(directory))
    assert code == 1
    assert "QUORUM_LOST" in err and "2 of 4 validators are up and 3 are needed" in err
    assert "node1, node3" in err
    assert cli("network", "down", "--dir", str(directory))[0] == 0


def test_network_logs_prints_and_follows_across_rotation(
    network_copy: Path, cli: CliRunner, tmp_path: Path
) -> None:
    directory = network_copy
    for node_id in ("node0", "node1", "node2", "node3"):
        lines = [json.dumps({"node": node_id, "n": i}) for i in range(30)]
        (directory / f"nodes/{node_id}/node.log").write_text("\n".join(lines) + "\n")
    code, out, _ = cli("network", "logs", "--dir", str(directory), "node2", "-n", "3")
    assert code == 0
    assert [json.loads(line)["n"] for line in out.splitlines()] == [27, 28, 29]
    code, out, _ = cli("network", "logs", "--dir", str(directory), "-n", "1")
    assert out.splitlines()[0].startswith("node0 | ") and len(out.splitlines()) == 4
    code, _, err = cli("network", "logs", "--dir", str(directory), "node9")
    assert code == 1 and "UNKNOWN_NODE" in err

    log = directory / "nodes/node0/node.log"
    follower = network._Follower(log)
    follower.start()
    with log.open("a") as handle:
        handle.write('{"n": 30}\n{"n": 3')
    assert follower.lines() == ['{"n": 30}']
    with log.open("a") as handle:
        handle.write("1}\n")
    log.rename(log.with_suffix(".log.1"))  # what the node's rotating handler does
    log.write_text('{"n": 32}\n')
    assert follower.lines() == ['{"n": 31}', '{"n": 32}']


def test_up_progress_is_one_rewritten_line_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    progress = network._Progress(4, enabled=True)
    progress.waiting(1, {"node2": "starting", "node3": "catching up: height 5 of 90"})
    progress.node_done("node2", "ready")
    progress.finish()
    err = capsys.readouterr().err
    assert err.startswith("\r\x1b[K1/4 ready, 0 s  node2: starting, node3: catching up")
    assert "\r\x1b[Knode2: ready (" in err  # the line is cleared before a node's own line

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    progress = network._Progress(4, enabled=True)
    progress.waiting(1, {"node2": "starting"})
    progress.node_done("node2", "ready")
    assert capsys.readouterr().err.startswith("node2: ready (")  # plain lines only
