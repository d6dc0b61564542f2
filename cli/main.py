"""The ``ibledger`` command: one entry point, one sub-command module per noun.

Every command accepts ``--json``; errors print ``error: CODE: message`` (or a JSON object with
``code`` and ``message``) on stderr and exit with a documented status (``cli.errors``), so
scripts can match on the code.

Start-up stays fast for scripting: the parser is built from :data:`COMMANDS`, a table of names
and one-line helps, and only the module of the command being run is imported (it brings gRPC,
the contracts or the crypto suites if it needs them). ``ibledger --version``, ``--help`` and a
mistyped command import none of them. Anything that needs the whole tree (shell completion, the
help checks) calls ``build_parser(full=True)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from . import output
from .errors import EXIT_INTERRUPTED, exit_codes_text

# (command, module under ibledger.cli, one-line help). The helps repeat what each module's
# register() says; tests/cli/test_startup.py keeps the two equal.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("network", "network", "create a consortium network and run it locally"),
    ("node", "node_cmd", "run a validator node, back up or restore it"),
    ("status", "cmd_status", "show a node's height, view, primary, peers and mempool"),
    ("tx", "cmd_tx", "show, wait for, verify or submit transactions"),
    ("block", "cmd_block", "show a block, or follow new blocks as they commit"),
    (
        "participant",
        "cmd_participant",
        "register participants, manage their roles and keys, look them up",
    ),
    (
        "governance",
        "cmd_governance",
        "propose, approve and inspect identity changes that need M consortium admins",
    ),
    (
        "asset",
        "cmd_asset",
        "register instruments, allot, transfer, pledge (requested, then signed), freeze, "
        "redeem; holdings",
    ),
    (
        "bill",
        "cmd_bill",
        "electronic commercial bills: issue, accept, endorse, discount, pledge, pay",
    ),
    ("query", "cmd_query", "run any read-side query with JSON arguments"),
    (
        "supervise",
        "cmd_query",
        "regulator views: positions, exposures, histories, the live event stream",
    ),
    ("keys", "keys", "create and inspect signing keys"),
    ("validate", "validate", "check an ISIN, LEI, CFI, currency, BIC, USCC or CNAPS code"),
    ("audit", "cmd_audit", "verify and show a node's audit log"),
    ("sim", "cmd_sim", "simulate an N-replica PBFT network in simulated time and measure it"),
    ("demo", "demo", "a guided tour of a bond and a bill, through the CLI, on a running network"),
    ("bench", "cmd_bench", "measure throughput and latency: closed or open loop, sweeps, faults"),
    ("completion", "completion", "print a bash or zsh completion script for ibledger"),
)

EPILOG = (
    "Run 'ibledger COMMAND --help' for the options of one command.\n\n"
    "exit status:\n" + exit_codes_text() + "\n\n"
    "Colour is used only on a terminal; NO_COLOR (any value) or --color never turns it off."
)


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{__package__}.{name}")


def _wanted(argv: Sequence[str]) -> str | None:
    """The command named in ``argv``: the first word that is not a global flag."""
    for word in argv:
        if word == "--color":
            continue  # its value follows as the next word, which is one of COLOR_CHOICES
        if word in output.COLOR_CHOICES:
            continue
        if word.startswith("-"):
            continue
        return word
    return None


def build_parser(full: bool = True, argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The ``ibledger`` parser: every command's options with ``full``, otherwise only those of
    the command ``argv`` names (the others are listed by name and help, which is all that
    ``--help`` shows of them)."""
    parser = argparse.ArgumentParser(
        prog="ibledger",
        description="ibledger: a permissioned BFT interbank ledger for standardized assets and "
        "electronic commercial bills.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ibledger {output.VERSION}")
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print no human-readable result, only errors (--json output is still printed)",
    )
    noise.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="say on stderr what the client does (-vv: more)",
    )
    parser.add_argument(
        "--color",
        choices=output.COLOR_CHOICES,
        default="auto",
        help="colour errors and statuses: auto (only on a terminal, and not under NO_COLOR), "
        "always or never (default auto)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    wanted = None if full else _wanted(argv)
    wanted_module = next((module for name, module, _ in COMMANDS if name == wanted), None)
    registered: set[str] = set()
    for name, module_name, help_text in COMMANDS:
        if full or module_name == wanted_module:
            if module_name not in registered:  # one module may register several commands
                _module(module_name).register(commands)
                registered.add(module_name)
        else:
            commands.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(full=False, argv=words)
    options = parser.parse_args(words)
    output.configure(quiet=options.quiet, verbosity=options.verbose, color=options.color)
    try:
        # Imported here: the identifier rules pull in the contracts, which --version never needs.
        from . import validate

        validate.check_identifiers(options)
        result: int = options.handler(options)
    except output.CommandError as exc:
        return output.fail(options, exc.code, exc.message, exc.exit_code)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return result


if __name__ == "__main__":
    sys.exit(main())
