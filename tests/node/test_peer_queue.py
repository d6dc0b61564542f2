"""Outbound peer queues: consensus before relayed transactions, bounded in items and bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc

from ibledger.node.peer import FRAME_BYTES_MAX, PeerTransport


def _no_channel(peer_id: str, address: str) -> grpc.aio.Channel:
    raise AssertionError("the queue tests never connect")


def _transport(
    channel_factory: Callable[[str, str], grpc.aio.Channel] = _no_channel, **bounds: int
) -> PeerTransport:
    return PeerTransport(
        node_id="v0",
        peers={"v0": "a:1", "v1": "b:1"},
        channel_factory=channel_factory,
        on_message=lambda sm, size: None,
        on_txs=lambda peer, txs: None,
        height=lambda: 0,
        **bounds,
    )


def test_a_transaction_burst_neither_evicts_nor_delays_votes() -> None:
    transport = _transport(relay_queue_bytes_max=1 << 20, consensus_queue_bytes_max=1 << 20)
    link = transport.links["v1"]
    transport.relay_txs([b"t" * 1024] * 5_000)  # 5 MB offered to a 1 MiB relay queue
    votes = [b"vote-%d" % i for i in range(100)]
    for vote in votes:
        transport.send("v1", vote)
    assert link.stats.dropped_outbound == 0
    assert link.stats.dropped_relay >= 5_000 - 1024
    assert link.stats.queued_bytes <= (1 << 20) + sum(len(v) for v in votes)
    first = link._next_frame()
    assert first.messages == votes  # every vote, in order, ahead of any transaction
    assert first.txs and sum(map(len, first.txs)) <= FRAME_BYTES_MAX


def test_consensus_queue_is_bounded_in_bytes_and_refuses_unsendable_messages() -> None:
    transport = _transport(consensus_queue_bytes_max=1 << 20, message_bytes_max=1 << 19)
    link = transport.links["v1"]
    for _ in range(40):
        transport.broadcast(b"b" * 100_000)  # 4 MB of bodies into a 1 MiB queue
    assert link.stats.queued_bytes <= 1 << 20
    assert link.stats.dropped_outbound == 40 - (1 << 20) // 100_000
    transport.send("v1", b"x" * ((1 << 19) + 1))
    assert link.stats.dropped_oversize == 1
    frame = link._next_frame()
    assert frame.messages and sum(map(len, frame.messages)) <= FRAME_BYTES_MAX


def test_a_peer_that_is_down_gets_only_a_short_backlog() -> None:
    # Queued while the peer is unreachable, the full consensus budget would flood it on return;
    # what it missed comes back through retransmission and state transfer instead.
    transport = _transport(consensus_queue_bytes_max=64 << 20, offline_queue_bytes_max=1 << 20)
    link = transport.links["v1"]
    assert not link.stats.connected
    for _ in range(40):
        transport.broadcast(b"b" * 100_000)
    assert link.stats.queued_bytes <= 1 << 20
    link.stats.connected = True
    for _ in range(40):
        transport.broadcast(b"b" * 100_000)
    assert link.stats.queued_bytes > 4 << 20


def test_a_link_that_fails_unexpectedly_dials_again_and_stops_cleanly() -> None:
    # An error other than an RPC error (here from opening the channel) once ended the link's
    # task for good: it never reconnected, and its exception surfaced only at shutdown, where
    # it cut the node's stop short before the audit log was closed.
    dials: list[str] = []

    def failing_channel(peer_id: str, address: str) -> grpc.aio.Channel:
        dials.append(peer_id)
        raise ValueError("channel in a bad state")

    async def scenario() -> None:
        transport = _transport(failing_channel)
        await transport.start()
        link = transport.links["v1"]
        deadline = asyncio.get_running_loop().time() + 30  # bounds a hang only
        while len(dials) < 3:
            assert asyncio.get_running_loop().time() < deadline, dials
            await asyncio.sleep(0.05)
        assert link.stats.last_error == "ValueError: channel in a bad state"
        assert link.stats.reconnects >= 2
        await transport.stop()  # does not raise

    asyncio.run(scenario())
