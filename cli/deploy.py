"""``network init --hosts`` and ``--docker``: a network laid out for real machines.

Without these options ``network init`` writes a network for one machine (every node on
127.0.0.1, on free ports it picks). With them it places one validator per host:

``--hosts HOST[:BASE_PORT],...``
    One validator per listed host, ``node0`` on the first, ``node1`` on the second, ... Each
    host is a host name, an IPv4 address or a bracketed IPv6 address (``[2001:db8::7]:7050``).
    Every node takes three fixed ports from its base port (default ``7050``)::

        peer     BASE       validators dial each other here (mutual TLS)
        API      BASE + 1   clients (TLS, the node's certificate from the consortium CA)
        metrics  BASE + 2   Prometheus /metrics, /healthz and /readyz (plain HTTP)

    The genesis, the manifest and each node's certificate (subject alternative names) carry
    the host as given; each node listens on ``--listen`` (default ``0.0.0.0``: every
    interface), so it is reached by the name it advertises whatever address the host has.
    Two nodes may share a host only on port ranges that do not overlap.

``--docker``
    ``--nodes N`` validators in containers, named ``node0`` ... as their services: the host of
    each node is its service name (compose) or its headless Service (Kubernetes), every node
    on the base ports above inside its own container. ``compose.yaml`` and ``k8s/`` are
    written into the network directory (``cli.deploy_containers``).

Either way ``bundles/<node-id>/`` holds what that one node's machine needs and nothing more:
its ``node.toml`` (paths relative to it), its validator key and TLS certificate and key, the
CA certificate (not its key), the genesis, and a ``README.txt`` saying what to copy where,
which ports to open, and how to start and check the node. No bundle holds another node's
private key, the CA key or a participant's key.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ibledger.node.addresses import HostPort, parse_host_port
from ibledger.node.config import ConfigError, format_toml, load_node_config

from .output import CommandError

__all__ = [
    "BASE_PORT_DEFAULT",
    "BUNDLES_DIR",
    "DEPLOY_ENTRIES",
    "LISTEN_DEFAULT",
    "Deployment",
    "HostSpec",
    "Placement",
    "add_init_options",
    "bundle_files",
    "deployment_from_options",
    "parse_hosts",
    "write_deployment",
]

BASE_PORT_DEFAULT = 7050
PEER_OFFSET, API_OFFSET, METRICS_OFFSET = 0, 1, 2
PORTS_PER_NODE = 3
LISTEN_DEFAULT = "0.0.0.0"
IMAGE_DEFAULT = "ibledger:local"
BUNDLES_DIR = "bundles"
COMPOSE_FILE = "compose.yaml"
K8S_DIR = "k8s"
MONITORING_DIR = "monitoring"
# What ``network init --force`` replaces and a failed init removes, besides the local network.
DEPLOY_ENTRIES = (BUNDLES_DIR, COMPOSE_FILE, K8S_DIR, MONITORING_DIR)

# A node's files inside its bundle, relative to the bundle's node.toml.
BUNDLE_CONFIG = "node.toml"
BUNDLE_GENESIS = "genesis.json"
BUNDLE_CA_CERT = "ca.crt"
BUNDLE_VALIDATOR_KEY = "keys/validator.key.pem"
BUNDLE_TLS_CERT = "tls/node.crt"
BUNDLE_TLS_KEY = "tls/node.key"
BUNDLE_README = "README.txt"
BUNDLE_PRIVATE = (BUNDLE_VALIDATOR_KEY, BUNDLE_TLS_KEY)
# In a container the node's files are at CONFIG_DIR, its ledger on a volume at DATA_DIR.
CONTAINER_CONFIG_DIR = "/etc/ibledger"
CONTAINER_DATA_DIR = "/var/lib/ibledger"


class HostsError(ValueError):
    """A ``--hosts`` value that cannot be used; the text says which entry and why."""


@dataclass(frozen=True, slots=True)
class HostSpec:
    """One ``--hosts`` entry: where a validator runs and the first of its three ports."""

    host: str
    base_port: int

    @property
    def text(self) -> str:
        return str(HostPort(self.host, self.base_port))


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one validator runs: the host it is known by, its ports, what it binds."""

    node_id: str
    host: str
    base_port: int
    listen_host: str

    def _advertised(self, offset: int) -> HostPort:
        return HostPort(self.host, self.base_port + offset)

    @property
    def peer(self) -> HostPort:
        return self._advertised(PEER_OFFSET)

    @property
    def api(self) -> HostPort:
        return self._advertised(API_OFFSET)

    @property
    def metrics(self) -> HostPort:
        return self._advertised(METRICS_OFFSET)


@dataclass(frozen=True, slots=True)
class Deployment:
    kind: Literal["hosts", "docker"]
    placements: tuple[Placement, ...]
    image: str = IMAGE_DEFAULT

    @property
    def count(self) -> int:
        return len(self.placements)


# --- options -------------------------------------------------------------------------------------


def add_init_options(init: argparse.ArgumentParser) -> None:
    init.add_argument(
        "--hosts",
        metavar="HOST[:PORT],...",
        help="one validator per host (host name, IPv4 or [IPv6]), each on three fixed ports "
        f"from PORT (default {BASE_PORT_DEFAULT}): peer PORT, API PORT+1, metrics PORT+2; "
        "writes bundles/<node>/ for each host",
    )
    init.add_argument(
        "--listen",
        metavar="ADDRESS",
        help=f"the IP address every node binds with --hosts (default {LISTEN_DEFAULT}, every "
        "interface; :: for a node on an IPv6 address)",
    )
    init.add_argument(
        "--docker",
        action="store_true",
        help="validators as containers: writes compose.yaml (one service per node, named "
        "volumes, /readyz healthchecks, Prometheus and Grafana) and k8s/ (a StatefulSet, "
        "Secret and headless Service per node) beside the bundles",
    )
    init.add_argument(
        "--image",
        help=f"the node image compose.yaml and k8s/ run (with --docker; default {IMAGE_DEFAULT})",
    )


def deployment_from_options(
    options: argparse.Namespace, nodes_default: int, nodes_max: int
) -> Deployment | None:
    """The placement ``--hosts`` or ``--docker`` asks for; None for a local network."""
    hosts: str | None = options.hosts
    docker: bool = options.docker
    nodes: int | None = options.nodes
    if hosts is None and not docker:
        for flag, value in (("--listen", options.listen), ("--image", options.image)):
            if value is not None:
                raise CommandError("BAD_ARGUMENT", f"{flag} needs --hosts or --docker")
        return None
    if hosts is not None and docker:
        raise CommandError(
            "BAD_ARGUMENT",
            "--hosts and --docker exclude each other: with --docker the hosts are the "
            "containers' service names",
        )
    if hosts is not None:
        if options.image is not None:
            raise CommandError("BAD_ARGUMENT", "--image needs --docker")
        try:
            specs = parse_hosts(hosts, nodes_max)
            listen = parse_listen(options.listen)
        except HostsError as exc:
            raise CommandError("BAD_ARGUMENT", str(exc)) from None
        if nodes is not None and nodes != len(specs):
            raise CommandError(
                "BAD_ARGUMENT",
                f"--nodes {nodes} disagrees with --hosts, which lists {len(specs)} host(s); "
                "with --hosts, leave out --nodes (one validator per host)",
            )
        placements = tuple(
            Placement(f"node{index}", spec.host, spec.base_port, listen or _listen_for(spec.host))
            for index, spec in enumerate(specs)
        )
        return Deployment("hosts", placements)
    if options.listen is not None:
        raise CommandError("BAD_ARGUMENT", "--listen needs --hosts (containers bind 0.0.0.0)")
    if options.encrypt:
        raise CommandError(
            "BAD_ARGUMENT",
            "--docker writes plaintext keys into Secrets and volumes: leave out --encrypt "
            "(protect them with the cluster's secret encryption and volume permissions)",
        )
    count = nodes_default if nodes is None else nodes
    if not 1 <= count <= nodes_max:
        raise CommandError("BAD_ARGUMENT", f"--nodes must be from 1 to {nodes_max}, got {count}")
    image: str = options.image or IMAGE_DEFAULT
    if not image.strip() or any(ch.isspace() for ch in image):
        raise CommandError("BAD_ARGUMENT", f"--image must be an image reference, got {image!r}")
    placements = tuple(
        Placement(f"node{index}", f"node{index}", BASE_PORT_DEFAULT, LISTEN_DEFAULT)
        for index in range(count)
    )
    return Deployment("docker", placements, image)


def _listen_for(host: str) -> str:
    """Every interface of the family peers dial the host by: IPv6 for an IPv6 address."""
    return "::" if ":" in host else LISTEN_DEFAULT


def parse_listen(text: str | None) -> str | None:
    """``--listen``: an IP address to bind (a name would bind whatever it resolves to)."""
    if text is None:
        return None
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        raise HostsError(f"--listen: {text!r} is not an IP address (e.g. 0.0.0.0, ::)") from None


def parse_hosts(text: str, nodes_max: int = 64) -> list[HostSpec]:
    """Parse ``HOST[:BASE_PORT],...``; raise HostsError naming the entry and the reason."""
    entries = [entry.strip() for entry in text.split(",")]
    if entries == [""]:
        raise HostsError("--hosts: no host given (e.g. --hosts bank-a.example:7050,10.0.0.2)")
    if len(entries) > nodes_max:
        raise HostsError(f"--hosts: at most {nodes_max} hosts, got {len(entries)}")
    specs = [_parse_entry(entry, number) for number, entry in enumerate(entries, start=1)]
    taken: dict[str, list[HostSpec]] = {}
    for spec in specs:
        key = spec.host.lower()
        for other in taken.get(key, []):
            if abs(other.base_port - spec.base_port) < PORTS_PER_NODE:
                raise HostsError(
                    f"--hosts: {other.text} and {spec.text} share ports (each node takes "
                    f"{PORTS_PER_NODE} ports from its base: peer, API, metrics); give nodes "
                    f"on one host base ports at least {PORTS_PER_NODE} apart"
                )
        taken.setdefault(key, []).append(spec)
    return specs


def _parse_entry(entry: str, number: int) -> HostSpec:
    where = f"--hosts entry {number}"
    if not entry:
        raise HostsError(f"{where} is empty (hosts are separated by single commas)")
    if entry.count(":") > 1 and not entry.startswith("["):
        raise HostsError(f"{where}: write an IPv6 address in brackets: [{entry}] or [ADDR]:PORT")
    bracketed_only = entry.startswith("[") and entry.endswith("]")
    has_port = not bracketed_only and ":" in entry
    text = entry if has_port else f"{entry}:{BASE_PORT_DEFAULT}"
    if has_port and not entry.rpartition(":")[2].isdigit():
        raise HostsError(f"{where}: the port in {entry!r} must be a number")
    try:
        address = parse_host_port(text)
    except ValueError as exc:
        raise HostsError(f"{where}: {exc}") from None
    top = 65535 - (PORTS_PER_NODE - 1)
    if address.port > top:
        raise HostsError(
            f"{where}: base port {address.port} leaves no room for its {PORTS_PER_NODE} ports "
            f"(at most {top})"
        )
    if address.host in ("0.0.0.0", "::"):
        raise HostsError(
            f"{where}: {address.host} is a listen-everywhere address, not one peers can dial; "
            "give the host's name or address (nodes listen on --listen)"
        )
    return HostSpec(address.host, address.port)


# --- bundles -------------------------------------------------------------------------------------


def bundle_files(node_id: str) -> dict[str, str]:
    """``{path in the bundle: path in the network directory}`` for everything copied."""
    node = f"nodes/{node_id}"
    return {
        BUNDLE_GENESIS: "genesis.json",
        BUNDLE_CA_CERT: "ca/ca.crt",
        BUNDLE_VALIDATOR_KEY: f"{node}/keys/validator.key.pem",
        BUNDLE_TLS_CERT: f"{node}/tls/node.crt",
        BUNDLE_TLS_KEY: f"{node}/tls/node.key",
    }


def _bundle_toml(source: Path, *, container: bool) -> str:
    """The node's node.toml with its paths inside the bundle (or the container's volumes)."""
    with source.open("rb") as handle:
        document: dict[str, dict[str, Any]] = tomllib.load(handle)
    document["node"]["genesis_file"] = BUNDLE_GENESIS
    document["node"]["validator_key"] = BUNDLE_VALIDATOR_KEY
    document["peer"]["tls_cert"] = BUNDLE_TLS_CERT
    document["peer"]["tls_key"] = BUNDLE_TLS_KEY
    document["peer"]["ca_cert"] = BUNDLE_CA_CERT
    if container:
        # The ledger on the node's volume; the log on standard error, where the container
        # runtime collects it (docker logs, kubectl logs).
        document["node"]["data_dir"] = CONTAINER_DATA_DIR
        document.get("log", {}).pop("file", None)
    return format_toml(document)


def _copy_file(source: Path, target: Path, private: bool) -> None:
    mode = 0o600 if private else 0o644
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(source.read_bytes())


def write_bundles(
    directory: Path, deployment: Deployment, passphrase: bytes | None, chain_id: str
) -> list[str]:
    """``bundles/<node-id>/`` per node, each checked by loading it as the node will."""
    root = directory / BUNDLES_DIR
    root.mkdir(mode=0o700)
    container = deployment.kind == "docker"
    written = []
    for placement in deployment.placements:
        bundle = root / placement.node_id
        bundle.mkdir(mode=0o700)
        for sub in ("keys", "tls"):
            (bundle / sub).mkdir(mode=0o700)
        for inside, source in bundle_files(placement.node_id).items():
            _copy_file(directory / source, bundle / inside, inside in BUNDLE_PRIVATE)
        toml = _bundle_toml(
            directory / "nodes" / placement.node_id / "node.toml", container=container
        )
        _write_new_text(bundle / BUNDLE_CONFIG, toml)
        if not container:
            (bundle / "data").mkdir(mode=0o700)
        readme = (
            _container_readme(placement, deployment, chain_id)
            if container
            else _host_readme(placement, deployment, chain_id, passphrase is not None)
        )
        _write_new_text(bundle / BUNDLE_README, readme)
        try:
            load_node_config(bundle / BUNDLE_CONFIG, passphrase=passphrase)
        except ConfigError as exc:
            raise CommandError("CONFIG_INVALID", f"the bundle does not load: {exc}") from None
        written.append(f"{BUNDLES_DIR}/{placement.node_id}")
    return written


def _write_new_text(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _ports_table(placement: Placement) -> str:
    return (
        f"     {placement.peer.port:<6} peer     from the other validators (mutual TLS)\n"
        f"     {placement.api.port:<6} API      from clients (TLS)\n"
        f"     {placement.metrics.port:<6} metrics  from monitoring: /metrics, /healthz, /readyz "
        "(plain HTTP)\n"
    )


def _peers(placement: Placement, deployment: Deployment) -> str:
    others = [p for p in deployment.placements if p.node_id != placement.node_id]
    if not others:
        return "     (none: a single-validator network)\n"
    return "".join(f"     {p.node_id:<8} {p.peer}\n" for p in others)


def _host_readme(
    placement: Placement, deployment: Deployment, chain_id: str, encrypted: bool
) -> str:
    node, host, metrics = placement.node_id, placement.host, placement.metrics
    passphrase = (
        "\nThe keys are encrypted: give the passphrase with --passphrase-file FILE (mode 0600),\n"
        "$IBLEDGER_PASSPHRASE, or [keys] passphrase_file in node.toml.\n"
        if encrypted
        else ""
    )
    return f"""ibledger validator {node} of chain {chain_id}, for the host {host}

This directory holds everything {node} needs and nothing of another node: its node.toml,
its validator key (keys/validator.key.pem) and TLS certificate and key (tls/), the
consortium CA certificate (ca.crt, not the CA key) and the genesis (genesis.json, the same
file byte for byte on every validator). The private keys are readable by their owner only:
keep it that way (the node refuses a key file its group or other users can read).

1. Copy this directory to {host}, keeping the file modes, for example:
     scp -rp {BUNDLES_DIR}/{node} {_ssh_host(host)}:{node}
   and install ibledger there (Python 3.11: pip install from the source tree).

2. Open these TCP ports on {host} (the node listens on {placement.listen_host}):
{_ports_table(placement)}
   The other validators it dials (from genesis.json):
{_peers(placement, deployment)}
3. Start the node from this directory, under a service manager (systemd, ...) to keep it
   running; it logs JSON lines to node.log here and keeps its ledger in data/:
     cd {node} && ibledger node start --config node.toml
{passphrase}
4. Check it:
     curl -fsS http://{metrics}/healthz
   answers 200 while the process runs and its data directory takes a synced write, and
     curl -fsS http://{metrics}/readyz
   answers 200 once every listener is bound, it is not catching up and a quorum of
   validators reach it; until enough validators run it answers 503 with the reason.
   Start them all.
   Prometheus scrapes http://{metrics}/metrics.
"""


def _ssh_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _container_readme(placement: Placement, deployment: Deployment, chain_id: str) -> str:
    node = placement.node_id
    return f"""ibledger validator {node} of chain {chain_id}, as a container

This directory holds everything {node} needs and nothing of another node: its node.toml,
its validator key and TLS certificate and key, the CA certificate (not the CA key) and the
genesis. compose.yaml mounts it read-only at /bundle in the service {node}-init, which copies
it to the volume {node}-config ({CONTAINER_CONFIG_DIR}, owned by the node's user, keys 0600);
the service {node} then runs
     ibledger node start --config {CONTAINER_CONFIG_DIR}/{BUNDLE_CONFIG}
with its ledger on the volume {node}-data ({CONTAINER_DATA_DIR}) and its log on standard error.
k8s/{node}.yaml carries the same files as a ConfigMap and a Secret.

Ports inside the container (the node listens on {placement.listen_host}):
{_ports_table(placement)}
Peers reach it as {placement.peer} (its service name); the other validators:
{_peers(placement, deployment)}
Health: http://127.0.0.1:{placement.metrics.port}/healthz (liveness) and /readyz (readiness)
inside the container; compose's healthcheck and the Kubernetes probes ask them.
"""


def remove_entries(directory: Path) -> None:
    """Remove whatever a deployment wrote (a failed init leaves nothing half-written)."""
    for name in DEPLOY_ENTRIES:
        target = directory / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)
        elif target.exists() or target.is_symlink():
            target.unlink()


def write_deployment(
    directory: Path,
    deployment: Deployment,
    passphrase: bytes | None,
    chain_id: str,
) -> dict[str, Any]:
    """Everything beyond the local network: bundles, and for ``--docker`` the container files.
    Returns what init reports about them."""
    summary: dict[str, Any] = {
        "deployment": deployment.kind,
        "bundles": write_bundles(directory, deployment, passphrase, chain_id),
    }
    if deployment.kind == "docker":
        from .deploy_containers import write_container_files

        summary |= write_container_files(directory, deployment)
    return summary


def summary_lines(summary: dict[str, Any], directory: Path) -> list[str]:
    """What init prints about the deployment files and how to start the network."""
    bundles = ", ".join(f"{b}/" for b in summary["bundles"])
    if summary["deployment"] == "hosts":
        return [
            f"bundles: {bundles} (one per host)",
            "start it: copy each bundle to its host and start the node there, as its "
            "README.txt says; when every host is this machine: "
            f"ibledger network up --dir {directory}",
        ]
    lines = [
        f"bundles: {bundles} (one per container)",
        f"start it with: docker compose -f {directory / COMPOSE_FILE} up -d "
        f"(or: kubectl apply -n NAMESPACE -f {directory / K8S_DIR})",
    ]
    if not summary["monitoring"]:
        lines.append(
            "no docker/prometheus.yml or docker/grafana/ beside this installation: "
            "compose.yaml runs the nodes without Prometheus and Grafana"
        )
    return lines


def placements_for(deployment: Deployment | None) -> Sequence[Placement] | None:
    return None if deployment is None else deployment.placements
