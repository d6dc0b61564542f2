"""``ibledger network drill site-loss`` end to end: a site lost under load, the recovery site
promoted by governance, nothing acknowledged lost (cli/network_drill.py).

Deadlines bound hangs only: the drill's figures are reported, never compared with a time."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from .cluster import CLI

# Long: tests/suite.py runs it in its late process.
pytestmark = [pytest.mark.slow, pytest.mark.late]


def test_the_site_loss_drill_promotes_the_recovery_site_and_loses_nothing() -> None:
    # The drill bounds each of its waits itself; this only bounds a hang of the whole.
    result = subprocess.run(
        [*CLI, "network", "drill", "site-loss", "--json"],
        capture_output=True, text=True, timeout=1200, env=os.environ.copy(),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout)
    assert figures["sites"] == {
        "a": ["node0", "node1"],
        "b": ["node2", "node3"],
        "c": ["node4", "node5", "dr1", "dr2"],
    }
    assert figures["acknowledged"] > 0
    assert figures["lost"] == 0 and figures["duplicated"] == 0 and figures["forks"] == 0, figures
    assert figures["validators"] == ["node2", "node3", "node4", "node5", "dr1", "dr2"]
    assert figures["seconds_to_resume"] > 0 and figures["seconds_to_promote"] > 0
