"""``ibledger demo`` (what ``make run`` does) against a real four-node network: every step of the
tour, from registering a bond to verifying the last block against the genesis validator keys,
runs through the CLI and succeeds; a second run on the same network succeeds too (fresh
identifiers every time)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import Cluster, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster.create(tmp_path_factory.mktemp("demo") / "network")
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


def _demo(directory: Path) -> str:
    result = run_cli("demo", "--network", str(directory))
    return result.stdout


def test_the_demo_runs_against_the_network(cluster: Cluster) -> None:
    out = _demo(cluster.directory)
    assert "$ ibledger bill chain" in out
    assert "$ ibledger block show" in out and "--verify" in out
    assert out.rstrip().endswith("--as ICBC"), out[-500:]
    again = _demo(cluster.directory)
    assert "the demo stopped" not in again
