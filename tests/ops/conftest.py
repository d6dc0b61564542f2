"""Shared fixtures for the operator tests: a template network written once, CLI runner."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ibledger.cli import main as cli_main
from ibledger.cli import network, output

TEMPLATE_NODES = 4


def _parser() -> argparse.ArgumentParser:
    return cli_main.build_parser()


def run_cli(*args: str) -> int:
    """Run ``ibledger ARGS`` in this process the way ``cli.main.main`` does."""
    options = _parser().parse_args(list(args))
    try:
        result: int = options.handler(options)
    except output.CommandError as exc:
        return output.fail(options, exc.code, exc.message, exc.exit_code)
    return result


CliRunner = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = run_cli(*args)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(scope="session")
def template_network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid 4-node network written once; tests copy it before changing anything."""
    directory = tmp_path_factory.mktemp("template") / "network"
    assert run_cli("network", "init", "--dir", str(directory), "--nodes", str(TEMPLATE_NODES)) == 0
    return directory


@pytest.fixture
def network_copy(template_network: Path, tmp_path: Path) -> Path:
    """A private copy of the template network (permissions preserved)."""
    target = tmp_path / "network"
    shutil.copytree(template_network, target, symlinks=True)
    return target


def kill_network_processes(directory: Path) -> None:
    """Last-resort cleanup: SIGKILL every process group a pid file under ``directory`` names."""
    for pid_file in directory.resolve().glob("nodes/*/node.pid"):
        node_dir = pid_file.parent
        pid = network._running_pid(node_dir, node_dir / "node.toml")  # only our own nodes
        if pid is not None:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def cleanup_processes() -> Iterator[list[Path]]:
    directories: list[Path] = []
    yield directories
    for directory in directories:
        kill_network_processes(directory)
