"""The README, followed literally: every shell and Python block runs, in order, on a real network.

The README is read as a new user reads it: in one shell, from the repository root, block after
block. Each ```sh, ```shell, ```bash and ```console block runs in ``bash -e -o pipefail`` (a
console block's ``$ `` lines only), each ```python block in a fresh interpreter, all from the
repository root and against real node processes. Blocks run like one terminal session: each
starts with the environment the previous shell block exported, so the README's
``export IBLEDGER_CLOCK_OFFSET_MS=...`` (the clock shift of the bill's life) holds for the blocks
after it, as it would for a user.

Isolation: HOME and TMPDIR are fresh temporary directories and no ``IBLEDGER_*`` variable is
inherited, so the default network (``~/.ibledger/network``) and the scratch networks the
README's examples create in ``$(mktemp -d)`` live in this test's directories, on free ports that
``network init`` picks.

The set-up block: the README opens with exactly two commands, ``make run`` and ``make test``.
The test does not run them (``make test`` is what runs this test, and ``make run`` would start
the network in the caller's home); it runs what ``make run`` runs instead -- the ``ibledger``
commands of the Makefile's ``run`` recipe (``network init --if-missing``, ``network up``,
``demo``) -- and puts the installed ``ibledger`` on PATH, as ``. .venv/bin/activate`` does.
Every other block runs as written.

A block meant only as an illustration must be preceded by the visible line
``*Illustration, not run.*``; such blocks are reported as skipped, and no other block is
skipped. Every fenced block must carry a language, so a shell block cannot escape the test by
being untagged.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SHELLS = ("sh", "shell", "bash", "console")
RUNNABLE = (*SHELLS, "python")
NOT_RUN_MARKER = "*Illustration, not run.*"
SETUP_COMMANDS = ["make run", "make test"]


def make_run_commands() -> list[list[str]]:
    """The ``ibledger`` commands of the Makefile's ``run`` recipe, in order, without the path."""
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("run:"))
    commands = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        words = shlex.split(line.strip().lstrip("@-"))
        if words and words[0].endswith("/ibledger"):
            commands.append(words[1:])
    assert commands[:2] == [["network", "init", "--if-missing"], ["network", "up"]], commands
    return commands


BLOCK_TIMEOUT_S = 900  # bounds a hang only; a block takes seconds to a minute

_FENCE = re.compile(r"^```([A-Za-z0-9_+-]*)\s*$")


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    illustration: bool

    @property
    def name(self) -> str:
        return f"line{self.line}-{self.language}"


def readme_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and not lines[index].startswith("```"):
            body.append(lines[index])
            index += 1
        if index == len(lines):
            raise AssertionError(f"README.md:{start + 1}: a code block is never closed")
        before = [line for line in lines[:start] if line.strip()]
        marked = bool(before) and before[-1].strip() == NOT_RUN_MARKER
        blocks.append(Block(start + 1, opening.group(1), "\n".join(body) + "\n", marked))
        index += 1
    return blocks


def shell_script(block: Block) -> str:
    if block.language != "console":
        return block.text
    return "\n".join(line[2:] for line in block.text.splitlines() if line.startswith("$ "))


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
RUN = [block for block in BLOCKS if block.language in RUNNABLE]


@dataclass
class Session:
    """One terminal: its environment carries over from block to block."""

    env: dict[str, str]
    scratch: Path
    transcript: list[str] = field(default_factory=list)
    failed: str | None = None

    def ibledger(self, *args: str) -> None:
        result = subprocess.run(
            ["ibledger", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
        )
        assert result.returncode == 0, (
            f"ibledger {' '.join(args)} -> {result.returncode}\n{result.stdout}{result.stderr}"
        )

    def run(self, block: Block) -> subprocess.CompletedProcess[str]:
        if block.language == "python":
            return subprocess.run(
                [sys.executable, "-c", block.text],
                cwd=ROOT,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT_S,
            )
        env_file = self.scratch / "env"
        script = f'{shell_script(block)}\nenv -0 > "{env_file}"\n'
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
        )
        if result.returncode == 0:
            pairs = env_file.read_bytes().split(b"\0")
            self.env = dict(pair.decode().split("=", 1) for pair in pairs if pair and b"=" in pair)
        return result


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    base = tmp_path_factory.mktemp("readme")
    home, tmp, scratch = base / "home", base / "tmp", base / "scratch"
    for directory in (home, tmp, scratch):
        directory.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IBLEDGER_")}
    bin_dir = str(Path(sys.executable).parent)  # where `ibledger` is installed
    env.update(
        HOME=str(home),
        TMPDIR=str(tmp),
        PATH=bin_dir + os.pathsep + env.get("PATH", ""),
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("VIRTUAL_ENV", None)
    session = Session(env, scratch)
    try:
        for args in make_run_commands():
            session.ibledger(*args)
        yield session
    finally:
        # Stop every network the README started and left running (or left behind on failure).
        for manifest in sorted([*home.rglob("network.json"), *tmp.rglob("network.json")]):
            subprocess.run(
                ["ibledger", "network", "down", "--dir", str(manifest.parent)],
                env=session.env,
                capture_output=True,
                timeout=120,
            )


def test_every_block_has_a_language() -> None:
    untagged = [block.line for block in BLOCKS if not block.language]
    assert not untagged, f"README.md code blocks without a language, at lines {untagged}"


def test_readme_starts_with_the_two_setup_commands() -> None:
    first = BLOCKS[0]
    commands = [line.split("#", 1)[0].strip() for line in first.text.splitlines()]
    assert first.language in SHELLS and [c for c in commands if c] == SETUP_COMMANDS


# Bounds a hang only: on a loaded machine one block (with a network restart) takes minutes.
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("block", RUN[1:], ids=[block.name for block in RUN[1:]])
def test_readme_block(session: Session, block: Block) -> None:
    if block.illustration:
        pytest.skip(f"README.md:{block.line} is marked {NOT_RUN_MARKER!r}")
    if session.failed is not None:
        pytest.fail(f"an earlier block failed ({session.failed}); this one depends on it")
    result = session.run(block)
    if result.returncode != 0:
        session.failed = block.name
    assert result.returncode == 0, (
        f"README.md:{block.line} ({block.language}) exited {result.returncode}\n"
        f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
    )
    # What the README promises a reader sees, beyond the exit status.
    if "recourse-parties" in block.text:
        assert "parties: {}" not in result.stdout
        assert "refusal_type: IN_WINDOW" in result.stdout
    if "bill chain" in block.text:
        assert "SETTLED (CS06)" in result.stdout and "RECOURSE:" in result.stdout
