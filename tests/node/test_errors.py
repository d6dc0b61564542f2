"""One table of error codes: every code node/ and contracts/ produce has exactly one gRPC status,
and the gRPC edge answers every handler's NodeError with it, unary calls and streams alike.

The codes are collected from the source, not listed by hand: every call that hands a string
constant (or a module-level name bound to one) to a parameter named ``code`` of a function or
class defined in node/ or contracts/ (``NodeError``, ``TxError``, ``ContractError``,
``QueryError``, ``Verdict``, ``Outcome``, ``AdmissionResult``, ``status_for`` ...), the string
defaults of such parameters, and the one data table of codes (``contracts.identifiers.CODES``).
"""

from __future__ import annotations

import ast
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from ibledger.contracts import identifiers
from ibledger.node import errors
from ibledger.node.errors import STATUS, NodeError, status_for
from ibledger.node.grpc_edge import RateLimitedLog, add_service
from ibledger.proto import ledger_pb2, ledger_pb2_grpc, types_pb2

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("node", "contracts")
# Parameters called ``code`` that hold something other than an error code.
NOT_ERROR_CODES = {
    "currency_minor_unit": "an ISO 4217 currency code",
    "_reject_ext": "a msgpack extension type number",
}


def _trees() -> Iterator[tuple[Path, ast.Module]]:
    for package in SOURCES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _code_positions(trees: list[tuple[Path, ast.Module]]) -> dict[str, set[int]]:
    """Name of a function or class -> the positions of its ``code`` parameter (self dropped).

    A class without an ``__init__`` or fields of its own (``class KeyFileError(CryptoError)``)
    takes its base's."""
    positions: dict[str, set[int]] = {}
    bases: dict[str, list[str]] = {}

    def note(name: str, params: list[str]) -> None:
        if params and params[0] in ("self", "cls"):
            params = params[1:]
        if "code" in params:
            positions.setdefault(name, set()).add(params.index("code"))

    for _, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                note(node.name, [a.arg for a in node.args.posonlyargs + node.args.args])
            elif isinstance(node, ast.ClassDef):
                init = [
                    n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"
                ]
                fields = [
                    n.target.id
                    for n in node.body
                    if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
                ]
                if init:
                    arguments = init[0].args
                    note(node.name, [a.arg for a in arguments.posonlyargs + arguments.args])
                elif fields:  # a dataclass: its fields, in order
                    note(node.name, fields)
                else:
                    bases[node.name] = [b.id for b in node.bases if isinstance(b, ast.Name)]
    for name in NOT_ERROR_CODES:
        positions.pop(name, None)
    inherited = True
    while inherited:
        inherited = False
        for name, parents in bases.items():
            for parent in parents:
                if parent in positions and not positions[parent] <= positions.get(name, set()):
                    positions.setdefault(name, set()).update(positions[parent])
                    inherited = True
    return positions


def _string_constants(tree: ast.Module) -> dict[str, str]:
    constants: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    constants[target.id] = node.value.value
    return constants


def collect_codes() -> tuple[dict[str, set[str]], set[str]]:
    """Every code the source produces (code -> the files), and the callables carrying codes."""
    trees = list(_trees())
    positions = _code_positions(trees)
    codes: dict[str, set[str]] = {}
    for path, tree in trees:
        where = str(path.relative_to(ROOT))
        constants = _string_constants(tree)

        def value(expression: ast.expr, constants: dict[str, str] = constants) -> str | None:
            if isinstance(expression, ast.Constant) and isinstance(expression.value, str):
                return expression.value
            if isinstance(expression, ast.Name):
                return constants.get(expression.id)
            return None

        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                arguments = node.args.posonlyargs + node.args.args
                defaults = list(zip(arguments[::-1], node.args.defaults[::-1], strict=False))
                defaults += [
                    (a, d)
                    for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True)
                    if d is not None
                ]
                for argument, default in defaults:
                    code = value(default) if argument.arg == "code" else None
                    if code is not None:
                        codes.setdefault(code, set()).add(where)
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            given = [keyword.value for keyword in node.keywords if keyword.arg == "code"]
            given += [node.args[p] for p in positions.get(name or "", ()) if p < len(node.args)]
            for expression in given:
                code = value(expression)
                if code is not None:
                    codes.setdefault(code, set()).add(where)
    for code in identifiers.CODES.values():
        codes.setdefault(code, set()).add("contracts/identifiers.py (CODES)")
    return codes, set(positions)


def test_the_collector_sees_every_kind_of_code_carrier() -> None:
    # If a refactor renamed the parameter, the scan would find nothing and prove nothing.
    codes, carriers = collect_codes()
    for carrier in (
        "NodeError",
        "TxError",
        "CryptoError",
        "Verdict",
        "AdmissionResult",
        "ContractError",
        "QueryError",
        "Outcome",
        "status_for",
        "KeyFileError",  # inherits CryptoError's signature
    ):
        assert carrier in carriers
    for code, source in (
        ("BAD_SIGNATURE", "node/verifier.py"),
        ("MALFORMED_ENVELOPE", "node/tx.py"),
        ("UNKNOWN_QUERY", "contracts/queries.py"),
        ("WRONG_STATE", "contracts/bills.py"),
        ("MALFORMED_REQUEST", "node/grpc_edge.py"),
        ("GENESIS_MISMATCH", "node/peer.py"),
        ("KEY_FILE_MISSING", "node/keyfile.py"),
    ):
        assert source in codes.get(code, set()), code
    assert len(codes) > 100


def test_every_code_has_exactly_one_status() -> None:
    codes, _ = collect_codes()
    missing = {code: sorted(files) for code, files in codes.items() if code not in STATUS}
    assert not missing, f"codes without a gRPC status in node/errors.py: {missing}"
    unused = sorted(set(STATUS) - set(codes))
    assert not unused, f"node/errors.py lists codes nothing produces: {unused}"


def test_the_table_has_no_key_twice() -> None:
    # A dict literal keeps the last of two equal keys without a word: read the source.
    tree = ast.parse(Path(errors.__file__).read_text(encoding="utf-8"))
    tables = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict) and len(node.keys) > 50  # the STATUS literal
    ]
    assert len(tables) == 1
    keys = [key.value for key in tables[0].keys if isinstance(key, ast.Constant)]
    assert len(keys) == len(tables[0].keys) == len(STATUS)
    assert not STATUS.keys() ^ set(keys)


def test_table_values() -> None:
    assert status_for("UNKNOWN_QUERY") is grpc.StatusCode.NOT_FOUND
    assert status_for("WRONG_CHAIN") is grpc.StatusCode.FAILED_PRECONDITION
    assert NodeError("TIMEOUT", "x").status is grpc.StatusCode.DEADLINE_EXCEEDED
    assert NodeError("TIMEOUT", "late").details == "TIMEOUT: late"
    with pytest.raises(TypeError):
        STATUS["TIMEOUT"] = grpc.StatusCode.OK  # type: ignore[index]


# --- the edge answers what handlers raise ---------------------------------------------------------


class _Raising(ledger_pb2_grpc.LedgerServicer):
    async def GetStatus(self, request: Any, context: Any) -> ledger_pb2.NodeStatus:
        raise NodeError("NOT_READY", "the node is starting")

    async def GetBlock(self, request: Any, context: Any) -> types_pb2.Block:
        raise ValueError("a bug")

    async def StreamBlocks(self, request: Any, context: Any) -> AsyncIterator[types_pb2.Block]:
        yield types_pb2.Block(block_hash=b"first")
        raise NodeError("VIEWER_REQUIRED", "sign the request")


async def test_the_edge_answers_node_errors_and_bugs(caplog: pytest.LogCaptureFixture) -> None:
    refused: list[tuple[str, str]] = []
    server = grpc.aio.server()
    add_service(
        server,
        _Raising(),
        ledger_pb2.DESCRIPTOR.services_by_name["Ledger"],
        RateLimitedLog(logging.getLogger("test")),
        on_refused=lambda method, peer, exc: refused.append((method, exc.code)),
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = ledger_pb2_grpc.LedgerStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.GetStatus(ledger_pb2.GetStatusRequest(), timeout=30)
            assert raised.value.code() is grpc.StatusCode.UNAVAILABLE
            assert raised.value.details() == "NOT_READY: the node is starting"

            with (
                caplog.at_level(logging.ERROR, "ibledger.edge"),
                pytest.raises(grpc.aio.AioRpcError) as raised,
            ):
                await stub.GetBlock(ledger_pb2.GetBlockRequest(height=1), timeout=30)
            assert raised.value.code() is grpc.StatusCode.INTERNAL
            assert "a bug" not in (raised.value.details() or "")
            assert any("GetBlock" in record.getMessage() for record in caplog.records)

            received = []
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                async for block in stub.StreamBlocks(ledger_pb2.StreamBlocksRequest(), timeout=30):
                    received.append(block.block_hash)
            assert received == [b"first"]
            assert raised.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert raised.value.details() == "VIEWER_REQUIRED: sign the request"
    finally:
        await server.stop(None)
    assert refused == [("GetStatus", "NOT_READY"), ("StreamBlocks", "VIEWER_REQUIRED")]
