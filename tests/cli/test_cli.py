"""The installed ``ibledger`` console script: help, keys, validate and the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("ibledger")


def _run(
    *args: str, home: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "IBLEDGER_HOME": str(home), **(env or {})},
        timeout=120,
    )


def test_console_script_is_installed_and_helps(tmp_path: Path) -> None:
    assert SCRIPT.exists(), "install the project: pip install -e ."
    result = _run("--help", home=tmp_path)
    assert result.returncode == 0
    for command in ("keys", "validate", "demo"):
        assert command in result.stdout


def test_keys_new_writes_an_owner_only_key_and_reports_its_id(tmp_path: Path) -> None:
    result = _run("keys", "new", "bank-a", "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    private = Path(report["private_key_file"])
    assert private.stat().st_mode & 0o777 == 0o600
    assert len(bytes.fromhex(report["key_id"])) == 16
    shown = _run("keys", "show", "bank-a", "--json", home=tmp_path)
    assert json.loads(shown.stdout)["public_key"] == report["public_key"]
    again = _run("keys", "new", "bank-a", home=tmp_path)
    assert again.returncode == 1 and "KEY_EXISTS" in again.stderr


def test_keys_new_encrypted_needs_a_passphrase(tmp_path: Path) -> None:
    refused = _run("keys", "new", "locked", "--encrypt", home=tmp_path)
    assert refused.returncode == 1 and "PASSPHRASE_REQUIRED" in refused.stderr
    made = _run(
        "keys", "new", "locked", "--encrypt", home=tmp_path, env={"IBLEDGER_PASSPHRASE": "s3cret"}
    )
    assert made.returncode == 0, made.stderr
    wrong = _run("keys", "show", "locked", home=tmp_path, env={"IBLEDGER_PASSPHRASE": "nope"})
    assert wrong.returncode == 1 and "KEY_PASSPHRASE_WRONG" in wrong.stderr


@pytest.mark.parametrize(
    ("kind", "value", "valid"),
    [
        ("isin", "US0378331005", True),
        ("isin", "US0378331006", False),
        ("lei", "5493002ERZU2K9PZDL40", True),
        ("lei", "5493002ERZU2K9PZDL41", False),
        ("uscc", "91100000100003962T", True),
        ("currency", "RMB", False),
    ],
)
def test_validate_exit_codes(tmp_path: Path, kind: str, value: str, valid: bool) -> None:
    result = _run("validate", kind, value, "--json", home=tmp_path)
    assert result.returncode == (0 if valid else 1)
    report = json.loads(result.stdout)
    assert report["valid"] is valid
    assert (report["rule"] is None) is valid


def test_bad_arguments_fail_with_usage(tmp_path: Path) -> None:
    result = _run("validate", "iban", "X", home=tmp_path)
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_demo_has_no_in_process_ledger(tmp_path: Path) -> None:
    # The demo is a network client (tests/integration/test_demo.py runs it); the single-process
    # tour that opened LevelDB inside the CLI is gone.
    result = _run("demo", "--offline", home=tmp_path)
    assert result.returncode == 2 and "unrecognized arguments: --offline" in result.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("asset", "show", "US03783310051"), "ISIN_INVALID"),  # 13 characters
        (("asset", "holders", "US0378331006"), "ISIN_INVALID"),  # check digit
        (("bill", "show", "5" * 31), "BILL_NO_INVALID"),
    ],
)
def test_identifiers_are_checked_locally_with_their_code(
    tmp_path: Path, args: tuple[str, ...], code: str
) -> None:
    """No node is running: the check happens before any connection, with the ledger's code."""
    result = _run(*args, "--json", home=tmp_path)
    assert result.returncode == 2, result.stderr
    assert code in result.stdout + result.stderr
