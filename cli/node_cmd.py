"""``ibledger node``: run one node, and back up or restore its ledger.

``node start --config PATH`` runs a node in the foreground until SIGTERM.

``node backup --node-dir DIR --out FILE`` asks the running node (through its operator socket,
``<data_dir>/admin.sock``) to write a consistent snapshot of its ledger to FILE while it keeps
serving; FILE must not exist and is written by the node's own user.

``node restore --from FILE --node-dir DIR`` rebuilds a stopped node's ledger from a backup: the
data directory must hold no ledger; the file's digest and header are checked, then every block,
commit certificate, state root, the contract state, the transaction index and the checkpoint
certificates are verified against the node's genesis before the ledger is put in place. Started
afterwards, the node catches up from its peers. ``--node-dir`` is the directory holding
``node.toml``; ``--network DIR --node ID`` names the same for a local network.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from .output import CommandError, add_json_flag, emit
from .passphrase import PassphraseForKeys, add_passphrase_flag


def register(commands: Any) -> None:
    parser = commands.add_parser("node", help="run a validator node, back up or restore it")
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

    backup = verbs.add_parser(
        "backup",
        help="write a consistent snapshot of a running node's ledger",
        description="Ask the running node, through its operator socket in the data directory, "
        "to write a snapshot of its ledger (blocks, certificates, state; no consensus records, "
        "keys or audit log) to --out. The node keeps serving while it writes.",
    )
    _add_node_flags(backup)
    backup.add_argument("--out", type=Path, required=True, help="the backup file to create")
    add_json_flag(backup)
    backup.set_defaults(handler=run_backup)

    restore = verbs.add_parser(
        "restore",
        help="rebuild a stopped node's ledger from a backup, verifying it",
        description="Verify a backup against the node's genesis (digest, every block and "
        "commit certificate, the state re-derived from the write sets, checkpoint "
        "certificates) and install it as the node's ledger. The data directory must hold no "
        "ledger. Start the node afterwards: it catches up from its peers.",
    )
    restore.add_argument("--from", dest="source", type=Path, required=True, help="backup file")
    _add_node_flags(restore)
    add_json_flag(restore)
    restore.set_defaults(handler=run_restore)


def _add_node_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node-dir", type=Path, help="the directory holding the node's node.toml")
    parser.add_argument("--network", type=Path, help="a local network directory (with --node)")
    parser.add_argument("--node", help="the node id in --network")


def run_start(options: argparse.Namespace) -> int:
    from ibledger.node import clock, failpoints
    from ibledger.node.config import ConfigError
    from ibledger.node.crypto import CryptoError
    from ibledger.node.ledger import LedgerError
    from ibledger.node.server import run

    # Resolved once here: the key derivation is slow by design, and the node decrypts its keys
    # once at startup and keeps them in memory.
    try:
        clock.fix_offset()
    except ValueError as exc:
        raise CommandError("BAD_CONFIG", str(exc)) from None
    # Fault tests only: the environment of the process that starts the node is the one way in.
    try:
        failpoints.arm_from_environment()
    except failpoints.FailpointSpecError as exc:
        raise CommandError("BAD_FAILPOINT", str(exc)) from None
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


def _node_toml(options: argparse.Namespace) -> Path:
    if options.node_dir is not None:
        if options.network is not None or options.node is not None:
            raise CommandError("BAD_ARGUMENT", "give --node-dir, or --network with --node")
        return Path(options.node_dir) / "node.toml"
    if options.network is None or options.node is None:
        raise CommandError("BAD_ARGUMENT", "give --node-dir, or --network with --node")
    from .manifest import ManifestError, load_manifest

    try:
        manifest = load_manifest(options.network)
        node = manifest.node(options.node) or manifest.observer(options.node)
    except ManifestError as exc:
        raise CommandError(exc.code, exc.message) from None
    if node is None:
        raise CommandError("UNKNOWN_NODE", f"{options.node!r} is not a node of {options.network}")
    return node.config


def _node_paths(options: argparse.Namespace) -> tuple[Path, Path]:
    """The node's data directory and genesis file, from the [node] section of node.toml only
    (a restore needs neither the keys nor their passphrase)."""
    from pydantic import ValidationError

    from ibledger.node.schema import NodeSection

    path = _node_toml(options)
    try:
        document = tomllib.loads(path.read_text())
        section = NodeSection.model_validate(
            document.get("node"), context={"base": path.resolve().parent}
        )
    except OSError as exc:
        raise CommandError("BAD_CONFIG", f"{path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise CommandError("BAD_CONFIG", f"{path}: [node]: {exc}") from None
    return section.data_dir, section.genesis_file


def run_backup(options: argparse.Namespace) -> int:
    from ibledger.node.admin import AdminUnavailable, call

    data_dir, _ = _node_paths(options)
    out = Path(options.out).resolve()
    if out.exists():
        raise CommandError("OUTPUT_EXISTS", f"{out} already exists")
    try:
        reply = call(data_dir, {"command": "backup", "path": str(out)})
    except AdminUnavailable as exc:
        raise CommandError("NODE_NOT_RUNNING", str(exc)) from None
    except OSError as exc:
        raise CommandError("NODE_NOT_RUNNING", f"cannot reach the node: {exc}") from None
    if not reply.get("ok"):
        raise CommandError(str(reply.get("code", "BACKUP_FAILED")), str(reply.get("message")))
    emit(
        options,
        reply,
        f"backup of {reply.get('node_id')} at height {reply.get('height')} written to {out} "
        f"({reply.get('records')} records, {reply.get('bytes')} bytes)",
    )
    return 0


def run_restore(options: argparse.Namespace) -> int:
    from ibledger.node.admin import AdminUnavailable, call
    from ibledger.node.backup import BackupError, chain_checks, restore_backup
    from ibledger.node.config import ConfigError, load_genesis

    data_dir, genesis_file = _node_paths(options)
    try:
        call(data_dir, {"command": "ping"}, timeout_s=2)
    except (AdminUnavailable, OSError):
        pass  # nothing answers: the node is not running
    else:
        raise CommandError("NODE_RUNNING", f"a node is running on {data_dir}: stop it first")
    try:
        genesis = load_genesis(genesis_file)
    except ConfigError as exc:
        raise CommandError("BAD_CONFIG", str(exc)) from None
    certificate_check, checkpoint_check = chain_checks(genesis.validators, genesis.crypto_suite)
    try:
        result = restore_backup(
            Path(options.source),
            data_dir,
            genesis.raw,
            certificate_check=certificate_check,
            checkpoint_check=checkpoint_check,
        )
    except BackupError as exc:
        raise CommandError(exc.code, exc.message) from None
    except OSError as exc:
        raise CommandError("RESTORE_FAILED", f"{exc.filename or options.source}: {exc}") from None
    data = {
        **result.header.to_dict(),
        "records": result.records,
        "checkpoint_verified": result.checkpoint_verified,
        "ledger": str(result.path),
    }
    emit(
        options,
        data,
        f"restored {result.path} at height {result.header.height} "
        f"({result.records} records; every block and certificate verified, checkpoint "
        f"certificates through height {result.checkpoint_verified}); start the node to catch up",
    )
    return 0
