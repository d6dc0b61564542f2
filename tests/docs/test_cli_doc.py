"""docs/cli.md stays in step with the command line: its exit status table is ``EXIT_CODES``, and
every code the checks before signing raise is described, and the flag that skips them exists."""

from __future__ import annotations

import re
from pathlib import Path

from ibledger.cli.errors import EXIT_CODES
from ibledger.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
CLI_DOC = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


def test_exit_status_table_is_the_cli_table() -> None:
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", CLI_DOC, flags=re.MULTILINE)
    assert [(int(status), meaning) for status, meaning in rows] == list(EXIT_CODES)


def test_the_checks_before_signing_are_described_with_their_codes_and_flag() -> None:
    source = (ROOT / "cli" / "validate.py").read_text(encoding="utf-8")
    raised = set(re.findall(r'CommandError\(\s*"([A-Z_]+)"', source))
    assert {"PARTY_NOT_REGISTERED", "UNKNOWN_PARTICIPANT", "DUPLICATE_PARTICIPANT"} <= raised
    assert all(f"`{code}`" in CLI_DOC for code in raised)


def test_no_participant_check_is_a_transaction_flag() -> None:
    parser = build_parser()
    argv = "asset transfer CND10006PJH0 --to CIB --quantity 1.00 --no-participant-check"
    options = parser.parse_args(argv.split())
    assert options.no_participant_check is True
    assert "`--no-participant-check`" in CLI_DOC
