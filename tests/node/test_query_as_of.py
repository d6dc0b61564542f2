"""The Query API as of a past height (QueryRequest.as_of_height): answers equal what the same
query answered at that height, heights above the tip or not indexed are refused with their
codes, and what a viewer may see is decided by its record now."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ibledger.contracts.codec import canonical_decode
from ibledger.node import storage_keys as keys
from ibledger.node.api import CommitFeed, LedgerService, NodeView
from ibledger.node.errors import NodeError
from ibledger.node.ledger import Ledger
from ibledger.node.memory_store import MemoryStore
from ibledger.node.tx import QUERY_SIGNING_DOMAIN, build_transaction
from ibledger.proto import ledger_pb2

from .conftest import CHAIN_ID, GENESIS_TIME_MS, Directory, make_genesis, register_tx

HOUR_MS = 3600 * 1000


@pytest.fixture
def ledger(directory: Directory) -> Iterator[Ledger]:
    """Block 1 registers R1, block 2 registers R2, block 3 deactivates REG (a regulator at
    genesis), block 4 registers R4."""
    genesis = make_genesis(directory)
    regulator = directory.add("REG")
    participants = genesis["participants"]
    assert isinstance(participants, list)
    participants.append(
        {
            "id": "REG",
            "name": "Regulator",
            "roles": ["regulator"],
            "keys": [{"suite": directory.suite, "public_key": regulator.public_key.hex()}],
        }
    )
    ledger = Ledger.open_store(MemoryStore(), genesis, verifier_workers=1)
    deactivate = directory.tx(
        "ADMIN",
        "governance.propose",
        nonce=3,
        action="identity.deactivate",
        args={"participant": "REG"},
        expires_at_ms=GENESIS_TIME_MS + HOUR_MS,
    )
    blocks = [
        [register_tx(directory, "R1", nonce=1)],
        [register_tx(directory, "R2", nonce=2)],
        [deactivate],
        [register_tx(directory, "R4", nonce=4)],
    ]
    for envelopes in blocks:
        header = ledger.next_header(ledger.tip_timestamp_ms + 1000, envelopes)
        applied = ledger.append_block(header, envelopes, certificate=b"cert")
        assert [result.code for result in applied.results] == ["OK"], applied.results
    try:
        yield ledger
    finally:
        ledger.close()


def _service(ledger: Ledger) -> LedgerService:
    return LedgerService(
        node_id="node0",
        ledger=ledger,
        admission=None,
        feed=CommitFeed(),
        node_view=lambda: NodeView(0, "node0", False),
        mempool_size=lambda: 0,
        peers=lambda: [],
        version="test",
        read_only="this node serves reads only",
    )


def _ask(
    directory: Directory,
    ledger: Ledger,
    viewer: str,
    name: str,
    args: dict[str, Any],
    height: int | None = None,
) -> tuple[Any, int]:
    envelope = build_transaction(
        directory.keys[viewer],
        chain_id=CHAIN_ID,
        sender=viewer,
        operation="query." + name,
        args=args,
        expires_at_ms=int(time.time() * 1000) + 60_000,
        domain=QUERY_SIGNING_DOMAIN,
    )
    request = ledger_pb2.QueryRequest(envelope=envelope, as_of_height=height)
    response = asyncio.run(_service(ledger)._query(request))
    return canonical_decode(response.result), response.height


def _refusal(
    directory: Directory, ledger: Ledger, viewer: str, name: str, args: dict[str, Any], height: int
) -> NodeError:
    with pytest.raises(NodeError) as raised:
        _ask(directory, ledger, viewer, name, args, height)
    return raised.value


def test_each_height_answers_what_the_query_answered_then(directory: Directory) -> None:
    """The answers collected after each block equal the as-of answers asked at the end."""
    genesis = make_genesis(directory)
    ledger = Ledger.open_store(MemoryStore(), genesis, verifier_workers=1)
    try:
        then: list[Any] = [_ask(directory, ledger, "ADMIN", "participants", {})]
        for height in range(1, 4):
            envelopes = [register_tx(directory, f"P{height}", nonce=height)]
            header = ledger.next_header(ledger.tip_timestamp_ms + 1000, envelopes)
            ledger.append_block(header, envelopes, certificate=b"cert")
            then.append(_ask(directory, ledger, "ADMIN", "participants", {}))
        assert [len(answer) for answer, _ in then] == [1, 2, 3, 4]
        for height, (answer, answered_at) in enumerate(then):
            assert answered_at == height
            assert _ask(directory, ledger, "ADMIN", "participants", {}, height) == (answer, height)
    finally:
        ledger.close()


def test_point_queries_and_range_queries_as_of_a_height(
    directory: Directory, ledger: Ledger
) -> None:
    missing = _refusal(directory, ledger, "ADMIN", "participant", {"id": "R2"}, 1)
    assert missing.code == "NOT_FOUND"
    found, height = _ask(directory, ledger, "ADMIN", "participant", {"id": "R2"}, 2)
    assert (found["id"], height) == ("R2", 2)
    assert found == _ask(directory, ledger, "ADMIN", "participant", {"id": "R2"})[0]
    ids = [row["id"] for row in _ask(directory, ledger, "ADMIN", "participants", {}, 2)[0]]
    assert ids == ["ADMIN", "R1", "R2", "REG"]
    regulator_then = _ask(directory, ledger, "ADMIN", "participant", {"id": "REG"}, 2)[0]
    regulator_now = _ask(directory, ledger, "ADMIN", "participant", {"id": "REG"})[0]
    assert (regulator_then["active"], regulator_now["active"]) == (True, False)


def test_heights_above_the_tip_or_not_indexed_are_refused(
    directory: Directory, ledger: Ledger
) -> None:
    future = _refusal(directory, ledger, "ADMIN", "participants", {}, ledger.height + 1)
    assert future.code == "HEIGHT_IN_FUTURE" and "chain is at 4" in future.message
    assert _ask(directory, ledger, "ADMIN", "participants", {}, 0)[1] == 0
    # An index that stops short of the tip (a catch-up not finished) answers only up to it.
    ledger._store.write([(keys.META_ARCHIVE_HEIGHT, keys.encode_height(2))], sync=True)
    unavailable = _refusal(directory, ledger, "ADMIN", "participants", {}, 3)
    assert unavailable.code == "HEIGHT_UNAVAILABLE" and "heights 0 to 2" in unavailable.message
    assert _ask(directory, ledger, "ADMIN", "participants", {}, 2)[1] == 2


def test_the_viewer_is_authorised_by_its_record_now(directory: Directory, ledger: Ledger) -> None:
    """REG was a regulator until block 3: at height 2 the data is that of height 2, but REG's
    role is read from the current state, where it is deactivated."""
    own = _ask(directory, ledger, "ADMIN", "positions", {"participant": "ADMIN"}, 2)[0]
    assert own["participant"] == "ADMIN"
    refused = _refusal(directory, ledger, "REG", "positions", {"participant": "ADMIN"}, 2)
    assert refused.code == "FORBIDDEN"
