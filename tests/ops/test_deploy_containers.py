"""cli/deploy_containers.py, checked statically (no Docker engine or cluster runs here): the
compose file and Kubernetes manifests ``network init --docker`` writes, read back as YAML, name
every node, port, volume, secret and file path exactly as the generated configs and genesis do."""

from __future__ import annotations

import base64
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from ibledger.cli import deploy, deploy_containers, yaml_text
from ibledger.cli.manifest import load_manifest
from ibledger.node.config import load_genesis

from .conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
NODES = 4
NODE_IDS = [f"node{i}" for i in range(NODES)]


@pytest.fixture(scope="module")
def docker_network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("docker") / "network"
    assert run_cli("network", "init", "--dir", str(directory), "--docker", "--nodes", "4") == 0
    return directory


def _toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def _bundle_config(directory: Path, node_id: str) -> dict[str, Any]:
    return _toml(directory / "bundles" / node_id / "node.toml")


def _port(address: str) -> int:
    return int(address.rpartition(":")[2])


def _files_node_toml_reads(config: dict[str, Any]) -> list[str]:
    return [
        config["node"]["genesis_file"],
        config["node"]["validator_key"],
        config["peer"]["tls_cert"],
        config["peer"]["tls_key"],
        config["peer"]["ca_cert"],
    ]


def test_yaml_round_trips_what_the_files_need() -> None:
    document = {
        "on": "yes",
        "plain": "0400",
        "ports": ["127.0.0.1:7051:7051", 7050],
        "flags": [True, False, None],
        "text": "line one\n  indented: not a key\n\n# not a comment\n",
        "no newline": "a\nb",
        "empty": {},
        "none": [],
        "nested": [{"a": 1, "b": [{"c": "d"}]}, [1, [2]]],
        "odd: key": 'caf\u00e9 \u4e2d\u6587 "quoted" \\ back',
        " leading": " space",
    }
    assert yaml.safe_load(yaml_text.dump(document, "a comment\nover two lines")) == document
    documents = [{"a": 1}, {"b": ["x"]}]
    assert list(yaml.safe_load_all(yaml_text.dump_all(documents, "c"))) == documents


def test_every_node_has_a_container_config_matching_genesis(docker_network: Path) -> None:
    genesis = load_genesis(docker_network / "genesis.json")
    assert list(genesis.validator_ids) == NODE_IDS
    for node_id in NODE_IDS:
        config = _bundle_config(docker_network, node_id)
        entry = genesis.validator(node_id)
        assert entry is not None
        # Peers dial the service name; the node binds every interface on the same ports.
        assert (entry.peer_address.host, entry.api_address.host) == (node_id, node_id)
        assert config["peer"]["listen"] == f"0.0.0.0:{entry.peer_address.port}"
        assert config["api"]["listen"] == f"0.0.0.0:{entry.api_address.port}"
        assert config["node"]["data_dir"] == deploy.CONTAINER_DATA_DIR
        assert "file" not in config["log"]  # standard error, for docker logs / kubectl logs
        for path in _files_node_toml_reads(config):
            assert not Path(path).is_absolute()
            assert (docker_network / "bundles" / node_id / path).is_file()


def test_compose_runs_every_node_from_its_bundle(docker_network: Path) -> None:
    text = (docker_network / "compose.yaml").read_text()
    assert "$" not in text  # compose would interpolate it
    compose = yaml.safe_load(text)
    services = compose["services"]
    assert set(services) == {
        *NODE_IDS,
        *(f"{n}-init" for n in NODE_IDS),
        "prometheus",
        "grafana",
    }
    assert "network_mode" not in text and all("network_mode" not in s for s in services.values())
    manifest = load_manifest(docker_network)
    published: set[str] = set()
    used_volumes: set[str] = set()
    script = deploy_containers.bundle_install_script()
    for index, node_id in enumerate(NODE_IDS):
        config = _bundle_config(docker_network, node_id)
        metrics_port = _port(config["metrics"]["listen"])
        api_port = _port(config["api"]["listen"])
        init, node = services[f"{node_id}-init"], services[node_id]
        assert init["entrypoint"] == ["sh", "-c", script] and init["user"] == "0"
        bundle_mount, config_volume, data_volume = init["volumes"]
        source, target, mode = bundle_mount.split(":")
        assert (docker_network / source).resolve() == docker_network / "bundles" / node_id
        assert (target, mode) == ("/bundle", "ro")
        assert config_volume == f"{node_id}-config:{deploy.CONTAINER_CONFIG_DIR}"
        assert data_volume == f"{node_id}-data:{config['node']['data_dir']}"
        assert node["volumes"] == [f"{config_volume}:ro", data_volume]
        used_volumes |= {f"{node_id}-config", f"{node_id}-data"}
        assert node["command"] == [
            "node", "start", "--config", f"{deploy.CONTAINER_CONFIG_DIR}/node.toml"
        ]  # fmt: skip
        assert node["depends_on"] == {
            f"{node_id}-init": {"condition": "service_completed_successfully"}
        }
        assert node["hostname"] == node_id and node["image"] == init["image"] == "ibledger:local"
        probe = " ".join(node["healthcheck"]["test"])
        assert f"http://127.0.0.1:{metrics_port}/readyz" in probe
        # The API and metrics are published on the host's loopback, where network.json
        # points client commands.
        manifest_node = manifest.nodes[index]
        assert node["ports"] == [
            f"127.0.0.1:{manifest_node.api.port}:{api_port}",
            f"127.0.0.1:{manifest_node.metrics.port}:{metrics_port}",
        ]
        assert manifest_node.api.host == manifest_node.metrics.host == "127.0.0.1"
        published |= {str(manifest_node.api.port), str(manifest_node.metrics.port)}
    assert len(published) == 2 * NODES
    assert used_volumes | {"prometheus-data", "grafana-data"} == set(compose["volumes"])


def test_the_init_script_installs_every_file_the_node_reads_owner_only() -> None:
    script = deploy_containers.bundle_install_script()
    config = deploy.CONTAINER_CONFIG_DIR
    installed = dict(
        (target.removeprefix(config + "/"), mode)
        for mode, source, target in re.findall(r"install -o 10001 -m (\d+) (\S+) (\S+)", script)
        if source.removeprefix("/bundle/") == target.removeprefix(config + "/")
    )
    expected = {"node.toml", *deploy.bundle_files("node0")}
    assert set(installed) == expected
    for name, mode in installed.items():
        assert mode == ("0600" if name in deploy.BUNDLE_PRIVATE else "0644"), name
    assert f"chown 10001 {deploy.CONTAINER_DATA_DIR}" in script
    dockerfile = (ROOT / "docker/Dockerfile").read_text()
    assert f"--uid {deploy_containers.CONTAINER_UID} " in dockerfile  # the image's user


def test_compose_monitoring_reuses_the_repository_files(docker_network: Path) -> None:
    compose = yaml.safe_load((docker_network / "compose.yaml").read_text())
    repository = yaml.safe_load((ROOT / "docker/compose.yaml").read_text())
    for service in ("prometheus", "grafana"):
        assert compose["services"][service]["image"] == repository["services"][service]["image"]
        for volume in compose["services"][service]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (docker_network / source).exists(), volume
    assert set(compose["services"]["prometheus"]["depends_on"]) == set(NODE_IDS)
    prometheus = yaml.safe_load((docker_network / "monitoring/prometheus.yml").read_text())
    [files] = prometheus["scrape_configs"][0]["file_sd_configs"][0]["files"]
    mounted = {
        v.split(":")[1]: v.split(":")[0] for v in compose["services"]["prometheus"]["volumes"]
    }
    assert mounted[files] == "./prometheus-targets.json"
    targets = json.loads((docker_network / "prometheus-targets.json").read_text())
    for node_id, target in zip(NODE_IDS, targets, strict=True):
        port = _port(_bundle_config(docker_network, node_id)["metrics"]["listen"])
        assert target == {"targets": [f"{node_id}:{port}"], "labels": {"node": node_id}}
    datasources = yaml.safe_load(
        (docker_network / "monitoring/grafana/provisioning/datasources/prometheus.yaml").read_text()
    )
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    assert (docker_network / "monitoring/grafana/dashboards/ibledger.json").read_bytes() == (
        ROOT / "docker/grafana/dashboards/ibledger.json"
    ).read_bytes()


def _k8s(directory: Path, name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((directory / "k8s" / name).read_text()))


def test_kubernetes_runs_one_statefulset_per_validator(docker_network: Path) -> None:
    [genesis_map] = _k8s(docker_network, "genesis.yaml")
    assert genesis_map["kind"] == "ConfigMap"
    assert genesis_map["metadata"]["name"] == deploy_containers.GENESIS_CONFIGMAP
    assert genesis_map["data"]["genesis.json"] == (docker_network / "genesis.json").read_text()
    assert genesis_map["data"]["ca.crt"] == (docker_network / "ca/ca.crt").read_text()
    assert sorted(p.name for p in (docker_network / "k8s").iterdir()) == [
        "genesis.yaml",
        *(f"{n}.yaml" for n in NODE_IDS),
    ]
    all_keys = {
        path.read_bytes()
        for path in docker_network.rglob("*")
        if path.is_file() and b"PRIVATE KEY-----" in path.read_bytes()
    }
    for node_id in NODE_IDS:
        bundle = docker_network / "bundles" / node_id
        config = _bundle_config(docker_network, node_id)
        assert (docker_network / "k8s" / f"{node_id}.yaml").stat().st_mode & 0o077 == 0
        config_map, secret, service, stateful_set = _k8s(docker_network, f"{node_id}.yaml")
        kinds = [d["kind"] for d in (config_map, secret, service, stateful_set)]
        assert kinds == ["ConfigMap", "Secret", "Service", "StatefulSet"]

        assert config_map["data"] == {
            "node.toml": (bundle / "node.toml").read_text(),
            "node.crt": (bundle / "tls/node.crt").read_text(),
        }
        decoded = {k: base64.b64decode(v) for k, v in secret["data"].items()}
        assert decoded == {
            "validator.key.pem": (bundle / "keys/validator.key.pem").read_bytes(),
            "node.key": (bundle / "tls/node.key").read_bytes(),
        }
        # Only this node's keys: two of the network's private keys, none of the others.
        assert set(decoded.values()) <= all_keys
        other_text = "".join(
            (docker_network / "k8s" / f"{other}.yaml").read_text()
            for other in NODE_IDS
            if other != node_id
        )
        for key in decoded.values():
            assert base64.b64encode(key).decode() not in other_text

        # The headless Service is the host name genesis gives the node.
        assert service["metadata"]["name"] == node_id
        assert service["spec"]["clusterIP"] == "None"
        assert service["spec"]["publishNotReadyAddresses"] is True
        listen = {
            "peer": _port(config["peer"]["listen"]),
            "api": _port(config["api"]["listen"]),
            "metrics": _port(config["metrics"]["listen"]),
        }
        assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == listen

        spec = stateful_set["spec"]
        assert spec["replicas"] == 1 and spec["serviceName"] == node_id
        pod = spec["template"]
        labels = spec["selector"]["matchLabels"]
        assert labels == pod["metadata"]["labels"] == service["spec"]["selector"]
        [container] = pod["spec"]["containers"]
        assert container["args"] == [
            "node", "start", "--config", f"{deploy.CONTAINER_CONFIG_DIR}/node.toml"
        ]  # fmt: skip
        assert {p["name"]: p["containerPort"] for p in container["ports"]} == listen
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert container["securityContext"]["runAsUser"] == deploy_containers.CONTAINER_UID
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts == {"config": deploy.CONTAINER_CONFIG_DIR, "data": config["node"]["data_dir"]}

        [init] = pod["spec"]["initContainers"]
        assert init["command"] == ["sh", "-c", deploy_containers.bundle_install_script()]
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        projected = volumes["bundle"]["projected"]
        placed = {}
        for source in projected["sources"]:
            [(kind, reference)] = source.items()
            for item in reference["items"]:
                placed[item["path"]] = (kind, reference["name"], item["key"])
        # Every file node.toml reads is in the bundle volume, the keys from the Secret only.
        expected = {"node.toml", *_files_node_toml_reads(config)}
        assert set(placed) == expected
        for path, (kind, name, key) in placed.items():
            if path in deploy.BUNDLE_PRIVATE:
                assert (kind, name) == ("secret", secret["metadata"]["name"])
                assert key in secret["data"]
            elif path in ("genesis.json", "ca.crt"):
                assert (kind, name) == ("configMap", deploy_containers.GENESIS_CONFIGMAP)
                assert key in genesis_map["data"]
            else:
                assert (kind, name) == ("configMap", config_map["metadata"]["name"])
                assert key in config_map["data"]
        [claim] = spec["volumeClaimTemplates"]
        assert claim["metadata"]["name"] == "data" and "data" not in volumes
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
