"""The ``ibledger`` command: one entry point, one sub-command module per noun.

Every command accepts ``--json``; errors print ``error: CODE: message`` (or a JSON object with
``code`` and ``message``) on stderr and exit non-zero, so scripts can match on the code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import (
    cmd_asset,
    cmd_audit,
    cmd_bench,
    cmd_bill,
    cmd_block,
    cmd_governance,
    cmd_participant,
    cmd_query,
    cmd_sim,
    cmd_status,
    cmd_tx,
    demo,
    keys,
    network,
    node_cmd,
    output,
    validate,
)

COMMANDS = (
    network,
    node_cmd,
    cmd_status,
    cmd_tx,
    cmd_block,
    cmd_participant,
    cmd_governance,
    cmd_asset,
    cmd_bill,
    cmd_query,
    keys,
    validate,
    cmd_audit,
    cmd_sim,
    demo,
    cmd_bench,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ibledger",
        description="ibledger: a permissioned BFT interbank ledger for standardized assets and "
        "electronic commercial bills.",
        epilog="Run 'ibledger COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"ibledger {output.VERSION}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    options = parser.parse_args(argv)
    try:
        validate.check_identifiers(options)
        result: int = options.handler(options)
    except output.CommandError as exc:
        return output.fail(options, exc.code, exc.message, exc.exit_code)
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
