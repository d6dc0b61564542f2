"""``ibledger validate KIND VALUE``: check an identifier exactly as the contracts will."""

from __future__ import annotations

import argparse
from typing import Any

from ibledger.contracts import identifiers

from .errors import EXIT_USAGE
from .output import CommandError, add_json_flag, emit

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
