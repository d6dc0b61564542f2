"""The container files of ``network init --docker``: ``compose.yaml`` and ``k8s/``.

Both run the bundles of ``cli.deploy`` (``bundles/<node-id>/``), one validator per container,
every node on the same ports inside its own network namespace (peer 7050, API 7051, metrics
7052) and known to its peers by its name: the compose service ``node0``, or the Kubernetes
headless Service ``node0`` (which resolves to the pod in the same namespace).

Keys reach the node owner-only, as the node demands (it refuses a key file its group or
others can read): an init step running as root copies the bundle from a read-only mount
(compose: the bundle directory; Kubernetes: a projected volume of the node's ConfigMap and
Secret) into the node's own volume, owned by the image's user (uid 10001, docker/Dockerfile)
with the private keys at 0600, and hands it the data volume. The node itself never runs as
root.

compose.yaml (no host networking; the services share compose's default network):
  ``nodeN-init`` then ``nodeN``, with the named volumes ``nodeN-config`` and ``nodeN-data``, a
  healthcheck on ``/readyz``, the API and metrics ports published on the host's loopback at
  ``BASE + 10 * N + offset`` (node0 7051/7052, node1 7061/7062, ...) -- ``network.json`` names
  those, so client commands on the host reach the containers -- and, when this installation
  has docker/prometheus.yml and docker/grafana/, Prometheus (127.0.0.1:9090, scraping every
  node by service name from prometheus-targets.json) and Grafana (127.0.0.1:3000) with the
  dashboard, from copies in ``monitoring/``.

k8s/ (apply with ``kubectl apply -n NAMESPACE -f k8s/``):
  ``genesis.yaml``: the ConfigMap ``ibledger-genesis`` (genesis.json, ca.crt) every node mounts;
  ``nodeN.yaml``: the node's ConfigMap (node.toml, its certificate), Secret (its validator and
  TLS keys; this file is 0600), headless Service (publishing not-ready addresses, since a node
  is ready only once a quorum of its peers reach it) and a one-pod StatefulSet -- one per
  validator, because each pod mounts only its own Secret -- with a PersistentVolumeClaim for
  the ledger, a liveness probe on ``/healthz`` and a readiness probe on ``/readyz``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from . import yaml_text
from .deploy import (
    API_OFFSET,
    BASE_PORT_DEFAULT,
    BUNDLE_CA_CERT,
    BUNDLE_CONFIG,
    BUNDLE_GENESIS,
    BUNDLE_PRIVATE,
    BUNDLE_TLS_CERT,
    BUNDLES_DIR,
    COMPOSE_FILE,
    CONTAINER_CONFIG_DIR,
    CONTAINER_DATA_DIR,
    K8S_DIR,
    METRICS_OFFSET,
    MONITORING_DIR,
    Deployment,
    Placement,
)
from .output import CommandError

__all__ = [
    "CONTAINER_UID",
    "GENESIS_CONFIGMAP",
    "PUBLISHED_PORT_STEP",
    "bundle_install_script",
    "monitoring_sources",
    "published_port",
    "write_container_files",
]

CONTAINER_UID = 10001  # docker/Dockerfile's user
PUBLISHED_PORT_STEP = 10
BUNDLE_MOUNT = "/bundle"
GENESIS_CONFIGMAP = "ibledger-genesis"
APP_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
APP = "ibledger"
STORAGE_REQUEST = "10Gi"
PROMETHEUS_TARGETS = "prometheus-targets.json"  # as cli.network writes it
# The files the monitoring services mount, as this repository's docker/ directory has them.
MONITORING_FILES = (
    "prometheus.yml",
    "grafana/provisioning/datasources/prometheus.yaml",
    "grafana/provisioning/dashboards/ibledger.yaml",
    "grafana/dashboards/ibledger.json",
)
DATASOURCE_FILE = "grafana/provisioning/datasources/prometheus.yaml"
PROMETHEUS_URL = "http://prometheus:9090"  # Grafana reaches Prometheus by its service name


def published_port(index: int, offset: int) -> int:
    """The host loopback port compose publishes a node's container port on."""
    return BASE_PORT_DEFAULT + PUBLISHED_PORT_STEP * index + offset


def bundle_install_script() -> str:
    """The init step: the bundle into the node's config volume, owner-only, as the node's user."""
    uid = CONTAINER_UID
    target = CONTAINER_CONFIG_DIR
    lines = [
        "set -eu",
        f"install -d -o {uid} -m 0700 {target} {target}/keys {target}/tls",
    ]
    for inside in (BUNDLE_CONFIG, BUNDLE_GENESIS, BUNDLE_CA_CERT, BUNDLE_TLS_CERT, *BUNDLE_PRIVATE):
        mode = "0600" if inside in BUNDLE_PRIVATE else "0644"
        # install reads through symlinks (Kubernetes volumes are made of them) and writes a file.
        lines.append(f"install -o {uid} -m {mode} {BUNDLE_MOUNT}/{inside} {target}/{inside}")
    lines.append(f"chown {uid} {CONTAINER_DATA_DIR} && chmod 0700 {CONTAINER_DATA_DIR}")
    return "\n".join(lines) + "\n"


def _readyz_probe(placement: Placement) -> list[str]:
    url = f"http://127.0.0.1:{placement.metrics.port}/readyz"
    return [
        "CMD",
        "python",
        "-c",
        f"import urllib.request; urllib.request.urlopen({url!r}, timeout=3)",
    ]


# --- monitoring ----------------------------------------------------------------------------------


def monitoring_sources() -> Path | None:
    """This installation's docker/ directory when it has every monitoring file (a source
    checkout does; an installed wheel does not)."""
    docker = Path(__file__).resolve().parents[1] / "docker"
    if all((docker / name).is_file() for name in MONITORING_FILES):
        return docker
    return None


def _images(docker: Path) -> dict[str, str]:
    """The Prometheus and Grafana images docker/compose.yaml runs: one version in one place."""
    text = (docker / "compose.yaml").read_text(encoding="utf-8")
    images = {}
    for service, name in (("prometheus", "prom/prometheus"), ("grafana", "grafana/grafana")):
        found = re.search(rf"^\s+image:\s*({re.escape(name)}:\S+)\s*$", text, flags=re.MULTILINE)
        if found is None:
            raise CommandError("DOCKER_FILES", f"{docker / 'compose.yaml'} names no {name} image")
        images[service] = found.group(1)
    return images


def _copy_monitoring(docker: Path, target: Path) -> None:
    for name in MONITORING_FILES:
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        if name == DATASOURCE_FILE:
            text = (docker / name).read_text(encoding="utf-8")
            text, changed = re.subn(r"(?m)^(\s+url:\s*)\S+\s*$", rf"\g<1>{PROMETHEUS_URL}", text)
            if changed != 1:
                raise CommandError("DOCKER_FILES", f"{docker / name} must name one url")
            destination.write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(docker / name, destination)


def _monitoring_services(deployment: Deployment, images: dict[str, str]) -> dict[str, Any]:
    nodes = [placement.node_id for placement in deployment.placements]
    return {
        "prometheus": {
            "image": images["prometheus"],
            "restart": "unless-stopped",
            "command": ["--config.file=/etc/prometheus/prometheus.yml"],
            "ports": ["127.0.0.1:9090:9090"],
            "volumes": [
                f"./{MONITORING_DIR}/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
                f"./{PROMETHEUS_TARGETS}:/network/{PROMETHEUS_TARGETS}:ro",
                "prometheus-data:/prometheus",
            ],
            "depends_on": nodes,
        },
        "grafana": {
            "image": images["grafana"],
            "restart": "unless-stopped",
            "environment": {
                "GF_AUTH_ANONYMOUS_ENABLED": "true",
                "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
            },
            "ports": ["127.0.0.1:3000:3000"],
            "volumes": [
                f"./{MONITORING_DIR}/grafana/provisioning:/etc/grafana/provisioning:ro",
                f"./{MONITORING_DIR}/grafana/dashboards:/var/lib/grafana/dashboards:ro",
                "grafana-data:/var/lib/grafana",
            ],
            "depends_on": ["prometheus"],
        },
    }


# --- compose -------------------------------------------------------------------------------------


def compose_document(deployment: Deployment, images: dict[str, str] | None) -> dict[str, Any]:
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    for index, placement in enumerate(deployment.placements):
        node = placement.node_id
        config, data = f"{node}-config", f"{node}-data"
        services[f"{node}-init"] = {
            "image": deployment.image,
            "user": "0",
            "entrypoint": ["sh", "-c", bundle_install_script()],
            "volumes": [
                f"./{BUNDLES_DIR}/{node}:{BUNDLE_MOUNT}:ro",
                f"{config}:{CONTAINER_CONFIG_DIR}",
                f"{data}:{CONTAINER_DATA_DIR}",
            ],
            "restart": "no",
        }
        services[node] = {
            "image": deployment.image,
            "hostname": node,
            "command": ["node", "start", "--config", f"{CONTAINER_CONFIG_DIR}/{BUNDLE_CONFIG}"],
            "working_dir": CONTAINER_CONFIG_DIR,
            "restart": "unless-stopped",
            "stop_signal": "SIGTERM",
            "stop_grace_period": "15s",
            "volumes": [f"{config}:{CONTAINER_CONFIG_DIR}:ro", f"{data}:{CONTAINER_DATA_DIR}"],
            "ports": [
                f"127.0.0.1:{published_port(index, offset)}:{port}"
                for offset, port in (
                    (API_OFFSET, placement.api.port),
                    (METRICS_OFFSET, placement.metrics.port),
                )
            ],
            "depends_on": {f"{node}-init": {"condition": "service_completed_successfully"}},
            "healthcheck": {
                "test": _readyz_probe(placement),
                "interval": "10s",
                "timeout": "5s",
                "retries": 3,
                "start_period": "30s",
            },
        }
        volumes[config] = {}
        volumes[data] = {}
    if images is not None:
        services |= _monitoring_services(deployment, images)
        volumes |= {"prometheus-data": {}, "grafana-data": {}}
    return {"name": APP, "services": services, "volumes": volumes}


COMPOSE_COMMENT = """\
{count} ibledger validators in containers, from `ibledger network init --docker`.

  docker build -f docker/Dockerfile -t {image} .     (from the source tree)
  docker compose -f compose.yaml up -d
  ibledger network status --dir .                    (network.json names the published ports)

Each node runs from its bundle (bundles/<node>/, copied owner-only into its volume by its
init service), reaches its peers by service name, and is healthy once /readyz answers 200.
Written by network init; edit it freely, the node configs it runs are in bundles/."""


def _publish_in_manifest(directory: Path, deployment: Deployment) -> None:
    """Point network.json at the ports compose publishes on the host, so that client commands
    on the host reach the containers (they verify each node's certificate by node id, not by
    address). Genesis and prometheus-targets.json keep the in-network names."""
    path = directory / "network.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if len(manifest["nodes"]) != deployment.count:
        raise CommandError("CONFIG_INVALID", f"{path} does not list {deployment.count} nodes")
    for index, node in enumerate(manifest["nodes"]):
        node["api"] = f"127.0.0.1:{published_port(index, API_OFFSET)}"
        node["metrics"] = f"127.0.0.1:{published_port(index, METRICS_OFFSET)}"
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# --- kubernetes ----------------------------------------------------------------------------------


def _labels(node: str | None = None) -> dict[str, str]:
    labels = {APP_LABEL: APP}
    if node is not None:
        labels[INSTANCE_LABEL] = node
    return labels


def _container_ports(placement: Placement) -> list[dict[str, Any]]:
    return [
        {"name": "peer", "containerPort": placement.peer.port, "protocol": "TCP"},
        {"name": "api", "containerPort": placement.api.port, "protocol": "TCP"},
        {"name": "metrics", "containerPort": placement.metrics.port, "protocol": "TCP"},
    ]


def _genesis_configmap(directory: Path) -> dict[str, Any]:
    bundle = directory / BUNDLES_DIR
    first = sorted(path for path in bundle.iterdir() if path.is_dir())[0]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": GENESIS_CONFIGMAP, "labels": _labels()},
        "data": {
            BUNDLE_GENESIS: (first / BUNDLE_GENESIS).read_text(encoding="utf-8"),
            BUNDLE_CA_CERT: (first / BUNDLE_CA_CERT).read_text(encoding="utf-8"),
        },
    }


def _key_name(inside: str) -> str:
    """A bundle path as a ConfigMap or Secret key (no slashes): its file name."""
    return inside.rpartition("/")[2]


def _node_documents(directory: Path, placement: Placement, image: str) -> list[dict[str, Any]]:
    node = placement.node_id
    bundle = directory / BUNDLES_DIR / node
    config_map, secret = f"{node}-config", f"{node}-keys"
    public = (BUNDLE_CONFIG, BUNDLE_TLS_CERT)
    shared = (BUNDLE_GENESIS, BUNDLE_CA_CERT)

    def items(paths: tuple[str, ...]) -> list[dict[str, str]]:
        return [{"key": _key_name(inside), "path": inside} for inside in paths]

    mounts_init = [
        {"name": "bundle", "mountPath": BUNDLE_MOUNT, "readOnly": True},
        {"name": "config", "mountPath": CONTAINER_CONFIG_DIR},
        {"name": "data", "mountPath": CONTAINER_DATA_DIR},
    ]
    probe_port = "metrics"
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": config_map, "labels": _labels(node)},
            "data": {
                _key_name(inside): (bundle / inside).read_text(encoding="utf-8")
                for inside in public
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret, "labels": _labels(node)},
            "type": "Opaque",
            "data": {
                _key_name(inside): base64.b64encode((bundle / inside).read_bytes()).decode()
                for inside in BUNDLE_PRIVATE
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": node, "labels": _labels(node)},
            "spec": {
                "clusterIP": "None",
                # Readiness needs a quorum of peers: they must resolve each other before it.
                "publishNotReadyAddresses": True,
                "selector": _labels(node),
                "ports": [
                    {"name": p["name"], "port": p["containerPort"], "targetPort": p["name"]}
                    for p in _container_ports(placement)
                ],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": node, "labels": _labels(node)},
            "spec": {
                "serviceName": node,
                "replicas": 1,
                "selector": {"matchLabels": _labels(node)},
                "template": {
                    "metadata": {"labels": _labels(node)},
                    "spec": {
                        "terminationGracePeriodSeconds": 15,
                        "initContainers": [
                            {
                                "name": "install-bundle",
                                "image": image,
                                "command": ["sh", "-c", bundle_install_script()],
                                "securityContext": {"runAsUser": 0, "runAsNonRoot": False},
                                "volumeMounts": mounts_init,
                            }
                        ],
                        "containers": [
                            {
                                "name": "node",
                                "image": image,
                                "args": [
                                    "node",
                                    "start",
                                    "--config",
                                    f"{CONTAINER_CONFIG_DIR}/{BUNDLE_CONFIG}",
                                ],
                                "workingDir": CONTAINER_CONFIG_DIR,
                                "ports": _container_ports(placement),
                                "securityContext": {
                                    "runAsUser": CONTAINER_UID,
                                    "runAsNonRoot": True,
                                    "allowPrivilegeEscalation": False,
                                },
                                "startupProbe": {
                                    "httpGet": {"path": "/healthz", "port": probe_port},
                                    "periodSeconds": 2,
                                    "failureThreshold": 60,
                                },
                                "livenessProbe": {
                                    "httpGet": {"path": "/healthz", "port": probe_port},
                                    "periodSeconds": 10,
                                    "timeoutSeconds": 5,
                                    "failureThreshold": 3,
                                },
                                "readinessProbe": {
                                    "httpGet": {"path": "/readyz", "port": probe_port},
                                    "periodSeconds": 5,
                                    "timeoutSeconds": 3,
                                    "failureThreshold": 3,
                                },
                                "volumeMounts": [
                                    {
                                        "name": "config",
                                        "mountPath": CONTAINER_CONFIG_DIR,
                                        "readOnly": True,
                                    },
                                    {"name": "data", "mountPath": CONTAINER_DATA_DIR},
                                ],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "bundle",
                                "projected": {
                                    "defaultMode": 0o400,
                                    "sources": [
                                        {
                                            "configMap": {
                                                "name": GENESIS_CONFIGMAP,
                                                "items": items(shared),
                                            }
                                        },
                                        {"configMap": {"name": config_map, "items": items(public)}},
                                        {
                                            "secret": {
                                                "name": secret,
                                                "items": items(BUNDLE_PRIVATE),
                                            }
                                        },
                                    ],
                                },
                            },
                            # The owner-only copy the node reads; in memory, never on a disk.
                            {"name": "config", "emptyDir": {"medium": "Memory"}},
                        ],
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data", "labels": _labels(node)},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": STORAGE_REQUEST}},
                        },
                    }
                ],
            },
        },
    ]


def _write_text(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


K8S_COMMENT = """\
ibledger validator {node}: its files (ConfigMap, Secret: this file holds its private keys),
its headless Service (peers dial {peer}) and its one-pod StatefulSet.
  kubectl apply -n NAMESPACE -f k8s/"""


def write_container_files(directory: Path, deployment: Deployment) -> dict[str, Any]:
    docker = monitoring_sources()
    images = None
    if docker is not None:
        images = _images(docker)
        _copy_monitoring(docker, directory / MONITORING_DIR)
    count, image = deployment.count, deployment.image
    compose = yaml_text.dump(
        compose_document(deployment, images),
        COMPOSE_COMMENT.format(count=count, image=image),
    )
    _write_text(directory / COMPOSE_FILE, compose, 0o644)
    _publish_in_manifest(directory, deployment)

    k8s = directory / K8S_DIR
    k8s.mkdir(mode=0o700)
    _write_text(
        k8s / "genesis.yaml",
        yaml_text.dump(
            _genesis_configmap(directory), "The genesis and CA certificate every node mounts."
        ),
        0o644,
    )
    for placement in deployment.placements:
        documents = _node_documents(directory, placement, image)
        comment = K8S_COMMENT.format(node=placement.node_id, peer=placement.peer)
        # Holds the node's private keys (its Secret): owner-only, like the keys themselves.
        _write_text(
            k8s / f"{placement.node_id}.yaml", yaml_text.dump_all(documents, comment), 0o600
        )
    return {
        "compose": COMPOSE_FILE,
        "kubernetes": K8S_DIR,
        "monitoring": MONITORING_DIR if images is not None else None,
    }
