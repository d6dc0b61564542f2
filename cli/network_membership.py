"""``ibledger network add-node``, ``remove-node`` and ``rotate-key``: change the validator set
of a running local network by governance, without restarting the other validators.

``add-node NAME --as ADMIN`` writes the new validator's files under ``nodes/<NAME>/`` (validator
key, a TLS certificate from the network's CA, node.toml with ``[node] membership =
"governance"``), and proposes ``membership.add_validator`` as the admin. Once the proposal has
its approvals (at once with an admin quorum of 1; otherwise the other admins approve it and the
command is run again with ``--join``), the change takes effect at the height the approving block
fixes (contracts/membership.py): the command waits until a running validator is past it, takes
an online backup of that validator, restores it into the new node (verified block by block
against the validator sets the chain records) and adds the node to network.json, so ``network
up`` starts it and it catches up from its peers.

``rotate-key NAME --as ADMIN`` writes a new validator key beside the old one and proposes
``membership.rotate_validator_key``; the node signs with its old key up to the end of its set
and then stops, and the command points its node.toml at the new key (``membership =
"governance"``), so ``network up`` starts it in the new set.

``remove-node NAME --as ADMIN`` proposes ``membership.remove_validator``; from the agreed height
on the node is not a validator, and it stops by itself once its set has ended. The command waits
for that, then moves the node from network.json's ``nodes`` to ``retired``, so ``network up``
no longer starts it (its directory is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import tomllib
from pathlib import Path
from typing import Any

from ibledger.node import clock
from ibledger.node.config import ConfigError, HostPort, NodeConfig, format_toml, load_config
from ibledger.node.crypto import CryptoError, generate_keypair, write_private_key
from ibledger.node.jsonfile import JsonFileError, read_json_object
from ibledger.node.pki import NODE_ID_PATTERN, PkiError, issue_node_certificate, load_ca
from ibledger.node.schema import NODE_ID_RULE

from .client import Client, TxReceipt
from .errors import ClientError
from .manifest import MANIFEST_FILE, Manifest, ManifestError, ManifestNode, load_manifest
from .network_observer import _replace_json, _write_new, add_certificate_flags, network_passphrase
from .output import CommandError, emit, plain

PROPOSAL_HOURS = 72
WAIT_S_DEFAULT = 300.0


def register(verbs: Any, add_dir: Any) -> None:
    add = verbs.add_parser(
        "add-node",
        help="add a validator by governance; it votes from the agreed height on",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("name", metavar="NAME", help=f"the new validator's node id ({NODE_ID_RULE})")
    _membership_flags(add, add_dir)
    add.add_argument(
        "--join",
        action="store_true",
        help="the proposal has executed (other admins approved it): seed the node and register it",
    )
    add_certificate_flags(add, "certificate lifetime in days")
    add.set_defaults(handler=add_node)

    remove = verbs.add_parser(
        "remove-node",
        help="remove a validator by governance; it stops at the agreed height",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    remove.add_argument("name", metavar="NAME")
    _membership_flags(remove, add_dir)
    remove.add_argument(
        "--after-approval",
        action="store_true",
        help="the proposal has executed: wait for the node to leave and retire it here",
    )
    add_certificate_flags(remove, "unused")
    remove.set_defaults(handler=remove_node)
    _register_rotate(verbs, add_dir)


def _register_rotate(verbs: Any, add_dir: Any) -> None:
    rotate = verbs.add_parser(
        "rotate-key",
        help="give a validator a new signing key by governance, from the agreed height on",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rotate.add_argument("name", metavar="NAME")
    _membership_flags(rotate, add_dir)
    add_certificate_flags(rotate, "unused")
    rotate.set_defaults(handler=rotate_key)


def _membership_flags(parser: argparse.ArgumentParser, add_dir: Any) -> None:
    add_dir(parser, "--network")
    parser.add_argument(
        "--as", dest="identity", default="ADMIN", help="the proposing admin (default ADMIN)"
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=WAIT_S_DEFAULT,
        metavar="SECONDS",
        help=f"how long to wait for the change to take effect (default {WAIT_S_DEFAULT:g})",
    )


# --- add-node ------------------------------------------------------------------------------------


def add_node(options: argparse.Namespace) -> int:
    from .network import free_ports, network_dir  # network.py imports this module: import late

    directory = network_dir(options)
    manifest = _load(directory)
    name: str = options.name
    if NODE_ID_PATTERN.fullmatch(name) is None:
        raise CommandError("BAD_ARGUMENT", f"{name!r} is not a node id: {NODE_ID_RULE}")
    passphrase = network_passphrase(manifest, options.passphrase_file)
    node_dir = directory / "nodes" / name
    if options.join:
        config = _load_node(node_dir, passphrase)
        from_height = _scheduled_height(manifest, passphrase, options, name, "add")
        return _join(options, directory, manifest, config, from_height, passphrase)
    if any(p.id == name for p in manifest.processes) or node_dir.exists():
        raise CommandError("NODE_EXISTS", f"{name!r} is already a node of {directory}")
    host = "127.0.0.1"
    owned = {a.port for p in manifest.processes for a in (p.api, p.metrics)} | {
        n.peer.port for n in manifest.nodes
    }
    ports = [port for port in free_ports(3 + len(owned), host) if port not in owned][:3]
    api, peer, metrics = (HostPort(host, port) for port in ports)
    try:
        public_key = _write_validator(directory, node_dir, name, api, peer, metrics, passphrase,
                                      options)  # fmt: skip
        config = _load_node(node_dir, passphrase)
        receipt = _propose(
            directory,
            manifest,
            options,
            passphrase,
            "membership.add_validator",
            {
                "validator": name,
                "public_key": public_key.hex(),
                "peer_address": str(peer),
                "api_address": str(api),
            },
        )
    except BaseException:
        shutil.rmtree(node_dir, ignore_errors=True)  # leave no half-added validator behind
        raise
    scheduled = receipt.event("membership.scheduled")
    if scheduled is None:
        return _pending(options, receipt, f"ibledger network add-node {name} --join")
    return _join(
        options, directory, manifest, config, int(scheduled.attrs["from_height"]), passphrase
    )


def _write_validator(
    directory: Path,
    node_dir: Path,
    name: str,
    api: HostPort,
    peer: HostPort,
    metrics: HostPort,
    passphrase: bytes | None,
    options: argparse.Namespace,
) -> bytes:
    from .network import node_toml  # network.py imports this module: import late

    genesis = read_json_object(directory / "genesis.json")
    keypair = generate_keypair(str(genesis.get("crypto_suite", "ed25519-sha256")))
    try:
        ca = load_ca(directory / "ca", passphrase)
        certificate = issue_node_certificate(
            ca, name, hosts=[api.host], valid_days=options.cert_days
        )
    except PkiError as exc:
        raise CommandError("PKI_ERROR", str(exc)) from None
    except CryptoError as exc:
        raise CommandError(exc.code, exc.message) from None
    for sub in ("keys", "tls"):
        (node_dir / sub).mkdir(parents=True, mode=0o700)
    (node_dir / "data").mkdir(mode=0o700)
    write_private_key(node_dir / "keys" / "validator.key.pem", keypair, passphrase)
    certificate.write(node_dir / "tls" / "node.crt", node_dir / "tls" / "node.key", passphrase)
    _write_new(
        node_dir / "node.toml",
        node_toml(
            name, api, peer, metrics, encrypted=passphrase is not None, membership="governance"
        ),
    )
    return keypair.public_key


def _join(
    options: argparse.Namespace,
    directory: Path,
    manifest: Manifest,
    config: NodeConfig,
    from_height: int,
    passphrase: bytes | None,
) -> int:
    """Seed the new validator from a member past ``from_height`` and register it."""
    from ibledger.node.admin import AdminUnavailable, call
    from ibledger.node.backup import BackupError, chain_checks, restore_backup

    source = _member_past(manifest, from_height, options.wait, passphrase, options.identity)
    backup = directory / "nodes" / config.node_id / f"seed-from-{source.id}.backup"
    backup.unlink(missing_ok=True)
    try:
        call(source.dir / "data", {"command": "backup", "path": str(backup)})
    except (AdminUnavailable, OSError) as exc:
        raise CommandError("NODE_NOT_RUNNING", f"cannot back up {source.id}: {exc}") from None
    genesis = config.genesis
    certificates, checkpoints = chain_checks(genesis.validators, genesis.crypto_suite)
    try:
        restored = restore_backup(
            backup,
            config.data_dir,
            genesis.raw,
            certificate_check=certificates,
            checkpoint_check=checkpoints,
        )
    except BackupError as exc:
        raise CommandError(exc.code, exc.message) from None
    finally:
        backup.unlink(missing_ok=True)
    entry = {
        "id": config.node_id,
        "api": f"{config.api.listen.host}:{config.api.listen.port}",
        "peer": f"{config.peer.listen.host}:{config.peer.listen.port}",
        "metrics": f"{config.metrics.listen.host}:{config.metrics.listen.port}",
        "dir": f"nodes/{config.node_id}",
        "config": f"nodes/{config.node_id}/node.toml",
    }
    _edit_manifest(directory, lambda raw: raw | {"nodes": [*raw["nodes"], entry]})
    summary = {
        "dir": str(directory),
        "node_id": config.node_id,
        "from_height": from_height,
        "seeded_from": source.id,
        "seeded_height": restored.header.height,
        "config": str(config.path),
    }
    text = (
        f"validator {config.node_id} added to {directory}: it votes from height {from_height}; "
        f"seeded from {source.id} at height {restored.header.height}\n"
        f"start it with: ibledger network up --dir {directory}"
    )
    emit(options, summary, text)
    return 0


# --- remove-node ---------------------------------------------------------------------------------


def remove_node(options: argparse.Namespace) -> int:
    directory, manifest, node, passphrase = _validator_of(options)
    name = node.id
    if options.after_approval:
        from_height = _scheduled_height(manifest, passphrase, options, name, "remove")
    else:
        receipt = _propose(
            directory, manifest, options, passphrase, "membership.remove_validator",
            {"validator": name},
        )  # fmt: skip
        scheduled = receipt.event("membership.scheduled")
        if scheduled is None:
            return _pending(
                options, receipt, f"ibledger network remove-node {name} --after-approval"
            )
        from_height = int(scheduled.attrs["from_height"])
    others = [n for n in manifest.nodes if n.id != name]
    _member_past(manifest, from_height, options.wait, passphrase, options.identity, among=others)
    _wait_stopped(node, options.wait, "after its set ended")
    retire(directory, name)
    summary = {"dir": str(directory), "node_id": name, "from_height": from_height}
    text = (
        f"validator {name} removed from {directory}: the set without it orders from height "
        f"{from_height}; {name} has stopped and network up no longer starts it"
    )
    emit(options, summary, text)
    return 0


# --- rotate-key ----------------------------------------------------------------------------------


def rotate_key(options: argparse.Namespace) -> int:
    directory, manifest, node, passphrase = _validator_of(options)
    name = node.id
    genesis = read_json_object(directory / "genesis.json")
    keypair = generate_keypair(str(genesis.get("crypto_suite", "ed25519-sha256")))
    keys = Path(node.dir) / "keys"
    number = 1
    while (keys / f"validator.{number}.key.pem").exists():
        number += 1
    new_key = keys / f"validator.{number}.key.pem"
    write_private_key(new_key, keypair, passphrase)
    try:
        receipt = _propose(
            directory, manifest, options, passphrase, "membership.rotate_validator_key",
            {"validator": name, "public_key": keypair.public_key.hex()},
        )  # fmt: skip
    except BaseException:
        new_key.unlink(missing_ok=True)
        raise
    scheduled = receipt.event("membership.scheduled")
    if scheduled is None:
        return _pending(
            options,
            receipt,
            f"(once {name} has stopped at the agreed height) set [node] validator_key = "
            f'"keys/{new_key.name}" and membership = "governance" in its node.toml, then '
            "ibledger network up",
        )
    from_height = int(scheduled.attrs["from_height"])
    # The node signs with its old key up to the end of its set, then stops: its key is not the
    # one the next set lists.
    _wait_stopped(node, options.wait, "after its key was rotated")
    toml_path = Path(node.config)
    document = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    document["node"]["validator_key"] = f"keys/{new_key.name}"
    document["node"]["membership"] = "governance"
    staged = toml_path.with_name(toml_path.name + ".new")
    staged.write_text(format_toml(document), encoding="utf-8")
    os.replace(staged, toml_path)
    summary = {
        "dir": str(directory),
        "node_id": name,
        "from_height": from_height,
        "validator_key": str(new_key),
        "public_key": keypair.public_key.hex(),
    }
    text = (
        f"validator {name} signs with a new key from height {from_height} ({new_key}); it "
        f"stopped at the end of its old set\nstart it again with: ibledger network up --dir "
        f"{directory}"
    )
    emit(options, summary, text)
    return 0


# --- shared --------------------------------------------------------------------------------------


def _validator_of(
    options: argparse.Namespace,
) -> tuple[Path, Manifest, ManifestNode, bytes | None]:
    """The network, its manifest, the validator ``options.name`` and the network passphrase."""
    from .network import network_dir

    directory = network_dir(options)
    manifest = _load(directory)
    node = manifest.node(options.name)
    if node is None:
        raise CommandError("UNKNOWN_NODE", f"{options.name!r} is not a validator of {directory}")
    return directory, manifest, node, network_passphrase(manifest, options.passphrase_file)


def _wait_stopped(node: ManifestNode, wait_s: float, when: str) -> None:
    from .network import _pid_alive, _read_pid

    deadline = time.monotonic() + wait_s
    while (pid := _read_pid(node.dir)) is not None and _pid_alive(pid):
        if time.monotonic() > deadline:
            raise CommandError("TIMEOUT", f"{node.id} is still running {wait_s:g} s {when}")
        time.sleep(0.2)


def retire(directory: Path, name: str) -> None:
    """Move validator ``name`` from network.json's ``nodes`` to ``retired``: network up no
    longer starts it, and the record of it is kept."""

    def change(raw: dict[str, Any]) -> dict[str, Any]:
        kept = [n for n in raw["nodes"] if n.get("id") != name]
        gone = [n for n in raw["nodes"] if n.get("id") == name]
        return raw | {"nodes": kept, "retired": [*raw.get("retired", []), *gone]}

    _edit_manifest(directory, change)


def _load(directory: Path) -> Manifest:
    try:
        return load_manifest(directory)
    except ManifestError as exc:
        raise CommandError(exc.code, exc.message) from None


def _load_node(node_dir: Path, passphrase: bytes | None) -> NodeConfig:
    try:
        config = load_config(node_dir / "node.toml", passphrase=passphrase)
    except ConfigError as exc:
        raise CommandError(
            "CONFIG_INVALID", f"the new validator's files do not load: {exc}"
        ) from None
    if not isinstance(config, NodeConfig):
        raise CommandError("CONFIG_INVALID", f"{node_dir / 'node.toml'} is not a validator's")
    return config


def _client(
    manifest: Manifest, passphrase: bytes | None, identity: str, node: str | None = None
) -> Client:
    try:
        return Client.from_network(
            manifest.directory, identity=identity, passphrase=passphrase, node=node
        )
    except ClientError as exc:
        raise CommandError(exc.code, exc.message) from None


def _propose(
    directory: Path,
    manifest: Manifest,
    options: argparse.Namespace,
    passphrase: bytes | None,
    action: str,
    args: dict[str, Any],
) -> TxReceipt:
    call = {
        "action": action,
        "args": args,
        "expires_at_ms": clock.now_ms() + PROPOSAL_HOURS * 3_600_000,
    }
    with _client(manifest, passphrase, options.identity) as client:
        try:
            receipt = client.submit("governance.propose", call, wait=True)
        except ClientError as exc:
            raise CommandError(exc.code, exc.message) from None
    if not receipt.ok:
        raise CommandError(receipt.code, receipt.message)
    return receipt


def _pending(options: argparse.Namespace, receipt: TxReceipt, then: str) -> int:
    proposed = receipt.event("governance.proposed")
    proposal = proposed.attrs["proposal"] if proposed is not None else receipt.tx_id.hex()
    emit(
        options,
        {"proposal": proposal, "executed": False, "then": then},
        f"proposed as {proposal}; it needs more approvals: the other admins run\n"
        f"  ibledger governance approve {proposal} --as ADMIN_ID\n"
        f"and once it has executed, run: {then}",
    )
    return 0


def _scheduled_height(
    manifest: Manifest, passphrase: bytes | None, options: argparse.Namespace, name: str, kind: str
) -> int:
    """The height the latest scheduled epoch orders from, once it is the change named."""
    with _client(manifest, passphrase, options.identity) as client:
        try:
            epoch = client.query("membership", {})
        except ClientError as exc:
            raise CommandError(exc.code, exc.message) from None
    latest = epoch["latest"]
    members = [v["id"] for v in latest["validators"]]
    if (kind == "add") != (name in members) or latest["epoch"] == 0:
        raise CommandError(
            "NOT_SCHEDULED",
            f"no executed change {'adds' if kind == 'add' else 'removes'} {name} yet: "
            "the proposal still needs its approvals",
        )
    return int(latest["from_height"])


def _member_past(
    manifest: Manifest,
    height: int,
    wait_s: float,
    passphrase: bytes | None,
    identity: str,
    among: list[Any] | None = None,
) -> Any:
    """A running validator at or past ``height`` (waiting up to ``wait_s``)."""
    candidates = among if among is not None else list(manifest.nodes)
    deadline = time.monotonic() + wait_s
    while True:
        for node in candidates:
            with _client(manifest, passphrase, identity, node=str(node.api)) as client:
                try:
                    if client.status().height >= height:
                        return node
                except ClientError:
                    continue
        if time.monotonic() > deadline:
            raise CommandError(
                "TIMEOUT", f"no running validator reached height {height} in {wait_s:g} s"
            )
        time.sleep(0.3)


def _edit_manifest(directory: Path, change: Any) -> None:
    path = directory / MANIFEST_FILE
    try:
        raw = read_json_object(path)
    except JsonFileError as exc:
        raise CommandError("NETWORK_INVALID", f"{path}: {exc}") from None
    _replace_json(path, change(raw))
    try:
        load_manifest(directory)
    except ManifestError as exc:
        path.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        raise CommandError("NETWORK_INVALID", f"the edited {path} does not load: {exc}") from None
