"""``ibledger node start --config PATH``: run one node in the foreground until SIGTERM."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from .output import CommandError


def register(commands: Any) -> None:
    parser = commands.add_parser("node", help="run a validator node")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    start = verbs.add_parser(
        "start",
        help="run a node in the foreground (stop with Ctrl-C or SIGTERM)",
        description="Run one validator node from its node.toml. Logs are JSON lines on stderr. "
        "An encrypted validator key takes its passphrase from $IBLEDGER_PASSPHRASE.",
    )
    start.add_argument("--config", type=Path, required=True, help="the node's node.toml")
    start.set_defaults(handler=run_start)


def run_start(options: argparse.Namespace) -> int:
    from ibledger.node.config import ConfigError
    from ibledger.node.crypto import CryptoError
    from ibledger.node.ledger import LedgerError
    from ibledger.node.server import run

    passphrase = os.environ.get("IBLEDGER_PASSPHRASE")
    try:
        return run(options.config, passphrase=passphrase.encode() if passphrase else None)
    except ConfigError as exc:
        raise CommandError("BAD_CONFIG", str(exc)) from None
    except CryptoError as exc:
        raise CommandError(exc.code, exc.message) from None
    except LedgerError as exc:
        raise CommandError("LEDGER", str(exc)) from None
    except OSError as exc:
        raise CommandError("STARTUP_FAILED", str(exc)) from None
