"""``ibledger validate KIND VALUE``: check an identifier exactly as the contracts will."""

from __future__ import annotations

import argparse
from typing import Any

from ibledger.contracts import identifiers

from .output import add_json_flag, emit

KINDS = ("isin", "lei", "cfi", "currency", "bic", "uscc", "cnaps")


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
