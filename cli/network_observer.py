"""``ibledger network add-observer``: add a non-voting observer node to a local network.

An observer (``node.observer``) follows the validators: it fetches blocks with their commit
certificates, checks each certificate against the genesis validator set, executes the blocks
into its own ledger and serves the read side of the public API. It holds no validator key and is
not in the genesis, so adding one changes nothing the validators agreed on, and a running
network can take one at any time. The command writes, under ``nodes/<NAME>/``::

    node.toml                the observer's configuration (role = "observer", the validators
                             it follows, its API and metrics addresses)
    tls/node.crt, node.key   a TLS certificate from the network's CA with the observer role
                             (OU=observer): validators let it fetch blocks, never vote
    data/                    its LevelDB ledger

and adds the observer to ``network.json`` (``observers``) and to ``prometheus-targets.json``,
so ``network up/down/status/logs`` manage it with the validators. With encrypted keys (``network
init --encrypt``) the CA key is decrypted with the network's passphrase and the new TLS key is
encrypted under it too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Any

from ibledger.node.config import (
    ConfigError,
    HostPort,
    ObserverConfig,
    format_toml,
    load_config,
)
from ibledger.node.crypto import CryptoError
from ibledger.node.jsonfile import JsonFileError, read_json_object
from ibledger.node.pki import (
    NODE_CERT_VALID_DAYS,
    NODE_ID_PATTERN,
    OBSERVER_ROLE,
    PkiError,
    issue_node_certificate,
    load_ca,
)
from ibledger.node.schema import NODE_ID_RULE, OBSERVER_POLL_INTERVAL_MS_DEFAULT

from .manifest import MANIFEST_FILE, Manifest, ManifestError, load_manifest
from .output import CommandError, add_json_flag, emit, plain
from .passphrase import PASSPHRASE_ENV, add_passphrase_flag, given_passphrase, prompt_passphrase

OBSERVER_NAME_PREFIX = "observer"
OBSERVERS_MAX = 64
PROMETHEUS_TARGETS = "prometheus-targets.json"
NODE_LOG = "node.log"


def register(verbs: Any, add_dir: Any) -> None:
    parser = verbs.add_parser(
        "add-observer",
        help="add a non-voting observer node that follows the validators",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dir(parser, "--network")
    parser.add_argument(
        "--name",
        help=f"the observer's node id ({NODE_ID_RULE}; default: the first free "
        f"{OBSERVER_NAME_PREFIX}N)",
    )
    add_certificate_flags(parser, "certificate lifetime in days")
    parser.set_defaults(handler=add_observer)


def add_certificate_flags(parser: argparse.ArgumentParser, lifetime: str) -> None:
    """``--cert-days``, the passphrase and ``--json``: what a command issuing a node certificate
    from the network's CA takes."""
    parser.add_argument(
        "--cert-days",
        type=int,
        default=NODE_CERT_VALID_DAYS,
        help=f"{lifetime} (default {NODE_CERT_VALID_DAYS})",
    )
    add_passphrase_flag(parser)
    add_json_flag(parser)


def add_observer(options: argparse.Namespace) -> int:
    from .network import free_ports, network_dir  # network.py imports this module: import late

    directory = network_dir(options)
    try:
        manifest = load_manifest(directory)
    except ManifestError as exc:
        raise CommandError("NETWORK_INVALID", exc.message) from None
    if options.cert_days < 1:
        raise CommandError("BAD_ARGUMENT", "--cert-days must be at least 1")
    if len(manifest.observers) >= OBSERVERS_MAX:
        raise CommandError("BAD_ARGUMENT", f"a network holds at most {OBSERVERS_MAX} observers")
    name = _observer_name(manifest, options.name)
    node_dir = directory / "nodes" / name
    if node_dir.exists():
        raise CommandError("NODE_EXISTS", f"{node_dir} already exists; choose another --name")
    passphrase = network_passphrase(manifest, options.passphrase_file)
    host = "127.0.0.1"
    # Ports the OS says are free now, but none a stopped node of this network already owns.
    owned = {a.port for p in manifest.processes for a in (p.api, p.metrics)} | {
        n.peer.port for n in manifest.nodes
    }
    ports = [port for port in free_ports(2 + len(owned), host) if port not in owned][:2]
    api, metrics = (HostPort(host, port) for port in ports)
    validators = [node.id for node in manifest.nodes]
    try:
        _write_observer(directory, node_dir, name, api, metrics, validators, passphrase, options)
        config = load_config(node_dir / "node.toml", passphrase=passphrase)
        if not isinstance(config, ObserverConfig):
            raise CommandError("CONFIG_INVALID", f"{node_dir / 'node.toml'} is not an observer's")
        entry = {
            "id": name,
            "api": str(api),
            "metrics": str(metrics),
            "dir": f"nodes/{name}",
            "config": f"nodes/{name}/node.toml",
        }
        _add_to_network(directory, entry)
    except ConfigError as exc:
        shutil.rmtree(node_dir, ignore_errors=True)
        raise CommandError("CONFIG_INVALID", f"the written observer does not load: {exc}") from None
    except BaseException:
        shutil.rmtree(node_dir, ignore_errors=True)  # leave no half-written observer behind
        raise
    summary = {
        "dir": str(directory),
        "node_id": name,
        "role": OBSERVER_ROLE,
        "api": str(api),
        "metrics": str(metrics),
        "validators": validators,
        "config": str(node_dir / "node.toml"),
    }
    text = (
        f"observer {name} added to {directory}: api {api}, metrics {metrics}, following "
        f"{', '.join(validators)}\nstart it with: ibledger network up --dir {directory}"
    )
    emit(options, summary, text)
    return 0


def _observer_name(manifest: Manifest, given: str | None) -> str:
    taken = {process.id for process in manifest.processes}
    if given is None:
        number = 1
        while f"{OBSERVER_NAME_PREFIX}{number}" in taken:
            number += 1
        return f"{OBSERVER_NAME_PREFIX}{number}"
    if NODE_ID_PATTERN.fullmatch(given) is None:
        raise CommandError("BAD_ARGUMENT", f"--name {given!r} is not a node id: {NODE_ID_RULE}")
    if given in taken:
        kind = "a validator" if manifest.node(given) is not None else "an observer"
        raise CommandError(
            "NODE_EXISTS", f"--name {given!r} is already the id of {kind} of this network"
        )
    return given


def network_passphrase(manifest: Manifest, passphrase_file: Path | None) -> bytes | None:
    """The network's passphrase when its keys are encrypted (it decrypts the CA key)."""
    if not manifest.keys_encrypted:
        if passphrase_file is not None:
            raise CommandError(
                "BAD_ARGUMENT", "--passphrase-file is for a network whose keys are encrypted"
            )
        return None
    try:
        passphrase = given_passphrase(passphrase_file) or prompt_passphrase(
            "passphrase for the network's private keys"
        )
    except CryptoError as exc:
        raise CommandError(exc.code, exc.message) from None
    if passphrase is None:
        raise CommandError(
            "PASSPHRASE_REQUIRED",
            f"the network's keys are encrypted: pass --passphrase-file FILE or ${PASSPHRASE_ENV}, "
            "or run it in a terminal to be asked",
        )
    return passphrase


def _write_observer(
    directory: Path,
    node_dir: Path,
    name: str,
    api: HostPort,
    metrics: HostPort,
    validators: list[str],
    passphrase: bytes | None,
    options: argparse.Namespace,
) -> None:
    try:
        ca = load_ca(directory / "ca", passphrase)
        certificate = issue_node_certificate(
            ca, name, hosts=[api.host], valid_days=options.cert_days, role=OBSERVER_ROLE
        )
    except PkiError as exc:
        raise CommandError("PKI_ERROR", str(exc)) from None
    except CryptoError as exc:
        raise CommandError(exc.code, exc.message) from None
    (node_dir / "tls").mkdir(parents=True, mode=0o700)
    (node_dir / "data").mkdir(mode=0o700)
    certificate.write(node_dir / "tls" / "node.crt", node_dir / "tls" / "node.key", passphrase)
    _write_new(node_dir / "node.toml", observer_toml(name, api, metrics, validators, passphrase))


def observer_toml(
    name: str,
    api: HostPort,
    metrics: HostPort,
    validators: list[str],
    passphrase: bytes | None = None,
) -> str:
    """An observer's node.toml, its paths relative to ``nodes/<name>/``."""
    from .network import api_section  # network.py imports this module: import late

    keys: dict[str, dict[str, str | int | bool | list[str]]] = (
        {"keys": {"encrypted": True}} if passphrase is not None else {}
    )
    return format_toml(
        {
            "node": {
                "id": name,
                "role": OBSERVER_ROLE,
                "genesis_file": "../../genesis.json",
                "data_dir": "data",
            },
            "api": api_section(api),
            "peer": {
                "tls_cert": "tls/node.crt",
                "tls_key": "tls/node.key",
                "ca_cert": "../../ca/ca.crt",
                "max_message_bytes": 16 * 1024 * 1024,
            },
            "metrics": {"listen": str(metrics)},
            "log": {
                "level": "info",
                "file": NODE_LOG,
                "max_bytes": 16 * 1024 * 1024,
                "backups": 5,
            },
            "observer": {
                "validators": validators,
                "poll_interval_ms": OBSERVER_POLL_INTERVAL_MS_DEFAULT,
            },
            **keys,
        }
    )


def _write_new(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _replace_json(path: Path, data: Any) -> None:
    """Write ``data`` beside ``path`` and rename it over: a reader never sees half a file."""
    staged = path.with_name(path.name + ".new")
    staged.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(staged, path)


def _add_to_network(directory: Path, entry: dict[str, str]) -> None:
    """Add the observer to network.json and prometheus-targets.json: both are read and checked
    before either is written, and both are put back if the manifest then does not load."""
    manifest_path = directory / MANIFEST_FILE
    targets_path = directory / PROMETHEUS_TARGETS
    try:
        raw = read_json_object(manifest_path)
    except JsonFileError as exc:
        raise CommandError("NETWORK_INVALID", f"{manifest_path}: {exc}") from None
    observers = raw.get("observers", [])
    if not isinstance(observers, list):
        raise CommandError("NETWORK_INVALID", f"{manifest_path}: observers: must be a list")
    try:
        targets_text: str | None = targets_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        targets_text = None
    except OSError as exc:
        raise CommandError("NETWORK_INVALID", f"{targets_path} cannot be read: {exc}") from None
    try:
        targets = json.loads(targets_text) if targets_text is not None else []
    except ValueError as exc:
        raise CommandError("NETWORK_INVALID", f"{targets_path} is not JSON: {exc}") from None
    if not isinstance(targets, list):
        raise CommandError("NETWORK_INVALID", f"{targets_path} must hold a list of target groups")
    target = {"targets": [entry["metrics"]], "labels": {"node": entry["id"], "role": "observer"}}
    _replace_json(manifest_path, raw | {"observers": [*observers, entry]})
    _replace_json(targets_path, [*targets, target])
    try:
        load_manifest(directory)
    except ManifestError as exc:
        _replace_json(manifest_path, raw)
        if targets_text is None:
            targets_path.unlink()
        else:
            _replace_json(targets_path, targets)
        raise CommandError(
            "NETWORK_INVALID", f"the updated manifest does not load: {exc}"
        ) from None
