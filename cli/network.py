"""``ibledger network``: create a consortium network and run it locally as processes.

``network init`` writes everything a network needs into one directory (default
``$IBLEDGER_HOME/network``)::

    ca/ca.crt, ca/ca.key                 the consortium CA (ECDSA P-256; key 0600)
    nodes/<id>/node.toml                 node configuration (paths relative to this file)
    nodes/<id>/keys/validator.key.pem    Ed25519 consensus signing key (0600)
    nodes/<id>/tls/node.crt, node.key    TLS certificate for peer links (key 0600)
    nodes/<id>/data/                     the node's LevelDB and state
    identities/<ID>.key.pem              demo participants' signing keys (0600)
    genesis.json                         chain id, validators, consensus parameters, participants,
                                         governance (admin quorum)
    network.json                         the manifest client commands read (``cli.manifest``)
    prometheus-targets.json              every node's metrics address, for Prometheus discovery

With ``--encrypt`` every private key above is encrypted under one passphrase (``node.keyfile``)
and the network is marked so (``[keys] encrypted`` in node.toml, ``keys_encrypted`` in the
manifest) that a plaintext key is refused later. ``up`` decrypts every node's keys first, so a
wrong passphrase starts nothing, then passes it to each node through an inherited pipe.

``--hosts HOST[:PORT],...`` places one validator per host on fixed ports (peer PORT, API PORT+1,
metrics PORT+2) and writes ``bundles/<id>/`` per host; ``--docker`` writes ``compose.yaml`` and
Kubernetes manifests in ``k8s/`` for ``--nodes N`` containers (``cli.deploy``).

``--admins N`` writes N consortium admins (ADMIN, ADMIN2, ...) and ``--admin-quorum M`` how many
of them must approve a governance proposal (default: a majority, so 1 for the single ADMIN).

``network up`` starts every node as a background process in its own session (so it outlives
the command), writes ``nodes/<id>/node.pid`` and waits until every node is alive and ready (its
``/readyz`` on the metrics port answers 200: every listener bound, not catching up, a quorum of
validators connected), showing progress (one updating line on a terminal, a plain line per node
otherwise). It exits non-zero naming each node that is not up and why, the reason taken from
the node's log. A node logs JSON lines to ``nodes/<id>/node.log`` (rotated by size, see
``[log]`` in node.toml); anything it prints outside its logger goes to ``nodes/<id>/node.out``.
``network down`` sends SIGTERM, waits, then SIGKILLs what is left. ``network status`` asks every
node for its status with a 2 s deadline and exits non-zero when a node is down, saying so when
too few validators are up to commit (quorum lost). ``network logs [-f] [NODE]`` prints the last
lines of every node's log (or one node's), and with ``-f`` follows them across rotations.

A pid file is trusted only while its process is alive and was started with this node's
``node.toml`` on its command line, so a stale pid reused by another program is never signalled.

Environment
-----------
``IBLEDGER_NODE_COMMAND``
    For tests only: a command line (split like a POSIX shell would) that replaces
    ``python -m ibledger.cli.main node start``; ``--config <node.toml>`` is appended to it.
``IBLEDGER_PASSPHRASE``
    The passphrase of encrypted keys when ``--passphrase-file`` is not given (see
    ``cli.passphrase`` for every source).
``IBLEDGER_CRYPTO``
    The crypto suite ``network init`` writes into genesis when ``--crypto`` is not given
    (``ed25519-sha256`` by default, or ``sm2-sm3``); ``make run`` passes it through.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import grpc

from ibledger.contracts.identifiers import uscc_check_char
from ibledger.contracts.identifiers import validate as validate_identifier
from ibledger.node.config import ConfigError, HostPort, format_toml, load_config, load_node_config
from ibledger.node.crypto import (
    ED25519_SHA256,
    SUITE_NAMES,
    CryptoError,
    generate_keypair,
    write_private_key,
)
from ibledger.node.pki import NODE_CERT_VALID_DAYS, PkiError, create_ca, issue_node_certificate
from ibledger.proto import ledger_pb2, ledger_pb2_grpc

from . import deploy, network_drill, network_membership, network_observer, network_rotate
from .client import api_channel
from .manifest import (
    MANIFEST_FILE,
    Manifest,
    ManifestError,
    ManifestProcess,
    load_manifest,
)
from .output import CommandError, add_json_flag, emit, home, plain
from .passphrase import (
    PASSPHRASE_ENV,
    PASSPHRASE_FD_ENV,
    PassphraseForKeys,
    add_passphrase_flag,
    given_passphrase,
    passphrase_pipe,
    prompt_passphrase,
)

NODE_COMMAND_ENV = "IBLEDGER_NODE_COMMAND"
CRYPTO_ENV = "IBLEDGER_CRYPTO"
NODES_DEFAULT = 4
NODES_MAX = 64
CHAIN_ID_DEFAULT = "ibledger-local"
UP_TIMEOUT_S = 30.0
DOWN_TIMEOUT_S = 10.0
STATUS_DEADLINE_S = 2.0
PROBE_INTERVAL_S = 0.1
LOG_TAIL_LINES = 20
LOGS_LINES_DEFAULT = 20
FOLLOW_INTERVAL_S = 0.2
READY_PROBE_TIMEOUT_S = 1.0
LOG_MARKER = "=== ibledger network up: starting "
NODE_LOG = "node.log"  # the node's own JSON log (node.toml [log] file)
NODE_OUT = "node.out"  # whatever the process prints outside its logger
PROMETHEUS_TARGETS = "prometheus-targets.json"
NETWORK_ENTRIES = (
    "network.json",
    "genesis.json",
    PROMETHEUS_TARGETS,
    "ca",
    "nodes",
    "identities",
    *deploy.DEPLOY_ENTRIES,  # bundles and container files of --hosts / --docker
)

# Nodes are detached on purpose: they run in their own session and outlive this command. Their
# handles stay referenced so that a long-lived caller (a test process) is not warned about
# children it never meant to wait for; ``_pid_alive`` reaps any that exit.
_DETACHED: list[subprocess.Popen[bytes]] = []

CONSENSUS_DEFAULTS: dict[str, int] = {
    "batch_size_max": 500,
    "batch_timeout_ms": 50,
    "checkpoint_interval": 64,
    "watermark_window": 256,
    "view_change_timeout_ms": 2000,
    "timestamp_skew_ms": 5000,
    "tick_ms": 10,
    "eager_blocks": 1,
}

ADMINS_MAX = 16
ADMISSION_DEFAULTS: dict[str, int] = {
    "sender_burst": 1_000,
    "sender_pending_max": 1_000,
    "sender_rate_per_s": 500,
    "tx_expiry_horizon_ms": 24 * 3600 * 1000,
}

# Demo participants. LEIs and the USCC are the institutions' published codes; every one passes
# contracts.identifiers.validate, and genesis validation would refuse them otherwise.
DEMO_PARTICIPANTS: tuple[dict[str, Any], ...] = (
    {"id": "ADMIN", "name": "Consortium Administrator", "roles": ["consortium_admin"]},
    {
        "id": "ICBC",
        "name": "Industrial and Commercial Bank of China",
        "roles": ["bank"],
        "lei": "5493002ERZU2K9PZDL40",
    },
    {
        "id": "CIB",
        "name": "Industrial Bank Co., Ltd.",
        "roles": ["bank"],
        "lei": "300300C1030935001303",
    },
    {
        "id": "SPDB",
        "name": "Shanghai Pudong Development Bank",
        "roles": ["bank"],
        "lei": "300300C1031031001330",
    },
    {
        "id": "HUAWEI",
        "name": "Huawei Technologies Co., Ltd.",
        "roles": ["enterprise"],
        "uscc": "914403001922038216",
    },
    {
        "id": "SUPPLIER",
        "name": "Shanghai Demo Components Co., Ltd. (fictitious supplier)",
        "roles": ["enterprise"],
        "uscc": "91310000607200001" + uscc_check_char("91310000607200001"),
    },
    {"id": "PBOC", "name": "People's Bank of China", "roles": ["central_bank"]},
    {
        "id": "CSDC",
        "name": "China Securities Depository and Clearing",
        "roles": ["registrar"],
    },
    {"id": "REGULATOR", "name": "Banking Supervisor", "roles": ["regulator"]},
)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "network",
        help="create a consortium network and run it locally",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    init = verbs.add_parser("init", help="write CA, node keys and configs, genesis, manifest")
    init.add_argument(
        "--nodes",
        type=int,
        help=f"validators (default {NODES_DEFAULT}; with --hosts: one per host)",
    )
    deploy.add_init_options(init)
    _add_dir(init)
    init.add_argument(
        "--chain-id", default=CHAIN_ID_DEFAULT, help=f"chain id (default {CHAIN_ID_DEFAULT})"
    )
    init.add_argument(
        "--cert-days",
        type=int,
        default=NODE_CERT_VALID_DAYS,
        help=f"node certificate lifetime in days (default {NODE_CERT_VALID_DAYS})",
    )
    init.add_argument(
        "--encrypt",
        action="store_true",
        help="encrypt every private key written (CA, TLS, validator and identity keys) with one "
        "passphrase, from --passphrase-file, $IBLEDGER_PASSPHRASE or a prompt",
    )
    add_passphrase_flag(init)
    init.add_argument(
        "--admins",
        type=int,
        default=1,
        help="consortium admins ADMIN, ADMIN2, ... with key files (default 1)",
    )
    init.add_argument(
        "--admin-quorum",
        type=int,
        metavar="M",
        help="admins whose approval a governance proposal needs (default: a majority)",
    )
    init.add_argument(
        "--crypto",
        choices=SUITE_NAMES,
        help=f"the chain's crypto suite, fixed at genesis (default ${CRYPTO_ENV} or "
        f"{ED25519_SHA256}); sm2-sm3 is SM2 signatures, SM3 hashing, SM4-encrypted key files",
    )
    init.add_argument("--force", action="store_true", help="replace an existing network")
    init.add_argument(
        "--if-missing",
        action="store_true",
        help="do nothing (and succeed) when the directory already holds a network",
    )
    add_json_flag(init)
    init.set_defaults(handler=init_network)

    up = verbs.add_parser("up", help="start every node in the background and wait until ready")
    _add_dir(up)
    up.add_argument(
        "--timeout",
        type=float,
        default=UP_TIMEOUT_S,
        help=f"seconds to wait for every node to answer (default {UP_TIMEOUT_S:g})",
    )
    add_passphrase_flag(up)
    add_json_flag(up)
    up.set_defaults(handler=up_network)

    down = verbs.add_parser("down", help="stop every node (SIGTERM, then SIGKILL)")
    _add_dir(down)
    down.add_argument(
        "--timeout",
        type=float,
        default=DOWN_TIMEOUT_S,
        help=f"seconds to wait after SIGTERM before SIGKILL (default {DOWN_TIMEOUT_S:g})",
    )
    add_json_flag(down)
    down.set_defaults(handler=down_network)

    status = verbs.add_parser(
        "status",
        help="show every node's height, view and peers; exit 1 when a node is down",
    )
    _add_dir(status)
    add_json_flag(status)
    status.set_defaults(handler=network_status)

    logs = verbs.add_parser("logs", help="print (or follow) the nodes' JSON logs")
    _add_dir(logs)
    logs.add_argument("node", nargs="?", metavar="NODE", help="one node id (default: every node)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument(
        "-n",
        "--lines",
        type=int,
        default=LOGS_LINES_DEFAULT,
        help=f"lines of each log to print first (default {LOGS_LINES_DEFAULT})",
    )
    logs.set_defaults(handler=network_logs)

    network_observer.register(verbs, _add_dir)
    network_membership.register(verbs, _add_dir)
    network_drill.register(verbs, _add_dir)
    network_rotate.register(verbs, _add_dir)


def _add_dir(parser: argparse.ArgumentParser, *aliases: str) -> None:
    parser.add_argument(
        "--dir",
        *aliases,
        dest="dir",
        type=Path,
        help="network directory (default: $IBLEDGER_HOME/network)",
    )


def default_network_dir() -> Path:
    return home() / "network"


def network_dir(options: argparse.Namespace) -> Path:
    return _network_dir(options)


def _network_dir(options: argparse.Namespace) -> Path:
    directory: Path = options.dir or default_network_dir()
    return directory.resolve()


def _manifest(directory: Path) -> Manifest:
    try:
        return load_manifest(directory)
    except ManifestError as exc:
        raise CommandError("NETWORK_INVALID", exc.message) from None


# --- init ----------------------------------------------------------------------------------------


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports the OS reports free now (all bound at once, then released)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _write_text(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _write_json(path: Path, data: Any) -> None:
    _write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def init_network(options: argparse.Namespace) -> int:
    directory = _network_dir(options)
    deployment = deploy.deployment_from_options(options, NODES_DEFAULT, NODES_MAX)
    count: int = NODES_DEFAULT if options.nodes is None else options.nodes
    if deployment is not None:
        count = deployment.count
    if not 1 <= count <= NODES_MAX:
        raise CommandError("BAD_ARGUMENT", f"--nodes must be from 1 to {NODES_MAX}, got {count}")
    if options.cert_days < 1:
        raise CommandError("BAD_ARGUMENT", "--cert-days must be at least 1")
    passphrase: bytes | None = None
    if options.encrypt:
        try:
            passphrase = given_passphrase(options.passphrase_file) or prompt_passphrase(
                "passphrase for the network's private keys", confirm=True
            )
        except CryptoError as exc:
            raise CommandError(exc.code, exc.message) from None
        if passphrase is None:
            raise CommandError(
                "PASSPHRASE_REQUIRED",
                f"--encrypt needs a passphrase: --passphrase-file FILE, ${PASSPHRASE_ENV}, "
                "or run it in a terminal to be asked",
            )
    elif options.passphrase_file is not None:
        raise CommandError("BAD_ARGUMENT", "--passphrase-file needs --encrypt")
    admins: int = options.admins
    if not 1 <= admins <= ADMINS_MAX:
        raise CommandError("BAD_ARGUMENT", f"--admins must be from 1 to {ADMINS_MAX}, got {admins}")
    quorum: int = (
        admin_quorum_default(admins) if options.admin_quorum is None else options.admin_quorum
    )
    if not 1 <= quorum <= admins:
        raise CommandError(
            "BAD_ARGUMENT", f"--admin-quorum must be from 1 to --admins ({admins}), got {quorum}"
        )
    suite = _chosen_suite(options)
    existing = [name for name in NETWORK_ENTRIES if (directory / name).exists()]
    if existing and options.if_missing and not options.force:
        manifest = _manifest(directory)
        kept = _existing_suite(directory)
        if (options.crypto or os.environ.get(CRYPTO_ENV)) and kept not in (None, suite):
            raise CommandError(
                "SUITE_MISMATCH",
                f"the network in {directory} runs {kept}, not {suite}; a chain's suite is fixed "
                f"at genesis: run 'ibledger network down' and 'ibledger network init --force "
                f"--crypto {suite}' to replace it",
            )
        emit(
            options,
            {"dir": str(directory), "chain_id": manifest.chain_id, "created": False},
            f"network {manifest.chain_id} already exists in {directory}; keeping it",
        )
        return 0
    if existing:
        if not options.force:
            raise CommandError(
                "NETWORK_EXISTS",
                f"{directory} already holds a network ({', '.join(existing)}); "
                "pass --force to replace it",
            )
        running = _running_in_directory(directory)
        if running:
            raise CommandError(
                "NETWORK_RUNNING",
                f"nodes {', '.join(running)} of the network in {directory} are running; "
                "run 'ibledger network down' first",
            )
        for name in existing:
            target = directory / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    try:
        summary = _write_network(
            directory,
            count,
            options.chain_id,
            options.cert_days,
            admins,
            quorum,
            passphrase,
            suite=suite,
            placements=deploy.placements_for(deployment),
        )
        if deployment is not None:
            summary |= deploy.write_deployment(
                directory, deployment, passphrase, summary["chain_id"]
            )
    except BaseException:
        for name in NETWORK_ENTRIES:  # leave no half-written network behind
            target = directory / name
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            elif target.exists():
                target.unlink()
        raise
    lines = [
        f"network {summary['chain_id']} ({summary['crypto_suite']}) with {count} node(s) "
        f"written to {directory}",
        _table(
            ["node", "api", "peer", "metrics"],
            [[n["id"], n["api"], n["peer"], n["metrics"]] for n in summary["nodes"]],
        ),
        f"identities: {', '.join(summary['identities'])}",
        *(
            deploy.summary_lines(summary, directory)
            if deployment is not None
            else [f"start it with: ibledger network up --dir {directory}"]
        ),
    ]
    nodes = [_node_row(node) for node in summary["nodes"]]
    emit(options, summary | {"nodes": nodes, "created": True}, "\n".join(lines))
    return 0


def _node_row(node: dict[str, Any]) -> dict[str, Any]:
    """A manifest's node entry as command output names it: ``node_id``, not the file's ``id``."""
    return {("node_id" if key == "id" else key): value for key, value in node.items()}


def _chosen_suite(options: argparse.Namespace) -> str:
    chosen: str = options.crypto or os.environ.get(CRYPTO_ENV) or ED25519_SHA256
    if chosen not in SUITE_NAMES:
        raise CommandError(
            "UNKNOWN_SUITE",
            f"${CRYPTO_ENV}={chosen!r} is not a crypto suite (known: {', '.join(SUITE_NAMES)})",
        )
    return chosen


def _existing_suite(directory: Path) -> str | None:
    try:
        suite = json.loads((directory / "genesis.json").read_text()).get("crypto_suite")
    except (OSError, ValueError, AttributeError):
        return None
    return suite if isinstance(suite, str) else None


def admin_quorum_default(admins: int) -> int:
    """A majority of the admins: no minority can change another participant's identity."""
    return admins // 2 + 1


def demo_participants(admins: int) -> list[dict[str, Any]]:
    """The demo cast, with ``admins`` consortium admins ADMIN, ADMIN2, ..."""
    extra = [
        {"id": f"ADMIN{n}", "name": f"Consortium Administrator {n}", "roles": ["consortium_admin"]}
        for n in range(2, admins + 1)
    ]
    return [DEMO_PARTICIPANTS[0], *extra, *DEMO_PARTICIPANTS[1:]]


def _write_network(
    directory: Path,
    count: int,
    chain_id: str,
    cert_days: int,
    admins: int,
    quorum: int,
    passphrase: bytes | None = None,
    *,
    suite: str = ED25519_SHA256,
    placements: Sequence[deploy.Placement] | None = None,
) -> dict[str, Any]:
    node_ids = [f"node{i}" for i in range(count)]
    ports = free_ports(3 * count) if placements is None else []
    host = "127.0.0.1"
    try:
        ca = create_ca(f"{chain_id} consortium CA")
        ca.write(directory / "ca", passphrase)
    except PkiError as exc:
        raise CommandError("PKI_ERROR", str(exc)) from None
    (directory / "ca").chmod(0o700)

    validators: list[dict[str, Any]] = []
    manifest_nodes: list[dict[str, Any]] = []
    for index, node_id in enumerate(node_ids):
        if placements is None:
            api, peer, metrics = (HostPort(host, ports[3 * index + k]) for k in range(3))
            names, listen_host = [host], None
        else:  # --hosts / --docker: fixed ports, advertised host names
            placed = placements[index]
            api, peer, metrics = placed.api, placed.peer, placed.metrics
            names, listen_host = [placed.host], placed.listen_host
        node_dir = directory / "nodes" / node_id
        for sub in ("keys", "tls"):
            (node_dir / sub).mkdir(parents=True, mode=0o700)
        (node_dir / "data").mkdir(mode=0o700)
        keypair = generate_keypair(suite)
        write_private_key(node_dir / "keys" / "validator.key.pem", keypair, passphrase)
        try:
            certificate = issue_node_certificate(ca, node_id, hosts=names, valid_days=cert_days)
        except PkiError as exc:
            raise CommandError("PKI_ERROR", str(exc)) from None
        certificate.write(node_dir / "tls" / "node.crt", node_dir / "tls" / "node.key", passphrase)
        toml = _node_toml(
            node_id, api, peer, metrics, encrypted=passphrase is not None, listen_host=listen_host
        )
        _write_text(node_dir / "node.toml", toml)
        validators.append(
            {
                "id": node_id,
                "public_key": keypair.public_key.hex(),
                "api_address": str(api),
                "peer_address": str(peer),
            }
        )
        manifest_nodes.append(
            {
                "id": node_id,
                "api": str(api),
                "peer": str(peer),
                "metrics": str(metrics),
                "dir": f"nodes/{node_id}",
                "config": f"nodes/{node_id}/node.toml",
            }
        )

    (directory / "identities").mkdir(mode=0o700)
    participants: list[dict[str, Any]] = []
    identities: dict[str, dict[str, Any]] = {}
    for template in demo_participants(admins):
        for kind in ("lei", "uscc"):
            if kind in template:
                assert validate_identifier(kind, template[kind], production=True).valid
        keypair = generate_keypair(suite)
        key_file = f"identities/{template['id']}.key.pem"
        write_private_key(directory / key_file, keypair, passphrase)
        participants.append(
            {**template, "keys": [{"suite": keypair.suite, "public_key": keypair.public_key.hex()}]}
        )
        identities[template["id"]] = {
            "participant": template["id"],
            "key_file": key_file,
            "roles": list(template["roles"]),
        }

    genesis = {
        "chain_id": chain_id,
        "crypto_suite": suite,
        "genesis_time_ms": int(time.time() * 1000),
        "validators": validators,
        "consensus": dict(CONSENSUS_DEFAULTS),
        "admission": dict(ADMISSION_DEFAULTS),
        "participants": participants,
        "governance": {"admin_quorum": quorum},
    }
    _write_json(directory / "genesis.json", genesis)
    manifest: dict[str, Any] = {
        "chain_id": chain_id,
        "genesis": "genesis.json",
        "ca_cert": "ca/ca.crt",  # clients verify every node's API certificate against it
        "nodes": manifest_nodes,
        "identities": identities,
    }
    if passphrase is not None:
        manifest["keys_encrypted"] = True  # clients refuse a plaintext identity key in its place
    _write_json(directory / MANIFEST_FILE, manifest)
    # Prometheus file-based discovery (docker/prometheus.yml): every node's metrics address.
    _write_json(
        directory / PROMETHEUS_TARGETS,
        [{"targets": [node["metrics"]], "labels": {"node": node["id"]}} for node in manifest_nodes],
    )

    # Read everything back through the loaders the node uses: init never writes a network that
    # a node would refuse.
    try:
        load_manifest(directory)
        for node in manifest_nodes:
            load_node_config(directory / node["config"], passphrase=passphrase)
    except (ConfigError, ManifestError) as exc:
        raise CommandError("CONFIG_INVALID", f"the written network does not load: {exc}") from None
    return {
        "dir": str(directory),
        "chain_id": chain_id,
        "crypto_suite": suite,
        "nodes": manifest_nodes,
        "identities": sorted(identities),
    }


def api_section(api: HostPort) -> dict[str, str | int | bool]:
    """The ``[api]`` section of a generated node.toml (a validator's or an observer's)."""
    return {
        "listen": str(api),
        "max_message_bytes": 4 * 1024 * 1024,
        "max_concurrent_rpcs": 1024,
        "tls": True,
        "streams_per_viewer": 16,
        "anonymous_streams_per_address": 8,
        "anonymous_streams_max": 64,
    }


def _node_toml(
    node_id: str,
    api: HostPort,
    peer: HostPort,
    metrics: HostPort,
    *,
    encrypted: bool = False,
    listen_host: str | None = None,
    membership: str | None = None,
) -> str:
    """A node's node.toml; it listens on the given addresses, or on their ports at
    ``listen_host`` when one is given (it binds 0.0.0.0 and is dialed by its host name).
    ``membership = "governance"`` for a validator added by governance, not in genesis."""
    keys: dict[str, dict[str, str | int | bool]] = (
        {"keys": {"encrypted": True}} if encrypted else {}
    )
    if listen_host is not None:
        api, peer, metrics = (HostPort(listen_host, a.port) for a in (api, peer, metrics))
    return format_toml(
        {
            "node": {
                "id": node_id,
                "genesis_file": "../../genesis.json",
                "data_dir": "data",
                "validator_key": "keys/validator.key.pem",
                **({"membership": membership} if membership else {}),
            },
            "api": api_section(api),
            "peer": {
                "listen": str(peer),
                "tls_cert": "tls/node.crt",
                "tls_key": "tls/node.key",
                "ca_cert": "../../ca/ca.crt",
                "max_message_bytes": 16 * 1024 * 1024,
                "outbound_queue_max": 10_000,
            },
            "metrics": {"listen": str(metrics)},
            "mempool": {"size_max": 50_000},
            "log": {
                "level": "info",
                "file": NODE_LOG,
                "max_bytes": 16 * 1024 * 1024,
                "backups": 5,
            },
            **keys,
        }
    )


node_toml = _node_toml  # for network add-node


# --- processes -----------------------------------------------------------------------------------


def _pid_file(node_dir: Path) -> Path:
    return node_dir / "node.pid"


def _read_pid(node_dir: Path) -> int | None:
    try:
        text = _pid_file(node_dir).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def _remove_pid_file(node_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        _pid_file(node_dir).unlink()


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie does not count; our own exited children are reaped)."""
    with contextlib.suppress(ChildProcessError, OSError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else; the command-line check decides
    try:
        stat_text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill(0)
    return stat_text.rpartition(")")[2].split()[0] not in ("Z", "X")


def _runs_config(pid: int, config: Path) -> bool:
    """True when ``pid`` was started with ``config`` on its command line (or procfs is absent)."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return False
    return os.fsencode(str(config)) in arguments


def _running_pid(node_dir: Path, config: Path) -> int | None:
    pid = _read_pid(node_dir)
    if pid is None or not _pid_alive(pid) or not _runs_config(pid, config):
        return None
    return pid


def _running_in_directory(directory: Path) -> list[str]:
    running = []
    for pid_file in sorted(directory.glob("nodes/*/node.pid")):
        node_dir = pid_file.parent
        if _running_pid(node_dir, node_dir / "node.toml") is not None:
            running.append(node_dir.name)
    return running


def node_command(config: Path) -> list[str]:
    """The command line that runs one node."""
    override = os.environ.get(NODE_COMMAND_ENV)
    prefix = (
        shlex.split(override)
        if override
        else [sys.executable, "-m", "ibledger.cli.main", "node", "start"]
    )
    return [*prefix, "--config", str(config)]


def _read_end(path: Path, size_max: int = 64 * 1024) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - size_max))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _log_tail(node_dir: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last ``lines`` lines the process printed since it was last started (node.out)."""
    text = _read_end(node_dir / NODE_OUT)
    marker = text.rfind(LOG_MARKER)
    if marker >= 0:
        text = text[marker:].partition("\n")[2]
    return text.splitlines()[-lines:]


def _log_lines_since_start(node_dir: Path, pid: int | None) -> list[dict[str, Any]]:
    """The JSON lines of node.log written by its latest start (by ``pid`` when known)."""
    entries: list[dict[str, Any]] = []
    for line in _read_end(node_dir / NODE_LOG, 256 * 1024).splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                if entry.get("event") == "starting":
                    entries = [] if pid is None or entry.get("pid") == pid else entries
                entries.append(entry)
    return entries


def failure_reason(node_dir: Path, pid: int | None, *, log_only: bool = False) -> str | None:
    """Why a node failed, from its log: the last error of its latest start, or (unless
    ``log_only``) the last line of its output."""
    for entry in reversed(_log_lines_since_start(node_dir, pid)):
        if entry.get("level") in ("critical", "error"):
            reason = entry.get("reason") or entry.get("detail")
            message = str(entry.get("msg", ""))
            return f"{message}: {reason}" if reason else message
    if log_only:
        return None
    for line in reversed(_log_tail(node_dir)):
        if line.strip():
            return line.strip()
    return None


def _start_node(node: ManifestProcess, passphrase: bytes | None = None) -> subprocess.Popen[bytes]:
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    inherited: tuple[int, ...] = ()
    if passphrase is not None:
        inherited = (passphrase_pipe(passphrase),)
        environment[PASSPHRASE_FD_ENV] = str(inherited[0])
        environment.pop(PASSPHRASE_ENV, None)  # the pipe replaces it: keep it out of /proc
    try:
        with (node.dir / NODE_OUT).open("ab") as log:
            log.write(f"{LOG_MARKER}{node.id} at {stamp} ===\n".encode())
            log.flush()
            process = subprocess.Popen(
                node_command(node.config),
                cwd=node.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=environment,
                pass_fds=inherited,
            )
    finally:
        for fd in inherited:
            os.close(fd)
    _pid_file(node.dir).write_text(f"{process.pid}\n")
    _DETACHED.append(process)
    return process


# --- gRPC status ---------------------------------------------------------------------------------


def query_statuses(
    addresses: dict[str, HostPort], deadline_s: float, ca_cert: Path | None
) -> dict[str, ledger_pb2.NodeStatus | str]:
    """Ask every address for GetStatus in parallel; a NodeStatus, or an error text, per id.
    With ``ca_cert`` each node must present a certificate for its id from that CA."""
    options = [("grpc.enable_http_proxy", 0)]
    channels = {
        node_id: api_channel(str(a), ca_cert, node_id, options) for node_id, a in addresses.items()
    }
    try:
        futures = {
            node_id: ledger_pb2_grpc.LedgerStub(channel).GetStatus.future(
                ledger_pb2.GetStatusRequest(), timeout=deadline_s
            )
            for node_id, channel in channels.items()
        }
        results: dict[str, ledger_pb2.NodeStatus | str] = {}
        for node_id, future in futures.items():
            try:
                results[node_id] = future.result()
            except grpc.RpcError as exc:
                code = exc.code() if isinstance(exc, grpc.Call) else None
                results[node_id] = code.name if code is not None else "UNAVAILABLE"
        return results
    finally:
        for channel in channels.values():
            channel.close()


# --- up ------------------------------------------------------------------------------------------


def up_network(options: argparse.Namespace) -> int:
    directory = _network_dir(options)
    manifest = _manifest(directory)
    if options.timeout <= 0:
        raise CommandError("BAD_ARGUMENT", "--timeout must be positive")
    # Every node's keys are decrypted here first, so a wrong or missing passphrase fails this
    # command before any process starts; the nodes then get it through an inherited pipe.
    try:
        passphrases = PassphraseForKeys(options.passphrase_file)
        for node in manifest.processes:
            load_config(node.config, passphrase=passphrases.value, ask_passphrase=passphrases)
    except ConfigError as exc:
        raise CommandError("CONFIG_INVALID", str(exc)) from None
    except CryptoError as exc:
        raise CommandError(exc.code, exc.message) from None

    processes: dict[str, subprocess.Popen[bytes]] = {}
    pids: dict[str, int] = {}
    action: dict[str, str] = {}
    for node in manifest.processes:
        pid = _running_pid(node.dir, node.config)
        if pid is not None:
            pids[node.id], action[node.id] = pid, "already running"
            continue
        _remove_pid_file(node.dir)
        try:
            process = _start_node(node, passphrases.value)
        except OSError as exc:
            raise CommandError("START_FAILED", f"cannot start {node.id}: {exc}") from None
        processes[node.id], pids[node.id], action[node.id] = process, process.pid, "started"

    progress = _Progress(len(manifest.processes), enabled=not options.json)
    failures = _wait_ready(manifest, processes, pids, options.timeout, progress)
    rows = []
    for node in manifest.processes:
        rows.append(
            {
                "node_id": node.id,
                "pid": pids.get(node.id),
                "api": str(node.api),
                "action": action[node.id],
                "up": node.id not in failures,
                "ready": node.id not in failures,
                "error": failures.get(node.id),
            }
        )
    text = _table(
        ["node", "pid", "api", "action", "state"],
        [
            [r["node_id"], r["pid"], r["api"], r["action"], "up" if r["up"] else r["error"]]
            for r in rows
        ],
    )
    emit(options, {"dir": str(directory), "nodes": rows}, text)
    if failures:
        parts = []
        for node in manifest.processes:
            if node.id in failures:
                tail = _log_tail(node.dir)
                log_text = "\n".join(f"    {line}" for line in tail) or "    (nothing)"
                parts.append(
                    f"{node.id}: {failures[node.id]}; last lines of {node.dir / NODE_OUT}:\n"
                    f"{log_text}"
                )
        raise CommandError(
            "NODES_NOT_UP",
            f"{len(failures)} of {len(manifest.processes)} node(s) did not come up "
            f"({', '.join(sorted(failures))})\n" + "\n".join(parts),
        )
    return 0


def probe_ready(address: HostPort, timeout_s: float = READY_PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """Ask a node's ``/readyz``; (ready, why not)."""
    url = f"http://{address.host}:{address.port}/readyz"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s):
            return True, ""
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(ValueError, OSError):
            body = json.loads(exc.read())
            return False, str(body.get("reason", f"HTTP {exc.code}"))
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"metrics port {address.port} does not answer ({reason})"


class _Progress:
    """``network up`` progress: one rewritten line on a terminal, plain lines otherwise."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._total = total
        self._enabled = enabled
        self._tty = enabled and sys.stderr.isatty()
        self._began = time.monotonic()
        self._shown = ""

    def node_done(self, node_id: str, what: str) -> None:
        if not self._enabled:
            return
        if self._tty:
            self._clear()
        print(f"{node_id}: {what} ({time.monotonic() - self._began:.1f} s)", file=sys.stderr)

    def waiting(self, ready: int, pending: dict[str, str]) -> None:
        if not self._tty:
            return
        detail = ", ".join(f"{node_id}: {why}" for node_id, why in sorted(pending.items()))
        line = f"{ready}/{self._total} ready, {time.monotonic() - self._began:.0f} s  {detail}"
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self._shown = line[:width]
        print(f"\r\x1b[K{self._shown}", end="", file=sys.stderr, flush=True)

    def _clear(self) -> None:
        if self._shown:
            print("\r\x1b[K", end="", file=sys.stderr, flush=True)
            self._shown = ""

    def finish(self) -> None:
        if self._tty:
            self._clear()


def _wait_ready(
    manifest: Manifest,
    processes: dict[str, subprocess.Popen[bytes]],
    pids: dict[str, int],
    timeout_s: float,
    progress: _Progress | None = None,
) -> dict[str, str]:
    """Poll until every node is alive and its /readyz answers 200; return
    ``{node id: why it is not up}``, the reason taken from the node's log when it exited."""
    progress = progress or _Progress(len(manifest.processes), enabled=False)
    deadline = time.monotonic() + timeout_s
    pending = {node.id: node for node in manifest.processes}
    failures: dict[str, str] = {}
    why_not: dict[str, str] = {node.id: "starting" for node in manifest.processes}

    def check_exits(watched: dict[str, ManifestProcess]) -> None:
        for node_id in sorted(watched):
            node = watched[node_id]
            process = processes.get(node_id)
            code = process.poll() if process is not None else None
            if code is not None or (process is None and not _pid_alive(pids[node_id])):
                what = f"exited with status {code}" if code is not None else "stopped"
                reason = failure_reason(node.dir, pids.get(node_id))
                failures[node_id] = f"{what}: {reason}" if reason else what
                _remove_pid_file(node.dir)
                del watched[node_id]
                progress.node_done(node_id, failures[node_id])

    try:
        while pending:
            check_exits(pending)
            if not pending or deadline - time.monotonic() <= 0:
                break
            for node_id in sorted(pending):
                ready, why = probe_ready(pending[node_id].metrics)
                if ready:
                    del pending[node_id]
                    progress.node_done(node_id, "ready")
                else:
                    why_not[node_id] = why
            progress.waiting(
                len(manifest.processes) - len(pending) - len(failures),
                {node_id: why_not[node_id] for node_id in pending},
            )
            if pending:
                time.sleep(min(PROBE_INTERVAL_S, max(0.0, deadline - time.monotonic())))
        # Ready is a moment: confirm that every node that was ready is still alive.
        check_exits(
            {n.id: n for n in manifest.processes if n.id not in failures and n.id not in pending}
        )
    finally:
        progress.finish()
    for node_id in pending:
        node = next(n for n in manifest.processes if n.id == node_id)
        failures[node_id] = f"not ready within {timeout_s:g} s: {why_not[node_id]}"
        reason = failure_reason(node.dir, pids.get(node_id), log_only=True)
        if reason:
            failures[node_id] += f"; its log says: {reason}"
    return failures


# --- down ----------------------------------------------------------------------------------------


def _signal(pid: int, signum: int) -> None:
    """Signal a node's whole process group when it leads one (it does: own session)."""
    with contextlib.suppress(ProcessLookupError):
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signum)
                return
        except ProcessLookupError:
            return
        os.kill(pid, signum)


def down_network(options: argparse.Namespace) -> int:
    directory = _network_dir(options)
    manifest = _manifest(directory)
    result: dict[str, str] = {}
    pids: dict[str, int | None] = {}
    for node in manifest.processes:
        recorded = _read_pid(node.dir)
        pid = _running_pid(node.dir, node.config)
        pids[node.id] = pid
        if pid is None:
            result[node.id] = "not running" if recorded is None else "not running (stale pid file)"
            _remove_pid_file(node.dir)
            continue
        _signal(pid, signal.SIGTERM)
        result[node.id] = "stopping"

    stopping = {node_id for node_id, state in result.items() if state == "stopping"}
    _wait_exit(stopping, pids, options.timeout)
    for node_id in sorted(stopping):
        pid = pids[node_id]
        assert pid is not None
        if _pid_alive(pid):
            _signal(pid, signal.SIGKILL)
            result[node_id] = "killed after SIGTERM timeout"
        else:
            result[node_id] = "stopped"
    leftover = {node_id for node_id in stopping if result[node_id].startswith("killed")}
    _wait_exit(leftover, pids, 5.0)
    survivors = sorted(node_id for node_id in leftover if _pid_alive(pids[node_id] or 0))
    for node in manifest.processes:
        if node.id not in survivors:
            _remove_pid_file(node.dir)
    rows = [
        {"node_id": n.id, "pid": pids[n.id], "result": result[n.id]} for n in manifest.processes
    ]
    text = _table(["node", "pid", "result"], [[r["node_id"], r["pid"], r["result"]] for r in rows])
    emit(options, {"dir": str(directory), "nodes": rows}, text)
    if survivors:
        raise CommandError("STOP_FAILED", f"still running after SIGKILL: {', '.join(survivors)}")
    return 0


def stop_node(process: ManifestProcess, timeout_s: float = DOWN_TIMEOUT_S) -> bool:
    """Stop one node as ``network down`` stops each (SIGTERM, then SIGKILL); True when it was
    running."""
    pid = _running_pid(process.dir, process.config)
    if pid is None:
        _remove_pid_file(process.dir)
        return False
    _signal(pid, signal.SIGTERM)
    _wait_exit([process.id], {process.id: pid}, timeout_s)
    if _pid_alive(pid):
        _signal(pid, signal.SIGKILL)
        _wait_exit([process.id], {process.id: pid}, 5.0)
    _remove_pid_file(process.dir)
    return True


def _wait_exit(node_ids: Iterable[str], pids: dict[str, int | None], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = {node_id for node_id in node_ids if pids.get(node_id)}
    while waiting and time.monotonic() < deadline:
        waiting = {node_id for node_id in waiting if _pid_alive(pids[node_id] or 0)}
        if waiting:
            time.sleep(0.05)


# --- status --------------------------------------------------------------------------------------


def node_statuses(
    manifest: Manifest, deadline_s: float = STATUS_DEADLINE_S
) -> list[dict[str, Any]]:
    """One row per node, validators then observers: the process and what its GetStatus says
    (nulls when it is down); an observer's row adds its lag, read from its metrics endpoint."""
    processes = manifest.processes
    answers = query_statuses(
        {node.id: node.api for node in processes}, deadline_s, manifest.ca_cert
    )
    rows: list[dict[str, Any]] = []
    for node in processes:
        answer = answers[node.id]
        row: dict[str, Any] = {
            "node_id": node.id,
            "role": node.role,
            "api": str(node.api),
            "pid": _running_pid(node.dir, node.config),
            "up": not isinstance(answer, str),
            "height": None,
            "view": None,
            "primary_node_id": None,
            "peers_connected": None,
            "peers_total": None,
            "state_root": None,
            "tip_hash": None,
            "catching_up": None,
            "lag_blocks": None,
            "seconds_since_block": None,
            "error": answer if isinstance(answer, str) else None,
        }
        if not isinstance(answer, str):
            row.update(
                height=answer.height,
                view=answer.view,
                primary_node_id=answer.primary or None,
                peers_connected=sum(1 for peer in answer.peers if peer.connected),
                peers_total=len(answer.peers),
                state_root=answer.state_root.hex(),
                tip_hash=answer.tip_hash.hex(),
                catching_up=answer.catching_up,
            )
            if node.role == "observer":
                lag = observer_lag(node.metrics, deadline_s)
                row.update(lag_blocks=lag.get(LAG_BLOCKS), seconds_since_block=lag.get(LAG_SECONDS))
        rows.append(row)
    return rows


LAG_BLOCKS = "ibledger_observer_lag_blocks"
LAG_SECONDS = "ibledger_observer_seconds_since_block"


def observer_lag(address: HostPort, timeout_s: float) -> dict[str, float]:
    """An observer's lag gauges, from its metrics endpoint (empty when it does not answer)."""
    url = f"http://{address.host}:{address.port}/metrics"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as response:
            text = response.read(4 * 1024 * 1024).decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError, ValueError):
        return {}
    found: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in (LAG_BLOCKS, LAG_SECONDS):
            with contextlib.suppress(ValueError):
                found[name] = float(value)
    return found


def quorum_size(validators: int) -> int:
    """Validators that must be up for blocks to commit: n - f, with f = (n - 1) // 3."""
    return validators - (validators - 1) // 3


def _lag_text(row: dict[str, Any]) -> str:
    if row["role"] != "observer" or not row["up"]:
        return "-"
    blocks, seconds = row["lag_blocks"], row["seconds_since_block"]
    if blocks is None or seconds is None:
        return "?"
    return f"{int(blocks)} blk / {seconds:.1f} s"


def network_status(options: argparse.Namespace) -> int:
    manifest = _manifest(_network_dir(options))
    rows = node_statuses(manifest)
    validators = [row for row in rows if row["role"] == "validator"]
    down = [row["node_id"] for row in validators if not row["up"]]
    observers_down = [
        row["node_id"] for row in rows if row["role"] != "validator" and not row["up"]
    ]
    up = len(validators) - len(down)
    needed = quorum_size(len(validators))
    problem: CommandError | None = None
    if up < needed:
        problem = CommandError(
            "QUORUM_LOST",
            f"quorum lost: {up} of {len(validators)} validators are up and {needed} are needed "
            f"to commit blocks; down: {', '.join(down)}",
        )
    elif down or observers_down:
        everything_down = down + observers_down
        quorum = f"the quorum of {needed} still holds"
        observers = f" (observers: {', '.join(observers_down)})" if observers_down else ""
        problem = CommandError(
            "NODES_DOWN",
            f"{len(everything_down)} of {len(rows)} node(s) down ({', '.join(everything_down)})"
            f"; {quorum}{observers if down else ''}"
            if down
            else f"{len(observers_down)} of {len(rows)} node(s) down "
            f"({', '.join(observers_down)}); observers only: {quorum}",
        )
    if options.json:
        emit(options, {"dir": str(manifest.directory), "nodes": rows}, "")
        if problem is not None:
            raise problem
        return 0
    table_rows = []
    for row in rows:
        up = row["up"]
        table_rows.append(
            [
                row["node_id"],
                row["role"],
                "up" if up else "down",
                row["pid"] if row["pid"] is not None else "-",
                row["height"] if up else "-",
                row["view"] if up else "-",
                (row["primary_node_id"] or "-") if up else "-",
                f"{row['peers_connected']}/{row['peers_total']}" if up else "-",
                (row["state_root"][:16] or "-") if up else "-",
                _lag_text(row),
            ]
        )
    headers = [
        "node", "role", "state", "pid", "height", "view", "primary", "peers", "state root", "lag"
    ]  # fmt: skip
    print(_table(headers, table_rows))
    if problem is not None:
        raise problem
    return 0


# --- logs ----------------------------------------------------------------------------------------


class _Follower:
    """Reads new lines of one log file, reopening it when it is rotated or truncated."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Any = None
        self._inode: int | None = None
        self._partial = b""

    def _open(self, at_end: bool) -> None:
        try:
            handle = self.path.open("rb")
        except OSError:
            return
        if self._handle is not None:
            self._handle.close()
        self._handle = handle
        self._inode = os.fstat(handle.fileno()).st_ino
        if at_end:
            handle.seek(0, os.SEEK_END)

    def start(self) -> None:
        self._open(at_end=True)

    def lines(self) -> list[str]:
        if self._handle is None:
            self._open(at_end=False)
            if self._handle is None:
                return []
        chunk = self._handle.read()
        try:
            current = os.stat(self.path)
        except OSError:
            current = None
        if current is not None and (
            current.st_ino != self._inode or current.st_size < self._handle.tell()
        ):
            chunk += self._handle.read()  # what was written before the rotation
            self._open(at_end=False)
            chunk += self._handle.read()
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        return [line.decode("utf-8", errors="replace") for line in complete]


def network_logs(options: argparse.Namespace) -> int:
    manifest = _manifest(_network_dir(options))
    nodes = list(manifest.processes)
    if options.node is not None:
        nodes = [node for node in nodes if node.id == options.node]
        if not nodes:
            known = ", ".join(node.id for node in manifest.processes)
            raise CommandError("UNKNOWN_NODE", f"no node {options.node!r} (nodes: {known})")
    if options.lines < 0:
        raise CommandError("BAD_ARGUMENT", "--lines must be 0 or more")
    prefix = len(nodes) > 1
    width = max(len(node.id) for node in nodes)

    def show(node_id: str, line: str) -> None:
        print(f"{node_id.ljust(width)} | {line}" if prefix else line, flush=options.follow)

    followers = []
    for node in nodes:
        path = node.dir / NODE_LOG
        lines = _read_end(path, 1024 * 1024).splitlines() if options.lines else []
        for line in lines[-options.lines :] if options.lines else []:
            show(node.id, line)
        follower = _Follower(path)
        follower.start()
        followers.append((node.id, follower))
    if not options.follow:
        return 0
    try:
        while True:
            for node_id, follower in followers:
                for line in follower.lines():
                    show(node_id, line)
            time.sleep(FOLLOW_INTERVAL_S)
    except KeyboardInterrupt:
        return 0


# --- formatting ----------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[["-" if v is None else str(v) for v in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(value.ljust(widths[i]) for i, value in enumerate(row)).rstrip() for row in cells
    ]
    return "\n".join(lines)
