"""Layering (docs/design.md section 1): the consensus and contracts packages are pure.

Neither may import an I/O, clock, randomness, process or network module, nor call `open`,
`input` or `__import__`, nor read a clock (`.now()`, `.today()`, `.utcnow()`, ...). consensus/
may not import `datetime` at all; contracts/ may import the pure calendar types `date` and
`timedelta` from it (day arithmetic on agreed block time) but nothing else. consensus/ also
imports nothing first-party and no third-party package except msgpack, and its relative imports
stay inside its own package; contracts/ imports no first-party module outside itself either.

cli/ reaches node/ only through the client-safe wire modules (``CLIENT_SAFE``: what a client
needs to build, sign and verify transactions, blocks and keys, none of which opens a socket,
a database or a server), and those modules only import each other inside node/. The operator
commands that run or configure nodes in-process are the named exceptions (``CLI_NODE_EXCEPTIONS``,
each with its reason); an exception that no longer needs node/ beyond the wire modules fails
too, so the list cannot go stale.

sim/ (the deterministic simulator behind `ibledger sim`) reads no clock and does no I/O either:
it may import `random` only to build seeded `random.Random` streams (no module-level
`random.random()`), and it imports first-party code only from consensus/ and itself, besides
the named pure node/ modules: the crypto suite and validator signer (``SIM_SUITE_MODULES``) and
the storage protocol with its in-memory store (``PURE_STORE_MODULES``, so that a simulation may
run the real ledger over simulated storage). The store modules are held to consensus/'s rules:
no I/O, clock, randomness or thread module, and no first-party import but each other. One
simulator module, sim/node_ledger.py (``SIM_NODE_LEDGER_FILE``), may also import the node's
ledger, transaction and block modules (``SIM_NODE_LEDGER_MODULES``), which are not pure: it is
held to calling them so that they start no thread and read no clock or OS randomness (see
``test_the_simulators_node_ledger_module_starts_no_thread_and_reads_no_clock``).

Imports inside functions count. The test walks whatever .py files exist, so it keeps checking as
the packages grow; failures name file:line and the module.
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
FIRST_PARTY = {
    "ibledger",
    "consensus",
    "contracts",
    "node",
    "cli",
    "proto",
    "sim",
    "bench",
    "tests",
}
CONSENSUS_THIRD_PARTY = {"msgpack"}
PACKAGES = ("consensus", "contracts", "node", "cli", "proto", "sim")

# The node/ modules a client may import: host:port addresses and the default port layout,
# transaction envelopes, block headers and proofs, signature suites, key files, strict JSON
# files (the genesis) and the wall clock that stamps expiries.
CLIENT_SAFE = {
    "ibledger.node.blocks",
    "ibledger.node.clock",
    "ibledger.node.addresses",
    "ibledger.node.crypto",
    "ibledger.node.jsonfile",
    "ibledger.node.keyfile",
    "ibledger.node.keyfile_sm",
    "ibledger.node.ports",
    "ibledger.node.sm2",
    "ibledger.node.tx",
    "ibledger.node.validation",
    "ibledger.node.validator_set",
}
# What a client-safe module must not import: it would drag a server, a database or threads in.
CLIENT_SAFE_FORBIDDEN = {"asyncio", "grpc", "plyvel", "socket", "subprocess", "threading"}
CLI_NODE_EXCEPTIONS = {
    "cli/network.py": "network init/up writes and checks node configs, genesis and the PKI",
    "cli/deploy.py": "network init --hosts writes per-host node configs and checks them",
    "cli/network_observer.py": "network add-observer issues a certificate and checks its config",
    "cli/network_rotate.py": "network rotate-cert issues a node a new certificate from the CA",
    "cli/network_membership.py": "network add-node/remove-node/rotate-key write a validator's "
    "files, seed it from a backup and check its config",
    "cli/network_drill.py": "network drill site-loss runs a network and promotes observers",
    "cli/node_cmd.py": "node start runs the node server in this process",
    "cli/cmd_audit.py": "audit verify reads an audit log, genesis or certificate offline",
}


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


def _module_name(path: Path) -> str:
    """The installed name of a first-party file: consensus/codec.py -> ibledger.consensus.codec."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["ibledger", *parts])


def _is_module(name: str) -> bool:
    parts = name.split(".")[1:]
    if not parts or parts[0] not in PACKAGES:
        return False
    base = ROOT.joinpath(*parts)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _first_party_imports(path: Path, root: Path = ROOT) -> list[tuple[str, int]]:
    """(absolute ibledger.* module, line) for every first-party import in the file, relative
    ones resolved; ``from ibledger.node import clock`` names ``ibledger.node.clock``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = _module_name(path) if root == ROOT else "ibledger.cli.example"
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(
                (alias.name, node.lineno)
                for alias in node.names
                if alias.name.split(".")[0] == "ibledger"
            )
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            elif (node.module or "").split(".")[0] == "ibledger":
                base = node.module or ""
            else:
                continue
            for alias in node.names:
                child = f"{base}.{alias.name}"
                out.append((child if _is_module(child) else base, node.lineno))
    return out


def _outside(module: str, package: str) -> bool:
    prefix = f"ibledger.{package}"
    return module != prefix and not module.startswith(prefix + ".")


@pytest.mark.parametrize("package", ["consensus", "contracts"])
def test_pure_packages_import_nothing_first_party_outside_themselves(package: str) -> None:
    problems = [
        f"{path.relative_to(ROOT)}:{line} imports {module} (outside {package}/)"
        for path in _files(package)
        for module, line in _first_party_imports(path)
        if _outside(module, package)
    ]
    assert not problems, "\n".join(problems)


# A simulation may sign with a chain's real crypto suite (``Scenario.suite``): the node's suite
# and validator signer are pure computation over bytes, with no I/O or clock.
SIM_SUITE_MODULES = {"ibledger.node.crypto", "ibledger.node.signing"}
# The storage protocol and the sorted in-memory store with its fault hooks: what a simulated
# node's ledger will run on. Pure computation, checked below.
PURE_STORE_MODULES = {"ibledger.node.store", "ibledger.node.memory_store"}
# The simulator's real-ledger executor (a scenario option, `Scenario.real_ledger`) runs the
# node's `Ledger` and contracts. Those modules import threading (an uncontended write lock in
# the ledger, and the verifier's lock and thread pool), time (perf_counter, for metrics
# callbacks only) and os plus the node clock (in `build_transaction`, for a nonce or expiry left
# out). Nothing of that reaches a run's results if the pool is never started (one verifier
# worker verifies inline) and every transaction names its nonce and expiry; the test below holds
# the one module that may import them to both.
SIM_NODE_LEDGER_FILE = "sim/node_ledger.py"
SIM_NODE_LEDGER_MODULES = {"ibledger.node.ledger", "ibledger.node.tx", "ibledger.node.blocks"}


def test_the_store_modules_the_simulator_may_use_are_pure() -> None:
    problems = []
    for module in sorted(PURE_STORE_MODULES):
        path = ROOT.joinpath(*module.split(".")[1:]).with_suffix(".py")
        assert path.is_file(), f"{module}: no such module"
        rel = path.relative_to(ROOT)
        for imported, level, line in _imports(path):
            if level == 0 and imported in FORBIDDEN:
                problems.append(f"{rel}:{line} imports {imported}")
            elif level == 0 and imported not in sys.stdlib_module_names | {"ibledger"}:
                problems.append(f"{rel}:{line} imports third-party {imported}")
        for name, line in _calls(path):
            problems.append(f"{rel}:{line} calls {name}()")
        for imported, line in _first_party_imports(path):
            if imported not in PURE_STORE_MODULES:
                problems.append(f"{rel}:{line} imports {imported}")
    assert not problems, "\n".join(problems)


def test_simulator_reads_no_clock_and_does_no_io() -> None:
    problems = []
    files = _files("sim")
    assert files, "sim/ has no modules"
    for path in files:
        rel = path.relative_to(ROOT)
        for module, level, line in _imports(path):
            if level == 0 and module in FORBIDDEN - {"random"}:
                problems.append(f"{rel}:{line} imports {module}")
        for name, line in _calls(path):
            problems.append(f"{rel}:{line} calls {name}()")
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            func = node.func if isinstance(node, ast.Call) else None
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "random"
                and func.attr != "Random"
            ):
                problems.append(f"{rel}:{node.lineno} draws from the global random stream")
        for module, line in _first_party_imports(path):
            if _outside(module, "consensus") and _outside(module, "sim"):
                if module in SIM_SUITE_MODULES or module in PURE_STORE_MODULES:
                    continue
                if rel.as_posix() == SIM_NODE_LEDGER_FILE and module in SIM_NODE_LEDGER_MODULES:
                    continue
                problems.append(f"{rel}:{line} imports {module}")
    assert not problems, "\n".join(problems)


def _keyword_calls(path: Path, name: str) -> list[tuple[int, set[str], dict[str, ast.expr]]]:
    """(line, keyword names, keyword values) of every call of ``name`` or ``x.name``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if called == name:
            values = {k.arg: k.value for k in node.keywords if k.arg is not None}
            out.append((node.lineno, set(values), values))
    return out


def test_the_simulators_node_ledger_module_starts_no_thread_and_reads_no_clock() -> None:
    path = ROOT / SIM_NODE_LEDGER_FILE
    problems = []
    opens = _keyword_calls(path, "open_store")
    builds = _keyword_calls(path, "build_transaction")
    assert opens and builds, "the module no longer opens ledgers or builds transactions"
    for line, _, values in opens:
        workers = values.get("verifier_workers")
        if not (isinstance(workers, ast.Constant) and workers.value == 1):
            problems.append(f"{SIM_NODE_LEDGER_FILE}:{line} opens a ledger without one worker")
    for line, names, _ in builds:
        if not {"nonce", "expires_at_ms"} <= names:
            problems.append(f"{SIM_NODE_LEDGER_FILE}:{line} leaves a nonce or expiry to chance")
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        func = node.func if isinstance(node, ast.Call) else None
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "open"
            and isinstance(func.value, ast.Name)
            and func.value.id == "Ledger"
        ):
            problems.append(f"{SIM_NODE_LEDGER_FILE}:{node.lineno} opens a LevelDB database")
    assert not problems, "\n".join(problems)


def test_cli_reaches_node_only_through_the_client_safe_modules() -> None:
    problems = []
    needs_exception = set()
    for path in _files("cli"):
        rel = path.relative_to(ROOT).as_posix()
        for module, line in _first_party_imports(path):
            if _outside(module, "node") or module in CLIENT_SAFE:
                continue
            if rel in CLI_NODE_EXCEPTIONS:
                needs_exception.add(rel)
                continue
            problems.append(
                f"{rel}:{line} imports {module}: cli/ may import from node/ only "
                f"{', '.join(sorted(CLIENT_SAFE))} (or be a named operator exception)"
            )
    for rel in sorted(set(CLI_NODE_EXCEPTIONS) - needs_exception):
        problems.append(f"{rel}: listed as an exception but imports only client-safe modules")
    assert not problems, "\n".join(problems)


def test_client_safe_modules_stay_wire_only() -> None:
    problems = []
    for module in sorted(CLIENT_SAFE):
        path = ROOT.joinpath(*module.split(".")[1:]).with_suffix(".py")
        assert path.is_file(), f"{module}: no such module"
        rel = path.relative_to(ROOT)
        for imported, line in _first_party_imports(path):
            if not _outside(imported, "node") and imported not in CLIENT_SAFE:
                problems.append(f"{rel}:{line} imports {imported}, which is not client-safe")
            elif not (_outside(imported, "cli") and _outside(imported, "proto")):
                problems.append(f"{rel}:{line} imports {imported}")
        for imported, _, line in _imports(path):
            if imported in CLIENT_SAFE_FORBIDDEN:
                problems.append(f"{rel}:{line} imports {imported}")
    assert not problems, "\n".join(problems)


def test_import_resolution(tmp_path: Path) -> None:
    bad = tmp_path / "example.py"
    bad.write_text(
        "from ibledger.node import clock, ledger\nfrom ..node.server import run\n"
        "def f():\n    import ibledger.node.config\nfrom . import output\n"
    )
    assert _first_party_imports(bad, root=tmp_path) == [
        ("ibledger.node.clock", 1),
        ("ibledger.node.ledger", 1),
        ("ibledger.node.server", 2),
        ("ibledger.cli.output", 5),
        ("ibledger.node.config", 4),
    ]


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
