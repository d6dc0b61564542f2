"""The wheel holds every first-party package: pyproject.toml discovers packages under ibledger/
(one relative symlink per top-level package) instead of listing them, and this test builds the
wheel from a copy of the tree and checks that every directory of Python code is in it.

A new top-level package directory must get its symlink in ibledger/; a new subpackage needs
nothing but its ``__init__.py``, and without one it would drop out, which the test reports.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Top-level directories of Python code that are deliberately not installed, each with its reason.
NOT_INSTALLED = {
    "tests": "the test suite runs from the repository",
    "bench": "benchmarks are a development tool run as `python -m bench` from the repository",
    "typings": "local type stubs for third-party modules, read by mypy only",
}
SKIPPED_DIRS = {"__pycache__", "build", "docker"}


def _code_dirs(top: Path) -> list[Path]:
    """``top`` and every directory below it that holds a .py file."""
    found = {path.parent for path in top.rglob("*.py") if "__pycache__" not in path.parts}
    return sorted(found)


def _top_level_code_dirs() -> list[str]:
    names = []
    for entry in sorted(ROOT.iterdir()):
        if not entry.is_dir() or entry.is_symlink() or entry.name.startswith("."):
            continue
        if entry.name in SKIPPED_DIRS or entry.name.endswith(".egg-info"):
            continue
        if entry.name == "ibledger" or not any(entry.rglob("*.py")):
            continue
        names.append(entry.name)
    return names


def test_every_top_level_package_is_linked_under_ibledger() -> None:
    linked = {}
    for entry in (ROOT / "ibledger").iterdir():
        if entry.is_symlink():
            target = entry.readlink()
            assert not target.is_absolute(), f"ibledger/{entry.name} -> {target}: not relative"
            assert target == Path("..") / entry.name, f"ibledger/{entry.name} -> {target}"
            assert entry.resolve().is_dir(), f"ibledger/{entry.name}: dangling link"
            linked[entry.name] = target
    missing = [
        name for name in _top_level_code_dirs() if name not in linked and name not in NOT_INSTALLED
    ]
    assert not missing, (
        f"package directories not linked in ibledger/ (so not installed): {missing}; "
        "add `ln -s ../NAME ibledger/NAME` or list the directory in NOT_INSTALLED with a reason"
    )
    assert not set(linked) & set(NOT_INSTALLED)


def test_the_wheel_contains_every_first_party_package(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "ibledger", source / "ibledger", symlinks=True)
    packages = sorted(entry.name for entry in (ROOT / "ibledger").iterdir() if entry.is_symlink())
    for name in packages:
        shutil.copytree(
            ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    out = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet"]
    subprocess.run(
        [*pip, "--wheel-dir", str(out), str(source)],
        check=True,
        timeout=300,
    )
    (wheel,) = out.glob("ibledger-*.whl")
    contents = set(zipfile.ZipFile(wheel).namelist())

    missing = []
    for name in packages:
        for directory in _code_dirs(ROOT / name):
            for module in sorted(directory.glob("*.py*")):
                if module.suffix not in {".py", ".pyi"}:
                    continue
                inside = "ibledger/" + module.relative_to(ROOT).as_posix()
                if inside not in contents:
                    missing.append(inside)
    assert not missing, "not in the wheel: " + ", ".join(missing)
    for marker in ("ibledger/__init__.py", "ibledger/py.typed", "ibledger/proto/ledger.proto"):
        assert marker in contents, marker
    assert not any(name.startswith(("tests/", "bench/", "consensus/")) for name in contents)
