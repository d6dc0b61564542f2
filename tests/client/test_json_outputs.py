"""The ``--json`` output of the read commands after an asset is registered and allotted: the
amounts are amount objects in the instrument's currency, identifiers are named after what they
identify. (Every output here is also held to the whole convention by tests/conftest.py.)"""

from __future__ import annotations

from typing import Any

from .conftest import CliResult, Network
from .test_cli_commands import ISIN, _register_bond

Cli = Any
CNY = "CNY"


def ok(result: CliResult) -> Any:
    assert result.code == 0, (result.code, result.out, result.err)
    return result.json()


def _amount(text: str, minor: int) -> dict[str, Any]:
    return {"amount": text, "currency": CNY, "amount_minor": minor}


def test_read_commands_speak_the_json_convention(cli: Cli, network: Network) -> None:
    _register_bond(cli)
    issued = ok(cli("asset", "issue", ISIN, "--allot", "ICBC=6000000.00", "--allot",
                    "CIB=4000000.00", "--as", "CSDC", "--json"))  # fmt: skip
    allotted = next(e for e in issued["events"] if e["kind"] == "asset.issued")["attrs"]
    assert allotted["total"] == _amount("10000000.00", 1_000_000_000)
    assert {row["holder"]: row["quantity"]["amount"] for row in allotted["allotments"]} == {
        "CIB": "4000000.00",
        "ICBC": "6000000.00",
    }
    assert issued["args"]["allotments"][0]["quantity"] == 600_000_000  # as signed

    shown = ok(cli("asset", "show", ISIN, "--as", "ICBC", "--json"))
    assert shown["issue_size"] == _amount("10000000.00", 1_000_000_000)
    assert shown["denomination"] == _amount("100.00", 10_000)
    listed = ok(cli("asset", "list", "--as", "ICBC", "--json"))["instruments"]
    assert listed[0]["outstanding"] == _amount("10000000.00", 1_000_000_000)

    history = ok(cli("asset", "history", ISIN, "--as", "CSDC", "--json"))["history"]
    assert all("_minor" not in key for entry in history for key in entry["attrs"])

    participants = ok(cli("participant", "list", "--as", "ICBC", "--json"))["participants"]
    assert "ICBC" in {row["participant"] for row in participants}
    assert all("id" not in row for row in participants)

    status = ok(cli("status", "--json"))
    assert status["primary_node_id"] == "v0"
    assert {peer["node_id"] for peer in status["peers"]} == {"v1", "v2", "v3"}

    exposures = ok(cli("supervise", "exposures", "--as", "REGULATOR", "--json"))
    assert exposures["acceptors"] == [] and isinstance(exposures["height"], int)
    scope = ok(cli("supervise", "history", "--asset", ISIN, "--as", "REGULATOR", "--json"))
    assert scope["history"]
