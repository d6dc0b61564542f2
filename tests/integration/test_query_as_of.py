"""Queries as of a past height against a real node process: after later blocks change the
state, and after the node restarts, ``--height H`` answers exactly what the same query answered
at height H; a height above the tip is refused with its code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .cluster import run_cli

pytestmark = pytest.mark.slow


def _json(*args: str) -> Any:
    return json.loads(run_cli(*args, "--json").stdout)


def test_a_query_at_an_old_height_after_later_changes_and_a_restart(tmp_path: Path) -> None:
    directory = tmp_path / "network"
    net = ("--network", str(directory))
    run_cli("network", "init", "--nodes", "1", "--dir", str(directory))
    run_cli("network", "up", "--dir", str(directory))
    try:
        before = _json("query", "participants", "--as", "ADMIN", *net)
        then = before["height"]
        cib_then = _json("participant", "show", "CIB", "--as", "ADMIN", *net)
        assert cib_then["active"] is True
        # Later blocks: CIB is deactivated (one admin is a quorum: the proposal executes).
        run_cli("governance", "propose", "deactivate", "CIB", "--as", "ADMIN", *net)
        after = _json("query", "participants", "--as", "ADMIN", *net)
        assert after["height"] > then and after["result"] != before["result"]
        assert _json("participant", "show", "CIB", "--as", "ADMIN", *net)["active"] is False

        def as_of_then() -> None:
            again = _json("query", "participants", "--height", str(then), "--as", "ADMIN", *net)
            assert again == before
            shown = _json(
                "participant", "show", "CIB", "--height", str(then), "--as", "ADMIN", *net
            )
            assert shown == cib_then

        as_of_then()
        run_cli("network", "down", "--dir", str(directory))
        run_cli("network", "up", "--dir", str(directory))
        as_of_then()  # the index is on disk, beside the blocks

        future = run_cli(
            "query",
            "participants",
            "--height",
            "1000000",
            "--as",
            "ADMIN",
            *net,
            "--json",
            check=False,
        )
        assert future.returncode == 1, (future.stdout, future.stderr)
        assert json.loads(future.stderr or future.stdout)["code"] == "HEIGHT_IN_FUTURE"
    finally:
        run_cli("network", "down", "--dir", str(directory), check=False)
