"""The command line and the contracts speak one vocabulary: every argparse ``choices`` list of a
status, role, kind or ground is the contract enum's values, and the bill request subcommands are
exactly the rows of the contracts' action table."""

from __future__ import annotations

import argparse
import enum

import pytest

from ibledger.cli import cmd_asset, cmd_bill, cmd_governance, cmd_participant, validate
from ibledger.cli.main import build_parser
from ibledger.contracts import identifiers, identity, queries
from ibledger.contracts.bill_actions import ACTIONS
from ibledger.contracts.bills import OPERATIONS as BILL_OPERATIONS
from ibledger.contracts.vocabulary import (
    BillKind,
    GuaranteeCapacity,
    InstrumentStatus,
    LeiStatus,
    ProductCategory,
    ProposalStatus,
    RecourseGround,
    Role,
    values,
)


@pytest.mark.parametrize(
    ("cli_values", "vocabulary"),
    [
        (cmd_bill.KINDS, BillKind),
        (cmd_bill.CAPACITIES, GuaranteeCapacity),
        (cmd_bill.RECOURSE_GROUNDS, RecourseGround),
        (cmd_participant.ROLES, Role),
        (cmd_participant.LEI_STATUSES, LeiStatus),
        (cmd_asset.PRODUCT_CATEGORIES, ProductCategory),
        (cmd_asset.STATUSES, InstrumentStatus),
        (cmd_governance.STATUSES, ProposalStatus),
    ],
)
def test_cli_constants_are_the_contract_enums(
    cli_values: tuple[str, ...], vocabulary: type[enum.StrEnum]
) -> None:
    assert tuple(cli_values) == values(vocabulary)


def test_contract_side_lists_are_the_enums_too() -> None:
    assert values(Role) == identity.ROLES
    assert values(ProposalStatus) == queries.PROPOSAL_STATUSES
    assert set(validate.KINDS) <= set(identifiers.KINDS)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _choices(parser: argparse.ArgumentParser, flag: str) -> tuple[str, ...]:
    for action in parser._actions:
        if flag in action.option_strings or action.dest == flag:
            assert action.choices is not None, f"{flag} has no choices"
            return tuple(action.choices)
    raise AssertionError(f"no {flag} option")


def _command(*path: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        parser = _subparsers(parser)[name]
    return parser


@pytest.mark.parametrize(
    ("path", "flag", "vocabulary"),
    [
        (("bill", "issue"), "--kind", BillKind),
        (("bill", "guarantee"), "--capacity", GuaranteeCapacity),
        (("bill", "recourse"), "--ground", RecourseGround),
        (("participant", "list"), "--role", Role),
        (("asset", "list"), "--status", InstrumentStatus),
        (("governance", "list"), "--status", ProposalStatus),
    ],
)
def test_parser_choices_are_the_contract_enums(
    path: tuple[str, ...], flag: str, vocabulary: type[enum.StrEnum]
) -> None:
    assert _choices(_command(*path), flag) == values(vocabulary)


def test_bill_request_subcommands_are_the_action_table() -> None:
    cli_operations = {command.operation for command in cmd_bill.REQUESTS}
    table_operations = {action.operation for action in ACTIONS.values()}
    assert cli_operations == table_operations
    verbs = _subparsers(_command("bill"))
    for command in cmd_bill.REQUESTS:
        assert command.verb in verbs
    # and every operation the CLI submits for a bill exists in the contracts
    assert table_operations <= set(BILL_OPERATIONS)
