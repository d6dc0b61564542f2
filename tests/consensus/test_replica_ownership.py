"""One writer per piece of consensus state (consensus/replica_core.py).

The view change's safety depends on the view, the log, the prepared certificates and the stable
checkpoint; each lives in one small class written by one part of the replica, and any other
part changes it through a method of that writer. This test reads the replica's modules and fails
on a write anywhere else: an assignment, augmented assignment or `del` whose target is rooted at
the state (`self._vs.view = ...`, `self._log.slots[seq] = ...`), a call of a mutating method on it
(`self._log.waiting.pop(...)`, `self._catch_up.begin(...)`), or passing it to `discard_through`.
A `slot` (one entry of the message log) counts as the log's. The construction of each state
object in `Replica.__init__` is the one write outside its writer. Failures name file:line.

The components several parts use (each timer, the request queue, the body fetcher and server,
the future buffer, the reply rate limits) have a declared set of writers (`SHARED_WRITERS`): a
call of anything but a read on one of them, or a write beneath it, from another part fails.
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


# The components several parts use, each with the parts that may change it: a timer is started
# and stopped by the sub-protocol it times, and stopped by the view change, which resets the
# view's duties; the request queue belongs to request handling and the normal case (which takes
# batches and marks executions); the body fetcher to whoever needs bodies (state transfer, the
# view change, the normal case) and the stable checkpoint that makes old wants moot. Any call
# other than a read, any assignment and any `del` beneath one of them elsewhere is a failure.
SHARED_WRITERS: dict[str, frozenset[str]] = {
    "_timers.request": frozenset({"replica_requests", "replica_normal", "replica_view_change"}),
    "_timers.new_view": frozenset({"replica_view_change"}),
    "_timers.lag": frozenset({"replica_transfer", "replica_normal"}),
    "_timers.backoff": frozenset({"replica_normal", "replica_view_change"}),
    "_timers.status": frozenset({"replica"}),
    "_timers.view_change_resend": frozenset({"replica_view_change"}),
    "_timers.forward": frozenset({"replica_requests"}),
    "_timers.fetch": frozenset({"replica_transfer"}),
    "_requests": frozenset({"replica_requests", "replica_normal"}),
    "_fetcher": frozenset(
        {"replica_transfer", "replica_normal", "replica_view_change", "replica_checkpoints"}
    ),
    "_body_server": frozenset({"replica_transfer", "replica_checkpoints"}),
    "_future": frozenset({"replica_core"}),
    # When a peer was last answered: STATUS replies (state transfer) and NEW-VIEW resends.
    "_status_replied": frozenset({"replica_transfer", "replica_view_change"}),
}
SHARED_READS = frozenset({"due", "duration", "expired", "get", "ready_to_propose", "request"})


def _shared_root(node: ast.expr) -> str | None:
    """The shared component an expression is rooted at (`_timers.lag`, `_requests`), if any."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        inner = node.value
        if isinstance(node, ast.Attribute) and isinstance(inner, ast.Name) and inner.id == "self":
            return node.attr if node.attr in SHARED_WRITERS else None
        if (
            isinstance(node, ast.Attribute)
            and isinstance(inner, ast.Attribute)
            and inner.attr == "_timers"
            and isinstance(inner.value, ast.Name)
            and inner.value.id == "self"
        ):
            name = f"_timers.{node.attr}"
            return name if name in SHARED_WRITERS else None
        node = inner
    return None


def shared_writes(module: str, source: str) -> list[str]:
    """Changes in `module` to a shared component it is not a declared writer of."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        written: list[str] = []
        for target in _targets(node):
            # `self._requests = ...` itself is construction (Replica.__init__), not a change.
            constructed = isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
            shared = None if constructed else _shared_root(target)
            if shared is not None:
                written.append(shared)
        call = node.func if isinstance(node, ast.Call) else None
        if isinstance(call, ast.Attribute) and call.attr not in SHARED_READS:
            shared = _shared_root(call.value)
            if shared is not None:
                written.append(shared)
        for shared in written:
            if module not in SHARED_WRITERS[shared]:
                found.append(f"{module}.py:{getattr(node, 'lineno', 0)} changes {shared}")
    return found


def test_each_shared_component_is_changed_only_by_its_declared_writers() -> None:
    modules = _replica_modules()
    for writers in SHARED_WRITERS.values():
        assert writers <= set(modules), writers
    found = [w for name, source in modules.items() for w in shared_writes(name, source)]
    assert not found, "\n".join(found)


def test_a_change_to_a_shared_component_from_another_part_is_found() -> None:
    source = """
class Part:
    def f(self):
        self._timers.fetch.mark(self._tick)
        self._timers.new_view.stop()
        self._requests.new_view()
        self._fetcher.want(b"d", 3, (), "x")
        self._status_replied["r1"] = 4
        del self._status_replied["r2"]
        self._future.take()
        if self._timers.lag.expired(self._tick, 5) and self._timers.fetch.due(self._tick):
            return self._requests.request(b"r")  # reads are fine
"""
    found = shared_writes("replica", source)
    changed = sorted(line.split(" changes ")[1] for line in found)
    assert changed == sorted(
        [
            "_timers.fetch",
            "_timers.new_view",
            "_requests",
            "_fetcher",
            "_status_replied",
            "_status_replied",
            "_future",
        ]
    ), found
    assert (
        shared_writes(
            "replica_transfer", "class P:\n    def f(self):\n        self._timers.fetch.mark(1)\n"
        )
        == []
    )
