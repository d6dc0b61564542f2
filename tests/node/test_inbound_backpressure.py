"""Inbound peer messages are bounded in bytes: above the budget the receiver waits (and so, by
gRPC flow control, does the sender) until the replica has consumed the backlog."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from ibledger.consensus import Replica, SignedMessage
from ibledger.node.ledger import Ledger
from ibledger.node.runtime import PeerMessage, ReplicaRuntime


class _SlowReplica:
    def __init__(self) -> None:
        self.stepped = 0
        self.gate = asyncio.Event()

    def step(self, message: SignedMessage) -> list[Any]:
        self.stepped += 1
        return []


class _NoPeers:
    def send(self, to: str, data: bytes) -> None:
        pass

    def broadcast(self, data: bytes) -> None:
        pass


async def test_the_receiver_waits_above_the_inbox_byte_budget() -> None:
    replica = _SlowReplica()
    runtime = ReplicaRuntime(
        cast(Replica, replica),
        cast(Ledger, None),
        _NoPeers(),
        on_committed=lambda *_: None,
        on_fetch=lambda _: None,
        inbox_peer_bytes_max=1_000,
    )
    message = cast(SignedMessage, object())
    for _ in range(3):
        assert runtime.offer(PeerMessage(message, 400))
    assert runtime.peer_bytes_waiting == 1_200
    waiting = asyncio.create_task(runtime.room())
    await asyncio.sleep(0)
    assert not waiting.done()  # over budget: the receiver must not read the next frame
    runner = asyncio.create_task(runtime.run())
    try:
        await asyncio.wait_for(waiting, timeout=30)
        assert runtime.peer_bytes_waiting <= 1_000
        await asyncio.wait_for(_drained(runtime), timeout=30)
        assert replica.stepped == 3
    finally:
        runner.cancel()


async def _drained(runtime: ReplicaRuntime) -> None:
    while runtime.peer_bytes_waiting:
        await asyncio.sleep(0.01)
