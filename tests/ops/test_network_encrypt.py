"""``network init --encrypt``: no private key anywhere in the network directory is readable
without the passphrase, and a passphrase is required to write one."""

from __future__ import annotations

import base64
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ibledger.cli.client import load_keypair
from ibledger.cli.manifest import load_manifest
from ibledger.node.config import load_node_config
from ibledger.node.keyfile import read_key_file

from .conftest import CliRunner

PASSPHRASE = b"a passphrase for every key"
PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


@pytest.fixture(scope="module")
def encrypted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from .conftest import run_cli

    base = tmp_path_factory.mktemp("encrypted")
    pass_file = base / "pass"
    pass_file.write_bytes(PASSPHRASE + b"\n")
    pass_file.chmod(0o600)
    directory = base / "network"
    arguments = ["network", "init", "--dir", str(directory), "--nodes", "4", "--encrypt"]
    assert run_cli(*arguments, "--passphrase-file", str(pass_file)) == 0
    return directory


def _secret_forms(key: object) -> list[bytes]:
    """Ways the key's secret could be stored unencrypted: raw, hex, base64, PKCS#8 DER."""
    if isinstance(key, Ed25519PrivateKey):
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        raw = key.private_numbers().private_value.to_bytes(32, "big")
    der = key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return [raw, raw.hex().encode(), base64.b64encode(raw), base64.b64encode(der)[:40], der]


def test_init_encrypt_leaves_no_plaintext_private_key_anywhere(encrypted_dir: Path) -> None:
    files = [path for path in encrypted_dir.rglob("*") if path.is_file()]
    key_files = []
    for path in files:
        data = path.read_bytes()
        labels = PEM_BLOCK.findall(data)
        for label in labels:
            if label.endswith(b"PRIVATE KEY"):
                assert label == b"ENCRYPTED PRIVATE KEY", f"{path}: {label.decode()}"
                key_files.append(path)
        # Nothing loads as a private key without the passphrase, PEM or DER.
        for loader in (serialization.load_pem_private_key, serialization.load_der_private_key):
            with pytest.raises((ValueError, TypeError)):
                loader(data, password=None)
    relative = {str(path.relative_to(encrypted_dir)) for path in key_files}
    assert relative == {
        "ca/ca.key",
        *(f"nodes/node{i}/keys/validator.key.pem" for i in range(4)),
        *(f"nodes/node{i}/tls/node.key" for i in range(4)),
        *(
            f"identities/{name}.key.pem"
            for name in json.loads((encrypted_dir / "network.json").read_text())["identities"]
        ),
    }
    # And no file holds any key's secret in another encoding.
    secrets = [
        form for path in key_files for form in _secret_forms(read_key_file(path, PASSPHRASE))
    ]
    for path in files:
        data = path.read_bytes()
        for form in secrets:
            assert form not in data, f"{path} holds a private key in the clear"


def test_encrypted_network_records_that_keys_must_be_encrypted(encrypted_dir: Path) -> None:
    manifest = load_manifest(encrypted_dir)
    assert manifest.keys_encrypted
    config = load_node_config(encrypted_dir / "nodes/node0/node.toml", passphrase=PASSPHRASE)
    assert config.keys.encrypted
    admin = manifest.identity("ADMIN")
    assert load_keypair(admin.key_file, passphrase=PASSPHRASE, require_encrypted=True).public_key


def test_init_encrypt_without_a_passphrase_writes_nothing(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IBLEDGER_PASSPHRASE", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _, err = cli("network", "init", "--dir", str(tmp_path / "net"), "--encrypt")
    assert code != 0
    assert "PASSPHRASE_REQUIRED" in err and "--passphrase-file" in err
    assert "Traceback" not in err
    assert not (tmp_path / "net" / "ca").exists()


def test_init_encrypt_takes_the_passphrase_from_the_environment(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IBLEDGER_PASSPHRASE", "from the environment")
    code, _, err = cli(
        "network", "init", "--dir", str(tmp_path / "net"), "--nodes", "1", "--encrypt"
    )
    assert code == 0, err
    key = tmp_path / "net" / "ca" / "ca.key"
    assert isinstance(read_key_file(key, b"from the environment"), ec.EllipticCurvePrivateKey)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(key.read_bytes(), password=b"another passphrase")


def test_a_world_readable_passphrase_file_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    pass_file = tmp_path / "pass"
    pass_file.write_bytes(PASSPHRASE)
    pass_file.chmod(0o644)
    code, _, err = cli(
        "network", "init", "--dir", str(tmp_path / "net"), "--encrypt",
        "--passphrase-file", str(pass_file),
    )  # fmt: skip
    assert code != 0 and f"chmod 600 {pass_file}" in err
    assert not (tmp_path / "net" / "ca").exists()


def _init_at_a_terminal(directory: Path, answers: list[bytes]) -> tuple[int, str]:
    """``network init --encrypt`` with a terminal as standard input, answering each prompt."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "ibledger.cli.main", "network", "init", "--encrypt",
         "--nodes", "1", "--dir", str(directory)],
        stdin=terminal,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("IBLEDGER_PASS")},
        start_new_session=True,  # no controlling terminal: getpass uses standard input
    )  # fmt: skip
    assert process.stderr is not None
    err = b""
    try:
        deadline = time.monotonic() + 120  # bounds a hang only
        pending = list(answers)
        while time.monotonic() < deadline:
            ready, _, _ = select.select([process.stderr], [], [], 1.0)
            if ready:
                chunk = os.read(process.stderr.fileno(), 4096)
                if not chunk:
                    break
                err += chunk
                # Answer only once a prompt shows: getpass flushes input typed before it.
                if pending and err.rstrip().endswith(b":"):
                    os.write(controller, pending.pop(0) + b"\n")
        process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
        os.close(controller)
        os.close(terminal)
    return process.returncode, err.decode()


def test_init_encrypt_asks_twice_at_a_terminal(tmp_path: Path) -> None:
    code, err = _init_at_a_terminal(tmp_path / "net", [b"typed at the prompt"] * 2)
    assert code == 0, err
    assert "typed at the prompt" not in err  # not echoed
    key = tmp_path / "net" / "nodes" / "node0" / "keys" / "validator.key.pem"
    assert isinstance(read_key_file(key, b"typed at the prompt"), Ed25519PrivateKey)

    code, err = _init_at_a_terminal(tmp_path / "other", [b"first try", b"second try"])
    assert code != 0 and "PASSPHRASE_MISMATCH" in err
    assert not (tmp_path / "other" / "ca").exists()
