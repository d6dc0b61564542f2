"""One writer per piece of consensus state (consensus/replica_core.py).

The view change's safety depends on the view, the log, the prepared certificates and the stable
checkpoint; each lives in one small class written by one part of the replica, and any other
part changes it through a method of that writer. This test reads the replica's modules and fails
on a write anywhere else: an assignment, augmented assignment or `del` whose target is rooted at
the state (`self._vs.view = ...`, `self._log.slots[seq] = ...`), a call of a mutating method on it
(`self._log.waiting.pop(...)`, `self._catch_up.begin(...)`), or passing it to `discard_through`.
A `slot` (one entry of the message log) counts as the log's. The construction of each state
object in `Replica.__init__` is the one write outside its writer. Failures name file:line.
"""

from __future__ import annotations

import ast
from pathlib import Path

CONSENSUS = Path(__file__).resolve().parents[2] / "consensus"

# The state attribute of the replica (or a local name) -> the only module that may write it.
OWNERS = {
    "_chain": "replica_normal",
    "_log": "replica_normal",
    "slot": "replica_normal",
    "_cp": "replica_checkpoints",
    "_catch_up": "replica_transfer",
    "_vs": "replica_view_change",
}
MUTATORS = {
    "add",
    "append",
    "begin",
    "clear",
    "discard_through",
    "extend",
    "finished",
    "insert",
    "pop",
    "popitem",
    "remove",
    "reset_view",
    "set_own",
    "setdefault",
    "update",
}


def _root(node: ast.expr) -> tuple[str | None, int]:
    """The owned state an expression is rooted at, and how deep below it the expression is."""
    depth = 0
    while isinstance(node, ast.Attribute | ast.Subscript):
        inner = node.value
        if (
            isinstance(node, ast.Attribute)
            and isinstance(inner, ast.Name)
            and inner.id == "self"
            and node.attr in OWNERS
        ):
            return node.attr, depth
        node = inner
        depth += 1
    if isinstance(node, ast.Name) and node.id in OWNERS and depth > 0:
        return node.id, depth
    return None, 0


def _targets(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        out: list[ast.expr] = []
        for target in node.targets:
            out.extend(target.elts if isinstance(target, ast.Tuple) else [target])
        return out
    if isinstance(node, ast.AugAssign | ast.AnnAssign):
        return [node.target]
    if isinstance(node, ast.Delete):
        return list(node.targets)
    return []


def foreign_writes(module: str, source: str) -> list[str]:
    """Writes in `module` to state another module owns, as `module:line state`."""
    found: list[str] = []
    init_lines: set[int] = set()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "__init__" and module == "replica":
            init_lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    for node in ast.walk(tree):
        written: list[tuple[str, int]] = []
        for target in _targets(node):
            state, depth = _root(target)
            if state is not None:
                written.append((state, depth))
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in MUTATORS:
                state, depth = _root(func.value)
                if state is not None:
                    written.append((state, depth))
            if isinstance(func, ast.Name) and func.id == "discard_through" and node.args:
                state, depth = _root(node.args[0])
                if state is not None:
                    written.append((state, depth))
        for state, depth in written:
            if OWNERS[state] == module:
                continue
            if depth == 0 and getattr(node, "lineno", 0) in init_lines:
                continue  # Replica.__init__ builds each state object once
            found.append(f"{module}.py:{getattr(node, 'lineno', 0)} writes {state}")
    return found


def _replica_modules() -> dict[str, str]:
    return {p.stem: p.read_text() for p in sorted(CONSENSUS.glob("replica*.py"))}


def test_each_piece_of_consensus_state_has_one_writer() -> None:
    modules = _replica_modules()
    assert set(OWNERS.values()) <= set(modules), "a writer module is missing"
    found = [w for name, source in modules.items() for w in foreign_writes(name, source)]
    assert not found, "\n".join(found)


def test_a_write_from_another_module_is_found() -> None:
    """The check itself: each kind of write, put in the wrong module, is reported."""
    source = """
class Part:
    def f(self, slot):
        self._vs.view = 1
        self._log.slots[3] = slot
        self._cp.own_roots[4] += 1
        del self._log.bodies[b"d"]
        self._log.waiting.pop(2, None)
        self._catch_up.begin(5, ())
        self._catch_up.lag_target, self._vs.active = 6, False
        discard_through(self._cp.awaiting_root, 7)
        slot.prepared = True
        x = self._vs.view  # a read is fine
"""
    found = foreign_writes("replica", source)
    states = sorted(line.split(" writes ")[1] for line in found)
    expected = ["_catch_up", "_catch_up", "_cp", "_cp", "_log", "_log", "_log", "_vs", "_vs"]
    assert states == sorted([*expected, "slot"]), found
    own = "class P:\n    def f(self):\n        self._vs.view = 1\n"
    assert foreign_writes("replica_view_change", own) == []
