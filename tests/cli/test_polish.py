"""Small CLI conventions: --node without a port, keys show on a path, -q, colour and exit
statuses in --help."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ibledger.cli import output
from ibledger.cli.client_options import node_address
from ibledger.cli.errors import EXIT_CODES, ClientError
from ibledger.node.ports import DEFAULT_API_PORT

SCRIPT = Path(sys.executable).with_name("ibledger")


def _run(
    *args: str, home: Path, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "IBLEDGER_HOME": str(home), **env},
        timeout=120,
    )


@pytest.mark.parametrize(
    ("given", "address"),
    [
        ("node1", f"node1:{DEFAULT_API_PORT}"),
        ("node1:9000", "node1:9000"),
        ("10.1.2.3", f"10.1.2.3:{DEFAULT_API_PORT}"),
        ("::1", f"[::1]:{DEFAULT_API_PORT}"),
        ("[::1]", f"[::1]:{DEFAULT_API_PORT}"),
        ("[::1]:7100", "[::1]:7100"),
    ],
)
def test_node_without_a_port_gets_the_default_api_port(given: str, address: str) -> None:
    assert node_address(given) == address


def test_a_bad_node_address_is_a_usage_error() -> None:
    with pytest.raises(ClientError) as refused:
        node_address("no such host")
    assert refused.value.code == "NODE_ADDRESS_INVALID"


def test_keys_show_takes_a_path(tmp_path: Path) -> None:
    made = json.loads(_run("keys", "new", "bank-b", "--json", home=tmp_path).stdout)
    by_path = _run("keys", "show", made["private_key_file"], "--json", home=tmp_path)
    assert by_path.returncode == 0, by_path.stderr
    assert json.loads(by_path.stdout)["key_id"] == made["key_id"]
    folder = Path(made["private_key_file"]).parent
    relative = _run("keys", "show", "bank-b.key.pem", "--json", home=tmp_path, cwd=folder)
    assert json.loads(relative.stdout)["public_key"] == made["public_key"]


def test_quiet_prints_no_result_but_errors_and_json(tmp_path: Path) -> None:
    quiet = _run("-q", "validate", "isin", "US0378331005", home=tmp_path)
    assert quiet.returncode == 0 and quiet.stdout == ""
    as_json = _run("-q", "validate", "isin", "US0378331005", "--json", home=tmp_path)
    assert json.loads(as_json.stdout)["valid"] is True
    failed = _run("-q", "keys", "show", "missing", home=tmp_path)
    assert failed.returncode == 1 and "error:" in failed.stderr


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_under_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    output.configure()
    assert output.paint("x", "red", _Tty()) != "x"
    assert output.paint("x", "red", io.StringIO()) == "x"
    monkeypatch.setenv("NO_COLOR", "1")
    assert output.paint("x", "red", _Tty()) == "x"
    monkeypatch.delenv("NO_COLOR")
    output.configure(color="never")
    assert output.paint("x", "red", _Tty()) == "x"
    output.configure(color="always")
    assert output.paint("x", "red", io.StringIO()) != "x"
    output.configure()


def test_errors_are_not_coloured_in_a_pipe(tmp_path: Path) -> None:
    failed = _run("keys", "show", "missing", home=tmp_path)
    assert failed.stderr.startswith("error: ") and "\x1b[" not in failed.stderr
    forced = _run("--color", "always", "keys", "show", "missing", home=tmp_path)
    assert "\x1b[31m" in forced.stderr
    off = _run("--color", "always", "keys", "show", "missing", home=tmp_path, NO_COLOR="1")
    assert "\x1b[" not in off.stderr


def test_help_lists_every_exit_status(tmp_path: Path) -> None:
    helped = _run("--help", home=tmp_path)
    assert "exit status:" in helped.stdout
    for code, _ in EXIT_CODES:
        assert f"\n  {code} " in helped.stdout
