"""The documentation stays inside the repository and in step with the code.

Every reference in the README, the docs and the code resolves here: repository paths the text
names exist, section references (``docs/domain.md B.7``, ``docs/design.md section 4``,
``docs/testing.md B6``) name sections and rows that exist, and no file points at design notes
outside the repository. And every rejection code the contracts raise is in ``docs/domain.md``.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

from ibledger.contracts.identifiers import CODES

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
TOP_LEVEL = (
    ".ci",
    "bench",
    "cli",
    "consensus",
    "contracts",
    "docker",
    "docs",
    "node",
    "proto",
    "tests",
)
# Outside documents the text must never lean on (spelled in pieces so this file passes too).
OUTSIDE = ["DOMAIN" + ".md", "DESIGN" + ".md", "TESTING" + ".md", "STYLE" + ".md", "../" + "shared"]
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yaml", ".yml", ".proto", ".txt", ".cfg", ""}


def tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    files = [ROOT / name for name in names]
    return [f for f in files if f.is_file() and f.suffix in TEXT_SUFFIXES and "_pb2" not in f.name]


def test_nothing_points_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}: {needle}"
        for path in tracked_text_files()
        for needle in OUTSIDE
        if needle in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert not found, "references to documents outside the repository:\n" + "\n".join(found)


def test_repository_paths_named_in_the_docs_exist() -> None:
    pattern = re.compile("`((?:" + "|".join(map(re.escape, TOP_LEVEL)) + r")/[A-Za-z0-9_./-]*)`")
    links = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    missing = []
    for doc in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for name in pattern.findall(text):
            if not (ROOT / name.rstrip(".")).exists():
                missing.append(f"{doc.relative_to(ROOT)}: `{name}`")
        for target in links.findall(text):
            if "://" not in target and not (doc.parent / target).exists():
                missing.append(f"{doc.relative_to(ROOT)}: link {target}")
    assert not missing, "paths that do not exist:\n" + "\n".join(missing)


def _section_labels(doc: Path) -> set[str]:
    labels = set()
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            labels.add(heading.split(" ", 1)[0].rstrip(".:"))
            if heading.startswith("Part "):
                labels.add(" ".join(heading.split(" ", 2)[:2]).rstrip(":"))
        elif line.startswith("| "):
            labels.add(line[2:].split(" ", 1)[0])
    return labels


def test_section_references_resolve() -> None:
    reference = re.compile(
        r"docs/(domain|design|testing|security|operations)\.md"
        r"(?: (?:section |sections )?((?:Part [A-C])|(?:[A-Z]\.?[0-9]+(?:\.[0-9]+)?)|[0-9]+))?"
    )
    labels = {
        name: _section_labels(DOCS / f"{name}.md") for name in ("domain", "design", "testing")
    }
    broken = []
    for path in tracked_text_files():
        if path == Path(__file__).resolve():
            continue
        for doc, label in reference.findall(path.read_text(encoding="utf-8", errors="replace")):
            if not (DOCS / f"{doc}.md").exists():
                broken.append(f"{path.relative_to(ROOT)}: docs/{doc}.md")
            elif label and doc in labels and label not in labels[doc]:
                broken.append(f"{path.relative_to(ROOT)}: docs/{doc}.md {label}")
    assert not broken, "section references that do not resolve:\n" + "\n".join(broken)


def _contract_codes() -> set[str]:
    """Codes raised as ContractError/QueryError (directly or through a helper) in contracts/."""
    code = re.compile(r"^[A-Z][A-Z0-9_]{3,}$")
    codes = set(CODES.values())
    for path in (ROOT / "contracts").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and node.args:
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                first = node.args[0]
                if name in ("ContractError", "QueryError", "_Invalid") and isinstance(
                    first, ast.Constant
                ):
                    codes.add(str(first.value))
                for keyword in node.keywords:  # parse_amount(..., code="BILL_AMOUNT_INVALID")
                    value = keyword.value
                    if keyword.arg == "code" and isinstance(value, ast.Constant):
                        codes.add(str(value.value))
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple):
                head = node.value.elts[0] if node.value.elts else None
                if isinstance(head, ast.Constant) and isinstance(head.value, str):
                    codes.add(head.value)  # ("DUPLICATE_LEI", message) from a checker
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "code" for t in node.targets
            ):
                value = node.value
                choices = [value.body, value.orelse] if isinstance(value, ast.IfExp) else [value]
                for choice in choices:  # code = "X" if ... else "Y"
                    if isinstance(choice, ast.Constant) and isinstance(choice.value, str):
                        codes.add(choice.value)
    return {c for c in codes if code.match(c)}


def test_every_contract_code_is_documented() -> None:
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]{3,})`", (DOCS / "domain.md").read_text()))
    missing = sorted(_contract_codes() - documented)
    assert not missing, f"codes raised in contracts/ but not in docs/domain.md: {missing}"
