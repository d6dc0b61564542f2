"""A replica whose executed state root contradicts a stable checkpoint certificate raises the
core's state-root-divergence evidence; the node's runtime then stops (no more votes, and the
node shuts down instead of serving answers from a state the network does not have)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from ibledger.consensus import Evidence, Replica, SignedMessage
from ibledger.node.ledger import Ledger
from ibledger.node.runtime import PeerMessage, ReplicaRuntime, StateDiverged


class _Checkpoint:
    seq = 64


class _DivergedReplica:
    stable_checkpoint = _Checkpoint()

    def __init__(self) -> None:
        self.stepped = 0

    def step(self, message: SignedMessage) -> list[Any]:
        self.stepped += 1
        return [Evidence("state-root-divergence", "node3", ())]


class _NoPeers:
    def send(self, to: str, data: bytes) -> None:
        raise AssertionError("a diverged replica must not send")

    def broadcast(self, data: bytes) -> None:
        raise AssertionError("a diverged replica must not send")


async def test_the_runtime_stops_on_its_own_state_divergence() -> None:
    replica = _DivergedReplica()
    runtime = ReplicaRuntime(
        cast(Replica, replica),
        cast(Ledger, None),
        _NoPeers(),
        on_committed=lambda *_: None,
        on_fetch=lambda _: None,
    )
    message = cast(SignedMessage, object())
    runtime.offer(PeerMessage(message, 10))
    runtime.offer(PeerMessage(message, 10))
    await asyncio.wait_for(runtime.run(), timeout=30)  # returns: the runtime has stopped
    assert isinstance(runtime.failure, StateDiverged)
    assert "checkpoint 64" in str(runtime.failure)
    assert replica.stepped == 1  # nothing after the divergence is processed
