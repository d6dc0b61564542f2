"""``ibledger node start --config PATH``: run one node in the foreground until SIGTERM."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .output import CommandError
from .passphrase import PassphraseForKeys, add_passphrase_flag


def register(commands: Any) -> None:
    parser = commands.add_parser("node", help="run a validator node")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    start = verbs.add_parser(
        "start",
        help="run a node in the foreground (stop with Ctrl-C or SIGTERM)",
        description="Run one validator node from its node.toml. Logs are JSON lines on stderr. "
        "Encrypted keys take their passphrase from --passphrase-file, $IBLEDGER_PASSPHRASE, "
        "[keys] passphrase_file in node.toml, or a prompt in a terminal.",
    )
    start.add_argument("--config", type=Path, required=True, help="the node's node.toml")
    add_passphrase_flag(start)
    start.set_defaults(handler=run_start)


def run_start(options: argparse.Namespace) -> int:
    from ibledger.node.config import ConfigError
    from ibledger.node.crypto import CryptoError
    from ibledger.node.ledger import LedgerError
    from ibledger.node.server import run

    # Resolved once here: the key derivation is slow by design, and the node decrypts its keys
    # once at startup and keeps them in memory.
    try:
        passphrases = PassphraseForKeys(options.passphrase_file)
        return run(options.config, passphrase=passphrases.value, ask_passphrase=passphrases)
    except ConfigError as exc:
        raise CommandError("BAD_CONFIG", str(exc)) from None
    except CryptoError as exc:
        raise CommandError(exc.code, exc.message) from None
    except LedgerError as exc:
        raise CommandError("LEDGER", str(exc)) from None
    except OSError as exc:
        raise CommandError("STARTUP_FAILED", str(exc)) from None
