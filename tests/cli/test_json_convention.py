"""The JSON convention of every ``--json`` output (``ibledger.cli.convention``): amounts become
amount objects at the one rendering point, ``output.json_text``; the checker refuses keys and
values that break the convention; the local commands' real output follows it.

Every in-process test of a command is also checked by the autouse fixture in tests/conftest.py,
so the client commands run against the fake node in tests/client are held to it as well."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from ibledger.cli import main as cli_main
from ibledger.cli.convention import amount_object, normalize, violations
from ibledger.cli.output import json_text


def _shown(data: dict[str, Any], **kwargs: Any) -> Any:
    return json.loads(json_text(data, **kwargs))


def test_fen_fields_become_cny_amount_objects_named_without_the_unit() -> None:
    shown = _shown({"totals": {"held_fen": 100_000_000, "packages": 2}})
    assert shown == {
        "totals": {
            "held": {"amount": "1000000.00", "currency": "CNY", "amount_minor": 100_000_000},
            "packages": 2,
        }
    }


def test_minor_units_take_the_currency_of_the_object_the_isin_or_the_command() -> None:
    own = _shown({"currency": "JPY", "issue_size_minor": 5_000})
    assert own["issue_size"] == {"amount": "5000", "currency": "JPY", "amount_minor": 5_000}
    by_isin = _shown(
        {"history": [{"isin": "CND10006PJH0", "attrs": {"quantity": 150}}]},
        currencies={"CND10006PJH0": "CNY"},
    )
    assert by_isin["history"][0]["attrs"]["quantity"]["amount"] == "1.50"
    given = _shown({"holders": [{"holder": "CIB", "available": 7}]}, currency="USD")
    assert given["holders"][0]["available"]["amount"] == "0.07"


def test_allotment_pairs_become_objects() -> None:
    shown = _shown({"currency": "CNY", "allotments": [["CIB", 100], ["ICBC", 200]]})
    assert shown["allotments"][1] == {
        "holder": "ICBC",
        "quantity": {"amount": "2.00", "currency": "CNY", "amount_minor": 200},
    }


def test_signed_arguments_stay_as_signed() -> None:
    data = {"operation": "bill.issue", "args": {"amount_fen": 100, "id": "x"}}
    assert _shown(data)["args"] == {"amount_fen": 100, "id": "x"}
    assert violations(normalize(data)) == []


def test_a_field_without_a_known_currency_is_left_alone_and_flagged() -> None:
    data = {"isin": "CND10006PJH0", "outstanding_minor": 10}
    assert normalize(data) == data  # no currency: not guessed
    assert violations(normalize(data)) == [
        "$.outstanding_minor: an amount is an amount object, not a field in minor units"
    ]
    assert violations({"isin": "CND10006PJH0", "quantity": 10}) == [
        "$.quantity: an amount is an amount object, not a bare number"
    ]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ([{"node_id": "node0"}], "$: a command's JSON output is an object"),
        ({"nodeId": "node0"}, "$.nodeId: keys are snake_case"),
        ({"id": "node0"}, "$.id: name the identifier after what it identifies"),
        ({"peers": [{"node": "node1"}]}, "$.peers[0].node: a node is named node_id"),
        ({"primary": "node0"}, "$.primary: the primary is named primary_node_id"),
        ({"costs_fen": 5}, "$.costs_fen: an amount is an amount object"),
        (
            {"amount": {"amount": "1.5", "currency": "CNY", "amount_minor": 150}},
            "$.amount: amount '1.5' is not 150 minor units of CNY",
        ),
        (
            {"amount": {"amount": 1.5, "currency": "CNY", "amount_minor": 150}},
            "$.amount.amount: a decimal string",
        ),
        ({"created_timestamp": 1772416803000}, "$.created_timestamp: a time is named with its"),
        ({"expires_at": 1772416803000}, "$.expires_at: a time is named with its unit"),
        ({"maturity_date": "31/08/2026"}, "$.maturity_date: a date is an ISO 8601"),
        ({"pledges": {"b0e7a72b04727e8e": {}}}, "$.pledges.b0e7a72b04727e8e: keys are snake"),
        ({"freezes": {"COURT-1": {}}}, "$.freezes.COURT-1: keys are snake_case"),
    ],
)
def test_the_checker_refuses_what_breaks_the_convention(data: Any, problem: str) -> None:
    found = violations(data)
    assert any(line.startswith(problem) for line in found), found


def test_the_checker_accepts_the_convention() -> None:
    data = {
        "node_id": "node0",
        "primary_node_id": "node1",
        "height": 7,
        "timestamp_ms": 1772416803000,
        "maturity_date": "2026-08-31",
        "holding": {"currency": "CNY", "quantity": amount_object(550_000_000, "CNY")},
        "messages_by_type": {"PrePrepare": 3, "Commit": 9},
        "wall_s": 1.25,
        "analytical_latency_ms": {"total": 12.5},  # not about money: a total, not an amount
    }
    assert violations(data) == []


def _cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = cli_main.main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue()


def test_local_commands_output_follows_the_convention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IBLEDGER_HOME", str(tmp_path))
    outputs = [
        _cli("keys", "new", "bank-a", "--json"),
        _cli("keys", "show", "bank-a", "--json"),
        _cli("validate", "isin", "US0378331005", "--json"),
        _cli("validate", "lei", "5493002ERZU2K9PZDL4X", "--json"),
    ]
    for code, out in outputs:
        assert code in (0, 1)
        assert violations(json.loads(out)) == [], out
