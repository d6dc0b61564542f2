"""Layering (docs/design.md section 1): the consensus and contracts packages are pure.

Neither may import an I/O, clock, randomness, process or network module, nor call `open`,
`input` or `__import__`, nor read a clock (`.now()`, `.today()`, `.utcnow()`, ...). consensus/
may not import `datetime` at all; contracts/ may import the pure calendar types `date` and
`timedelta` from it (day arithmetic on agreed block time) but nothing else. consensus/ also
imports nothing first-party and no third-party package except msgpack, and its relative imports
stay inside its own package. The test walks whatever .py files exist, so it keeps checking as
the packages grow.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "asyncio",
    "concurrent",
    "ctypes",
    "datetime",
    "grpc",
    "http",
    "importlib",
    "io",
    "multiprocessing",
    "os",
    "pathlib",
    "plyvel",
    "random",
    "secrets",
    "select",
    "selectors",
    "shutil",
    "signal",
    "socket",
    "socketserver",
    "sqlite3",
    "ssl",
    "subprocess",
    "sys",
    "tempfile",
    "threading",
    "time",
    "urllib",
    "uuid",
    "zoneinfo",
}
FORBIDDEN_CALLS = {"open", "input", "__import__", "exec", "eval", "breakpoint"}
CLOCK_METHODS = {"now", "today", "utcnow", "fromtimestamp", "utcfromtimestamp", "time_ns"}
PURE_DATETIME_NAMES = {"date", "timedelta"}
FIRST_PARTY = {"ibledger", "consensus", "contracts", "node", "cli", "proto", "bench", "tests"}
CONSENSUS_THIRD_PARTY = {"msgpack"}


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path, pure_datetime: bool = False) -> list[tuple[str, int, int]]:
    """(top-level module, relative level, line) for every import in the file; with
    pure_datetime, `from datetime import date, timedelta` is not reported."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out: list[tuple[str, int, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((alias.name.split(".")[0], 0, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names = {alias.name for alias in node.names}
            if pure_datetime and node.module == "datetime" and names <= PURE_DATETIME_NAMES:
                continue
            out.append(((node.module or "").split(".")[0], node.level, node.lineno))
    return out


def _calls(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            out.append((node.func.id, node.lineno))
        elif isinstance(node.func, ast.Attribute) and node.func.attr in CLOCK_METHODS:
            out.append(("." + node.func.attr, node.lineno))
    return out


@pytest.mark.parametrize("package", ["consensus", "contracts"])
def test_no_io_clock_or_randomness(package: str) -> None:
    problems = []
    for path in _files(package):
        rel = path.relative_to(ROOT)
        for module, level, line in _imports(path, pure_datetime=package == "contracts"):
            if level == 0 and module in FORBIDDEN:
                problems.append(f"{rel}:{line} imports {module}")
        for name, line in _calls(path):
            problems.append(f"{rel}:{line} calls {name}()")
    assert not problems, "\n".join(problems)


def test_consensus_imports_nothing_first_party() -> None:
    problems = []
    files = _files("consensus")
    assert files, "consensus/ has no modules"
    for path in files:
        rel = path.relative_to(ROOT)
        depth = len(path.relative_to(ROOT / "consensus").parts) - 1
        for module, level, line in _imports(path):
            if level == 0 and module in FIRST_PARTY:
                problems.append(f"{rel}:{line} imports first-party {module}")
            elif level == 0 and module not in sys.stdlib_module_names:
                if module not in CONSENSUS_THIRD_PARTY:
                    problems.append(f"{rel}:{line} imports third-party {module}")
            elif level > depth + 1:
                problems.append(f"{rel}:{line} relative import leaves the package")
    assert not problems, "\n".join(problems)


def test_checker_catches_violations(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import time\nfrom os import path\nfrom .. import node\nopen('x')\n"
        "from datetime import date, datetime\ndate.today()\n"
    )
    modules = {m for m, _, _ in _imports(bad, pure_datetime=True)}
    assert {"time", "os", "datetime"} <= modules
    assert any(level == 2 for _, level, _ in _imports(bad))
    assert _calls(bad) == [("open", 4), (".today", 6)]
