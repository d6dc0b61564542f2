"""A network whose every private key is encrypted, run as real processes: ``network up`` hands
the passphrase to the nodes without a command-line argument, a participant signs through the CLI
and the transaction commits; a node started without the passphrase, or with a wrong one, stops
at once with an error naming its key file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ibledger.cli.manifest import Manifest, load_manifest

pytestmark = pytest.mark.slow

PASSPHRASE = "open sesame, but slowly"
CLI = [sys.executable, "-m", "ibledger.cli.main"]


def _environment(**extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("IBLEDGER_PASS")}
    environment.update(extra)
    return environment


def _cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=180,  # bounds a hang only
        env=_environment(**extra),
        stdin=subprocess.DEVNULL,  # not a terminal: no prompt, a missing passphrase is an error
    )


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Manifest, Path]]:
    base = tmp_path_factory.mktemp("encrypted")
    pass_file = base / "pass"
    pass_file.write_text(PASSPHRASE + "\n")
    pass_file.chmod(0o600)
    directory = base / "network"
    init = _cli("network", "init", "--dir", str(directory), "--encrypt", "--passphrase-file",
                str(pass_file))  # fmt: skip
    assert init.returncode == 0, init.stderr
    try:
        yield load_manifest(directory), pass_file
    finally:
        _cli("network", "down", "--dir", str(directory))


def _pids(manifest: Manifest) -> list[int]:
    pids = []
    for node in manifest.nodes:
        pid_file = node.dir / "node.pid"
        if pid_file.exists():
            pids.append(int(pid_file.read_text()))
    return pids


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def test_up_without_the_passphrase_refuses_and_starts_nothing(
    network: tuple[Manifest, Path],
) -> None:
    manifest, _ = network
    result = _cli("network", "up", "--dir", str(manifest.directory))
    assert result.returncode != 0
    assert "KEY_PASSPHRASE_REQUIRED" in result.stderr or "is encrypted" in result.stderr
    assert "--passphrase-file" in result.stderr and "Traceback" not in result.stderr
    assert _pids(manifest) == []


def test_up_with_the_passphrase_starts_every_node_without_exposing_it(
    network: tuple[Manifest, Path],
) -> None:
    manifest, pass_file = network
    result = _cli("network", "up", "--dir", str(manifest.directory), "--timeout", "60",
                  "--passphrase-file", str(pass_file))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    pids = _pids(manifest)
    assert len(pids) == len(manifest.nodes) == 4
    for pid in pids:
        assert _alive(pid)
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes()
        environment = Path(f"/proc/{pid}/environ").read_bytes()
        assert PASSPHRASE.encode() not in arguments
        assert PASSPHRASE.encode() not in environment
        assert str(pass_file).encode() not in arguments


def test_a_participant_signs_with_its_encrypted_key_and_the_transaction_commits(
    network: tuple[Manifest, Path], tmp_path: Path
) -> None:
    manifest, pass_file = network
    new_key = _cli("keys", "new", "newco", "--dir", str(tmp_path))
    assert new_key.returncode == 0, new_key.stderr
    register = ["participant", "register", "NEWCO", "--name", "New Co", "--role", "regulator",
                "--public-key-file", str(tmp_path / "newco.pub.pem"),
                "--network", str(manifest.directory), "--as", "ADMIN", "--json"]  # fmt: skip
    refused = _cli(*register)
    assert refused.returncode != 0
    assert "KEY_PASSPHRASE_REQUIRED" in refused.stderr and "ADMIN.key.pem" in refused.stderr
    wrong = _cli(*register, IBLEDGER_PASSPHRASE="not it")
    assert wrong.returncode != 0 and "KEY_PASSPHRASE_WRONG" in wrong.stderr
    assert "not it" not in wrong.stderr and "Traceback" not in wrong.stderr
    committed = _cli(*register, "--passphrase-file", str(pass_file))
    assert committed.returncode == 0, committed.stderr
    assert '"code": "OK"' in committed.stdout
    # Queries are signed too: the regulator reads the new entry with its own encrypted key.
    shown = _cli("participant", "show", "NEWCO", "--network", str(manifest.directory),
                 "--as", "REGULATOR", "--passphrase-file", str(pass_file), "--json")  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "New Co" in shown.stdout


def _stop(pid: int) -> None:
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30  # bounds a hang only
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


@pytest.mark.parametrize(
    ("extra", "code"),
    [({}, "KEY_PASSPHRASE_REQUIRED"), ({"IBLEDGER_PASSPHRASE": "wrong"}, "KEY_PASSPHRASE_WRONG")],
)
def test_a_node_without_the_right_passphrase_exits_with_a_clear_error(
    network: tuple[Manifest, Path], extra: dict[str, str], code: str
) -> None:
    manifest, _ = network
    node = manifest.nodes[0]
    pid_file = node.dir / "node.pid"
    if pid_file.exists() and _alive(int(pid_file.read_text())):
        _stop(int(pid_file.read_text()))
    result = _cli("node", "start", "--config", str(node.config), **extra)
    assert result.returncode != 0
    assert "validator.key.pem" in result.stderr
    assert ("is encrypted" if code == "KEY_PASSPHRASE_REQUIRED" else "wrong passphrase") in (
        result.stderr
    )
    assert "--passphrase-file" in result.stderr and "Traceback" not in result.stderr
    assert "wrong" not in result.stderr.replace("wrong passphrase", "")
