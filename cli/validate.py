"""``ibledger validate KIND VALUE``: check an identifier exactly as the contracts will; and the
checks every command makes before it signs anything (docs/cli.md, "Checks before signing").

Two kinds of check run before a transaction is signed, so that a typo costs no failed
transaction in a block, and each fails with the code the ledger would give, exit status 2:

- :func:`check_identifiers`, offline: every identifier option (ISIN, LEI, CFI, USCC, bill
  number) has its identifier's form;
- :func:`check_participants`, one ``participant`` query per participant named: a counterparty
  (``--to``, ``--payee``, ``--acceptor``, ``--pledgee``, ``--guarantor``, ``--recoursee``, the
  trade counterparty, an ``--allot`` holder) is registered, active and carries a USCC or an
  LEI, as the contracts' ``require_party`` demands (``PARTY_NOT_REGISTERED``); the participant
  a participant or governance command acts on is registered (``UNKNOWN_PARTICIPANT``), or, to
  register it, is not (``DUPLICATE_PARTICIPANT``).

The participant check reads the registry as of the node's last block, so it would refuse a
participant registered by a transaction that has not committed yet: ``--no-participant-check``
skips it for such a pipeline. It only refuses on the node's definite answer; if the query
itself fails (an unreachable node, a node without the query) the command goes on and the
submission reports what happens, as it would have without the check.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ibledger.contracts import identifiers

from .errors import EXIT_USAGE, ClientError
from .output import CommandError, add_json_flag, emit, info

if TYPE_CHECKING:
    from .client import Client

KINDS = ("isin", "lei", "cfi", "currency", "bic", "uscc", "cnaps")

# Command options that hold an identifier, and its kind: checked before anything is signed or
# sent, with the code the ledger would answer (ISIN_INVALID for any bad ISIN, never a generic
# argument error), so a typo costs no transaction.
_IDENTIFIER_OPTIONS = {
    "isin": "isin",
    "issuer_lei": "lei",
    "custodian_lei": "lei",
    "parent_leis": "lei",
    "issuer_uscc": "uscc",
    "cfi": "cfi",
    "package_no": "bill_no",
}
_POSITIONAL = ("isin", "package_no")


def check_identifiers(options: argparse.Namespace) -> None:
    """Raise the identifier's own code for the first invalid identifier option, if any."""
    for name, kind in _IDENTIFIER_OPTIONS.items():
        value = getattr(options, name, None)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                result = identifiers.validate(kind, item, production=True)
                if not result.valid:
                    assert result.code is not None
                    flag = name.replace("_", "-")
                    flag = flag.upper() if name in _POSITIONAL else "--" + flag.removesuffix("s")
                    raise CommandError(
                        result.code, f"{flag} {item!r} is not valid: {result.rule}", EXIT_USAGE
                    )


# Counterparty options, by dest, and their flags: the contracts require each to be a registered,
# active participant with a USCC or an LEI (identity.require_party).
_PARTY_OPTIONS = {
    "to": "--to",
    "payee": "--payee",
    "acceptor": "--acceptor",
    "pledgee": "--pledgee",
    "guarantor": "--guarantor",
    "recoursee": "--recoursee",
    "counterparty": "--counterparty",  # the trade's own flag is in options.counterparty_flag
}


def _named_parties(options: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """(flag, participant) for every counterparty option given."""
    for name, flag in _PARTY_OPTIONS.items():
        value = getattr(options, name, None)
        if isinstance(value, str):
            if name == "counterparty":
                flag = getattr(options, "counterparty_flag", flag)
            yield flag, value
    for text in getattr(options, "allot", None) or []:
        holder, found, _ = str(text).partition("=")
        if found and holder:
            yield "--allot", holder


def check_participants(options: argparse.Namespace, client: Client) -> None:
    """Refuse, before signing, a participant argument that the ledger would refuse (see the
    module docstring); ``--no-participant-check`` skips the check."""
    if getattr(options, "no_participant_check", False):
        return
    subject = getattr(options, "participant_id", None)
    if isinstance(subject, str):
        record = _lookup(client, subject)
        registering = getattr(options, "registers_participant", False)
        if registering and isinstance(record, dict) and record is not _UNANSWERED:
            raise CommandError(
                "DUPLICATE_PARTICIPANT",
                f"ID {subject!r}: participant id {subject} is already registered",
                EXIT_USAGE,
            )
        if not registering and record is None:
            raise CommandError(
                "UNKNOWN_PARTICIPANT",
                f"ID {subject!r}: participant {subject} is not registered",
                EXIT_USAGE,
            )
    for flag, party in _named_parties(options):
        record = _lookup(client, party)
        problem = None
        if record is None:
            problem = "is not a registered, active participant"
        elif record is _UNANSWERED:
            continue
        elif not record.get("active", True):
            problem = "is deactivated, not a registered, active participant"
        elif record.get("lei") is None and record.get("uscc") is None:
            problem = "has neither a USCC nor an LEI on record"
        if problem is not None:
            raise CommandError(
                "PARTY_NOT_REGISTERED", f"{flag} {party!r}: {party} {problem}", EXIT_USAGE
            )


_UNANSWERED: dict[str, Any] = {}  # the node did not say (see _lookup)


def _lookup(client: Client, participant: str) -> dict[str, Any] | None:
    """The registry's record of ``participant``; None if the node says it is not registered;
    ``_UNANSWERED`` if the query failed otherwise (no node, an id of a malformed form, which
    the contracts refuse with their own code): then the node decides, as without the check."""
    try:
        record = client.query("participant", {"id": participant})
    except ClientError as exc:
        if exc.code == "NOT_FOUND":
            return None
        info(f"participant check of {participant} skipped: {exc.code}: {exc.message}")
        return _UNANSWERED
    return record if isinstance(record, dict) else _UNANSWERED


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "validate",
        help="check an ISIN, LEI, CFI, currency, BIC, USCC or CNAPS code",
        description="Validate an identifier strictly (no trimming or case folding). Exit 0 and "
        "'valid', or exit 1 with the rule that failed.",
    )
    parser.add_argument("kind", choices=KINDS, metavar="KIND", help=", ".join(KINDS))
    parser.add_argument("value", metavar="VALUE")
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(options: argparse.Namespace) -> int:
    result = identifiers.validate(options.kind, options.value)
    lines = ["valid" if result.valid else f"invalid: {result.rule}"]
    lines.extend(f"warning: {warning}" for warning in result.warnings)
    emit(
        options,
        {
            "kind": options.kind,
            "value": options.value,
            "valid": result.valid,
            "rule": result.rule,
            "warnings": list(result.warnings),
        },
        "\n".join(lines),
    )
    return 0 if result.valid else 1
