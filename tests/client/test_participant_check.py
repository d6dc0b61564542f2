"""Participants are checked against the identity registry before anything is signed: a
counterparty that is unknown, deactivated or without a USCC or LEI, the subject of a participant
or governance command that does not exist (or, to register, already does) fails locally with the
ledger's own code and exit status 2, naming the argument, and no transaction is sent."""

from __future__ import annotations

from typing import Any

import grpc

from ibledger.node.crypto import generate_keypair

from .conftest import CliResult, Network, package_no

Cli = Any
ISSUE = ("--kind", "BANK", "--amount", "1000.00", "--maturity-date", "2026-08-31")


def _submits(network: Network) -> int:
    return sum(1 for call in network.node.calls if call.startswith("Submit"))


def _refused(result: CliResult, code: str, flag: str, participant: str) -> None:
    assert result.code == 2, (result.code, result.out, result.err)
    error = result.error()
    assert error["code"] == code
    assert error["message"].startswith(f"{flag} {participant!r}: "), error


def test_an_unknown_counterparty_fails_before_signing(cli: Cli, network: Network) -> None:
    before = _submits(network)
    issue = cli(
        "bill", "issue", package_no(1), *ISSUE,
        "--acceptor", "ICBC", "--payee", "SUPPLEIR", "--as", "HUAWEI", "--json",
    )  # fmt: skip
    _refused(issue, "PARTY_NOT_REGISTERED", "--payee", "SUPPLEIR")
    text = cli("bill", "issue", package_no(1), *ISSUE, "--acceptor", "ICBX", "--payee",
               "SUPPLIER", "--as", "HUAWEI")  # fmt: skip
    assert text.code == 2
    assert text.err.startswith("error: PARTY_NOT_REGISTERED: --acceptor 'ICBX': ICBX is not")
    assert _submits(network) == before  # nothing was signed or sent


def test_a_party_without_uscc_or_lei_and_a_deactivated_one_are_refused(
    cli: Cli, network: Network
) -> None:
    # ADMIN is registered and active but has neither a USCC nor an LEI.
    issue = cli("bill", "issue", package_no(2), *ISSUE, "--acceptor", "ICBC", "--payee", "ADMIN",
                "--as", "HUAWEI", "--json")  # fmt: skip
    _refused(issue, "PARTY_NOT_REGISTERED", "--payee", "ADMIN")
    assert "neither a USCC nor an LEI" in issue.error()["message"]

    proposal = cli("governance", "propose", "deactivate", "SUPPLIER", "--as", "ADMIN", "--json")
    assert proposal.code == 0, proposal.err
    approved = cli("governance", "approve", proposal.json()["proposal"], "--as", "ADMIN2")
    assert approved.code == 0, approved.err
    issue = cli("bill", "issue", package_no(2), *ISSUE, "--acceptor", "ICBC", "--payee",
                "SUPPLIER", "--as", "HUAWEI", "--json")  # fmt: skip
    _refused(issue, "PARTY_NOT_REGISTERED", "--payee", "SUPPLIER")
    assert "deactivated" in issue.error()["message"]


def test_the_subject_of_a_participant_command_must_exist_or_not(cli: Cli, network: Network) -> None:
    before = _submits(network)
    unknown = cli("governance", "propose", "deactivate", "SUPLIER", "--as", "ADMIN", "--json")
    _refused(unknown, "UNKNOWN_PARTICIPANT", "ID", "SUPLIER")
    key = generate_keypair().public_key.hex()
    again = cli("governance", "propose", "register", "ICBC", "--name", "ICBC again", "--role",
                "bank", "--public-key", key, "--as", "ADMIN", "--json")  # fmt: skip
    _refused(again, "DUPLICATE_PARTICIPANT", "ID", "ICBC")
    assert _submits(network) == before


def test_the_check_can_be_skipped_and_the_ledger_then_refuses_with_the_same_code(
    cli: Cli, network: Network
) -> None:
    issue = cli("bill", "issue", package_no(3), *ISSUE, "--acceptor", "ICBC", "--payee",
                "NOBODY", "--as", "HUAWEI", "--no-participant-check", "--json")  # fmt: skip
    assert issue.code == 1, (issue.out, issue.err)
    assert issue.error()["code"] == "PARTY_NOT_REGISTERED"  # in a block this time


def test_a_registry_that_does_not_answer_leaves_the_decision_to_the_node(
    cli: Cli, network: Network
) -> None:
    network.node.fail_next("Query", grpc.StatusCode.INTERNAL, "INTERNAL: the query broke")
    issue = cli("-v", "bill", "issue", package_no(4), *ISSUE, "--acceptor", "ICBC", "--payee",
                "SUPPLIER", "--as", "HUAWEI", "--json")  # fmt: skip
    assert issue.code == 0, (issue.out, issue.err)
    assert issue.json()["ok"] is True
    assert "participant check of SUPPLIER skipped: INTERNAL" in issue.err
