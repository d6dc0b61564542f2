"""The Docker files, checked statically (no Docker engine runs here): the image installs the
project and runs the console script; compose runs one node per service from the node.toml that
`ibledger network init` writes, and names every path the image copies."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"


def test_dockerfile_installs_the_project_and_runs_the_console_script() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    copied = re.findall(r"^COPY (\S+)", text, flags=re.MULTILINE)
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such path"
    # The installed packages are the symlinks in ibledger/ (tests/test_packaging.py): the image
    # copies that directory and every directory a link points to.
    packages = {entry.name for entry in (ROOT / "ibledger").iterdir() if entry.is_symlink()}
    assert packages, "ibledger/ links no package"
    assert packages | {"ibledger"} <= set(copied), "every installed package directory is copied"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert 'ENTRYPOINT ["ibledger"]' in text and "ibledger" in scripts
    assert re.search(r"^USER \S+", text, flags=re.MULTILINE), "the node must not run as root"


def test_compose_runs_each_node_from_its_init_config() -> None:
    text = (DOCKER / "compose.yaml").read_text()
    services = re.findall(r"^  (node\d+):$", text, flags=re.MULTILINE)
    assert services == ["node0", "node1", "node2", "node3"]
    for service in services:
        command = f'command: ["node", "start", "--config", "/network/nodes/{service}/node.toml"]'
        assert command in text
        assert f"working_dir: /network/nodes/{service}" in text
    assert "network_mode: host" in text  # the loopback addresses in genesis.json stay valid
    assert "- ./network:/network" in text
    assert "dockerfile: docker/Dockerfile" in text


def test_compose_runs_prometheus_and_grafana_with_the_dashboard() -> None:
    text = (DOCKER / "compose.yaml").read_text()
    for service in ("prometheus", "grafana"):
        assert re.search(rf"^  {service}:$", text, flags=re.MULTILINE), service
    # Every file compose mounts from the repository exists.
    for source in re.findall(r"^\s+- (\./[^:]+):", text, flags=re.MULTILINE):
        if source != "./network":  # written by `ibledger network init`
            assert (DOCKER / source).exists(), f"{source}: no such path"
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml" in text
    assert "./grafana/dashboards:/var/lib/grafana/dashboards" in text
    assert "/healthz" in text and "healthcheck:" in text

    provider = (DOCKER / "grafana/provisioning/dashboards/ibledger.yaml").read_text()
    assert "path: /var/lib/grafana/dashboards" in provider
    datasource = (DOCKER / "grafana/provisioning/datasources/prometheus.yaml").read_text()
    assert "uid: prometheus" in datasource and "127.0.0.1:9090" in datasource
    assert "127.0.0.1:9090" in text

    prometheus = (DOCKER / "prometheus.yml").read_text()
    from ibledger.cli.network import PROMETHEUS_TARGETS

    assert f"/network/{PROMETHEUS_TARGETS}" in prometheus  # what network init writes

    dashboard = json.loads((DOCKER / "grafana/dashboards/ibledger.json").read_text())
    assert dashboard["panels"], "the dashboard has panels"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "prometheus"
        assert panel["targets"] and all(t["expr"] for t in panel["targets"])
