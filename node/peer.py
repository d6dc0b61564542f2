"""Peer transport: long-lived gRPC streams between validators, over mutual TLS.

Theory of operation
-------------------
Each validator opens one outbound ``Exchange`` stream to every other validator and receives one
from each; a stream carries ``PeerFrame``s that batch many consensus messages and relayed client
transactions (one stream message costs about as much as 30 small messages would separately).

* **Identity.** The peer port requires a client certificate signed by the consortium CA; the
  server maps the certificate's common name to a validator id and refuses anyone else
  (PERMISSION_DENIED).  Consensus messages are also signed, so a message is attributed by its
  signature, never by the link it came on; the TLS identity decides who may talk at all.
* **Bounded queues.** Every peer has an outbound queue of ``outbound_queue_max`` items; when it is
  full the oldest item is dropped and counted.  Consensus retransmits what matters (STATUS-driven
  catch-up), so a slow or dead peer costs memory only up to the bound.
* **Reconnect.** A broken stream is reopened with exponential backoff (0.1 s doubling to 5 s).
* **Validation at the edge.** Frames and messages over the size limits are refused by gRPC or
  dropped here; message bytes are decoded strictly (``decode_message``) before they reach the
  replica, and undecodable ones are counted and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

import grpc

from ibledger.consensus import MessageError, SignedMessage, decode_message
from ibledger.proto import peer_pb2, peer_pb2_grpc, types_pb2

log = logging.getLogger("ibledger.peer")

FRAME_ITEMS_MAX = 512
FRAME_BYTES_MAX = 2 * 1024 * 1024
BACKOFF_INITIAL_S = 0.1
BACKOFF_MAX_S = 5.0


@dataclass(slots=True)
class PeerLinkStats:
    connected: bool = False
    height: int = 0
    frames_sent: int = 0
    frames_received: int = 0
    dropped_outbound: int = 0
    rejected_inbound: int = 0
    reconnects: int = 0
    last_error: str = ""


@dataclass(slots=True)
class _Outgoing:
    messages: list[bytes] = field(default_factory=list)
    txs: list[bytes] = field(default_factory=list)


class _PeerLink:
    """The outbound side towards one peer: a bounded queue and the task that drains it."""

    def __init__(
        self,
        owner: PeerTransport,
        peer_id: str,
        address: str,
    ) -> None:
        self.peer_id = peer_id
        self.address = address
        self.stats = PeerLinkStats()
        self._owner = owner
        self._queue: deque[tuple[bool, bytes]] = deque()  # (is_tx, bytes)
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def enqueue(self, data: bytes, is_tx: bool) -> None:
        if len(self._queue) >= self._owner.outbound_queue_max:
            self._queue.popleft()
            self.stats.dropped_outbound += 1
        self._queue.append((is_tx, data))
        self._ready.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"peer-link-{self.peer_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _frames(self) -> AsyncIterator[peer_pb2.PeerFrame]:
        while True:
            if not self._queue:
                self._ready.clear()
                try:
                    await asyncio.wait_for(self._ready.wait(), timeout=1.0)
                except TimeoutError:
                    # A heartbeat: keeps the stream warm and tells the peer our height.
                    yield peer_pb2.PeerFrame(
                        sender=self._owner.node_id, height=self._owner.height()
                    )
                    continue
            batch = _Outgoing()
            size = 0
            while self._queue and len(batch.messages) + len(batch.txs) < FRAME_ITEMS_MAX:
                is_tx, data = self._queue[0]
                if size and size + len(data) > FRAME_BYTES_MAX:
                    break
                self._queue.popleft()
                (batch.txs if is_tx else batch.messages).append(data)
                size += len(data)
            self.stats.frames_sent += 1
            yield peer_pb2.PeerFrame(
                sender=self._owner.node_id,
                messages=batch.messages,
                txs=batch.txs,
                height=self._owner.height(),
            )

    async def _run(self) -> None:
        backoff = BACKOFF_INITIAL_S
        while True:
            channel = self._owner.open_channel(self.peer_id, self.address)
            try:
                stub = peer_pb2_grpc.PeerStub(channel)
                call = stub.Exchange(self._frames())
                self.stats.connected = True
                async for _ in call:
                    backoff = BACKOFF_INITIAL_S
                # The server ended the stream cleanly (e.g. it is shutting down).
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                self.stats.last_error = f"{exc.code().name}: {exc.details()}"
            finally:
                self.stats.connected = False
                await channel.close(grace=None)
            self.stats.reconnects += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)


class PeerTransport:
    """Outbound links to every other validator plus the inbound ``Peer`` service."""

    def __init__(
        self,
        *,
        node_id: str,
        peers: Mapping[str, str],
        channel_factory: Callable[[str, str], grpc.aio.Channel],
        on_message: Callable[[SignedMessage], None],
        on_txs: Callable[[str, list[bytes]], None],
        height: Callable[[], int],
        outbound_queue_max: int = 10_000,
    ) -> None:
        self.node_id = node_id
        self.outbound_queue_max = outbound_queue_max
        self.open_channel = channel_factory
        self.height = height
        self._on_message = on_message
        self._on_txs = on_txs
        self.links = {
            peer_id: _PeerLink(self, peer_id, address)
            for peer_id, address in peers.items()
            if peer_id != node_id
        }
        self.decode_errors = 0

    async def start(self) -> None:
        for link in self.links.values():
            link.start()

    async def stop(self) -> None:
        for link in self.links.values():
            await link.stop()

    def send(self, to: str, data: bytes) -> None:
        link = self.links.get(to)
        if link is not None:
            link.enqueue(data, is_tx=False)

    def broadcast(self, data: bytes) -> None:
        for link in self.links.values():
            link.enqueue(data, is_tx=False)

    def relay_txs(self, envelopes: list[bytes]) -> None:
        for link in self.links.values():
            for envelope in envelopes:
                link.enqueue(envelope, is_tx=True)

    def receive_frame(self, peer_id: str, frame: peer_pb2.PeerFrame) -> None:
        link = self.links.get(peer_id)
        if link is not None:
            link.stats.frames_received += 1
            link.stats.height = max(link.stats.height, frame.height)
        for data in frame.messages:
            try:
                message = decode_message(data)
            except MessageError:
                self.decode_errors += 1
                if link is not None:
                    link.stats.rejected_inbound += 1
                continue
            self._on_message(message)
        if frame.txs:
            self._on_txs(peer_id, list(frame.txs))

    def peer_heights(self) -> dict[str, int]:
        return {peer_id: link.stats.height for peer_id, link in self.links.items()}


class PeerService(peer_pb2_grpc.PeerServicer):
    """The inbound side: accepts frames from authenticated validators, serves block fetches."""

    def __init__(
        self,
        transport: PeerTransport,
        members: frozenset[str],
        fetch_blocks: Callable[[int, int], list[types_pb2.Block]],
        *,
        identify: Callable[[grpc.aio.ServicerContext], str | None],
        require_tls_identity: bool = True,
    ) -> None:
        self._identify = identify
        self._transport = transport
        self._members = members
        self._fetch_blocks = fetch_blocks
        self._require_tls_identity = require_tls_identity

    async def _authenticate(self, context: grpc.aio.ServicerContext, claimed: str) -> str:
        peer_id = self._identify(context)
        if peer_id is None and not self._require_tls_identity:
            # In-process tests without TLS only: trust the claim (or serve an anonymous fetch).
            return claimed or "anonymous"
        if peer_id is None or peer_id not in self._members:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"FORBIDDEN: {peer_id or 'an unidentified caller'} is not a validator",
            )
        assert peer_id is not None
        return peer_id

    async def Exchange(
        self,
        request_iterator: AsyncIterator[peer_pb2.PeerFrame],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[peer_pb2.PeerFrame]:
        peer_id: str | None = None
        async for frame in request_iterator:
            if peer_id is None:
                peer_id = await self._authenticate(context, frame.sender)
            self._transport.receive_frame(peer_id, frame)
        return
        yield  # an async generator that answers nothing: the reverse direction has its own stream

    async def FetchBlocks(
        self, request: peer_pb2.FetchBlocksRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[types_pb2.Block]:
        await self._authenticate(context, "")
        for block in await asyncio.to_thread(
            self._fetch_blocks, request.from_height, request.to_height
        ):
            yield block
