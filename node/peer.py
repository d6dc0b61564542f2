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
  A certificate with the observer role (``pki.OBSERVER_ROLE``) whose id is not a validator's
  may call ``FetchBlocks`` and ``Tip`` only: an observer never opens ``Exchange``, so nothing it
  could send reaches the replica, and it is never a link nor counted in any quorum.  Every
  authenticated call is counted by caller and method (``calls``), so a validator's metrics
  show what each observer did.
* **Two bounded queues per peer, consensus first.** Consensus messages and relayed client
  transactions wait in separate queues, each bounded in items and in bytes
  (``outbound_queue_max``, ``consensus_queue_bytes_max``, ``relay_queue_bytes_max``).  A frame is
  filled from the consensus queue first and only then with transactions, so a burst of client
  traffic can neither evict nor delay a vote.  When a queue is over a bound its oldest items are
  dropped and counted; consensus retransmits what matters (STATUS-driven), so a slow or dead peer
  costs memory only up to the bounds.  A single message that could never be sent (larger than
  the peer message limit) is refused at the queue and counted, rather than breaking the stream
  on every reconnect.
* **Reconnect.** A broken stream is reopened with exponential backoff (0.1 s doubling to 5 s).
* **Validation at the edge.** Frames and messages over the size limits are refused by gRPC or
  dropped here; message bytes are decoded strictly (``decode_message``) before they reach the
  replica, and undecodable ones are counted and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc

from ibledger.consensus import HashFn, MessageError, SignedMessage, decode_message, sha256
from ibledger.proto import peer_pb2, peer_pb2_grpc, types_pb2

from .errors import status_for
from .pki import OBSERVER_ROLE
from .revocations import RevocationList

log = logging.getLogger("ibledger.peer")

FRAME_ITEMS_MAX = 512
FRAME_BYTES_MAX = 2 * 1024 * 1024
BACKOFF_INITIAL_S = 0.1
# A peer that comes back is reached within a second: a restarted node counts as ready only once
# a quorum of peers sends it frames, and one attempt a second towards a down peer costs nothing.
BACKOFF_MAX_S = 1.0


@dataclass(slots=True)
class PeerLinkStats:
    connected: bool = False
    height: int = 0
    frames_sent: int = 0
    frames_received: int = 0
    dropped_outbound: int = 0
    dropped_relay: int = 0
    dropped_oversize: int = 0
    queued_bytes: int = 0
    queued_messages: int = 0  # consensus messages and relayed transactions waiting
    bytes_sent: int = 0  # payload bytes (messages and transactions) handed to the stream
    rejected_inbound: int = 0
    reconnects: int = 0
    last_error: str = ""
    last_received: float | None = None  # monotonic time of the last frame from this peer


@dataclass(slots=True)
class _Outgoing:
    messages: list[bytes] = field(default_factory=list)
    txs: list[bytes] = field(default_factory=list)


GENESIS_METADATA = "ibledger-genesis"
SUITE_METADATA = "ibledger-crypto-suite"
SUITE_MISMATCH = "SUITE_MISMATCH"
GENESIS_MISMATCH = "GENESIS_MISMATCH"


class _ByteQueue:
    """A FIFO of byte strings bounded in items and in total bytes; drops the oldest."""

    __slots__ = ("_items", "bytes")

    def __init__(self) -> None:
        self._items: deque[bytes] = deque()
        self.bytes = 0

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def push(self, data: bytes, items_max: int, bytes_max: int) -> int:
        """Append `data`; returns how many old items were dropped to respect the bounds."""
        self._items.append(data)
        self.bytes += len(data)
        dropped = 0
        while len(self._items) > 1 and (len(self._items) > items_max or self.bytes > bytes_max):
            self.bytes -= len(self._items.popleft())
            dropped += 1
        return dropped

    def take(self, into: list[bytes], items_max: int, budget: int) -> int:
        """Move items into `into` while they fit `budget` bytes (at least one if `into` is
        empty); returns the budget left."""
        items = self._items
        while items and len(into) < items_max:
            size = len(items[0])
            if into and size > budget:
                break
            into.append(items.popleft())
            self.bytes -= size
            budget -= size
        return budget


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
        self._consensus = _ByteQueue()
        self._relay = _ByteQueue()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def enqueue(self, data: bytes, is_tx: bool) -> None:
        owner = self._owner
        if len(data) > owner.message_bytes_max:
            self.stats.dropped_oversize += 1
            return
        # Towards a peer that is down, keep only a short backlog: what it missed is recovered
        # by retransmission and state transfer, and a long one would flood it when it returns.
        cap = (
            owner.consensus_queue_bytes_max
            if self.stats.connected
            else owner.offline_queue_bytes_max
        )
        if is_tx:
            self.stats.dropped_relay += self._relay.push(
                data, owner.outbound_queue_max, min(cap, owner.relay_queue_bytes_max)
            )
        else:
            self.stats.dropped_outbound += self._consensus.push(
                data, owner.outbound_queue_max, min(cap, owner.consensus_queue_bytes_max)
            )
        self.stats.queued_bytes = self._consensus.bytes + self._relay.bytes
        self.stats.queued_messages = len(self._consensus) + len(self._relay)
        self._ready.set()

    def _next_frame(self) -> _Outgoing:
        batch = _Outgoing()
        budget = FRAME_BYTES_MAX
        # Votes first: a frame takes transactions only once the consensus queue is empty.
        budget = self._consensus.take(batch.messages, FRAME_ITEMS_MAX, budget)
        if not self._consensus:
            self._relay.take(batch.txs, FRAME_ITEMS_MAX - len(batch.messages), budget)
        stats = self.stats
        stats.bytes_sent += sum(map(len, batch.messages)) + sum(map(len, batch.txs))
        stats.queued_bytes = self._consensus.bytes + self._relay.bytes
        stats.queued_messages = len(self._consensus) + len(self._relay)
        return batch

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"peer-link-{self.peer_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _frames(self) -> AsyncIterator[peer_pb2.PeerFrame]:
        while True:
            if not self._consensus and not self._relay:
                self._ready.clear()
                try:
                    # ``asyncio.timeout``, not ``wait_for``: no task per wait, and a loaded link
                    # waits here once per frame.
                    async with asyncio.timeout(1.0):
                        await self._ready.wait()
                except TimeoutError:
                    # A heartbeat: keeps the stream warm and tells the peer our height.
                    yield peer_pb2.PeerFrame(
                        sender=self._owner.node_id, height=self._owner.height()
                    )
                    continue
                # Woken by the first message: what the rest of this turn of the event loop
                # queues (the other votes of an input, a batch of relayed transactions) joins
                # the same frame, since each frame costs gRPC a write and the peer a read.
                await asyncio.sleep(0)
            batch = self._next_frame()
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
            channel: grpc.aio.Channel | None = None
            try:
                channel = self._owner.open_channel(self.peer_id, self.address)
                stub = peer_pb2_grpc.PeerStub(channel)
                call = stub.Exchange(self._frames(), metadata=self._owner.call_metadata)
                self.stats.connected = True
                async for _ in call:
                    backoff = BACKOFF_INITIAL_S
                # The server ended the stream cleanly (e.g. it is shutting down).
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                error = f"{exc.code().name}: {exc.details()}"
                if (exc.details() or "").startswith(
                    (GENESIS_MISMATCH, SUITE_MISMATCH)
                ) and error != self.stats.last_error:
                    log.error(
                        "peer refused this node: different genesis or crypto suite",
                        extra={"peer": self.peer_id, "detail": exc.details()},
                    )
                self.stats.last_error = error
            except Exception as exc:
                # Anything else (a channel in a bad state, a frame the stub cannot send) must not
                # end the link for good: it would never reconnect, and its error would surface
                # only at shutdown. Log it once per distinct error, back off and dial again.
                error = f"{type(exc).__name__}: {exc}"
                if error != self.stats.last_error:
                    log.warning(
                        "peer link failed; reconnecting",
                        extra={"peer": self.peer_id, "detail": error},
                        exc_info=True,
                    )
                self.stats.last_error = error
            finally:
                self.stats.connected = False
                if channel is not None:
                    with contextlib.suppress(Exception):
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
        on_message: Callable[[SignedMessage, int], None],
        on_txs: Callable[[str, list[bytes]], None],
        height: Callable[[], int],
        room: Callable[[], Awaitable[None]] | None = None,
        outbound_queue_max: int = 10_000,
        consensus_queue_bytes_max: int = 64 * 1024 * 1024,
        relay_queue_bytes_max: int = 16 * 1024 * 1024,
        message_bytes_max: int = 16 * 1024 * 1024 - 64 * 1024,
        offline_queue_bytes_max: int = 8 * 1024 * 1024,
        genesis_digest: bytes | None = None,
        crypto_suite: str | None = None,
        hash_fn: HashFn = sha256,
    ) -> None:
        self.node_id = node_id
        self._hash_fn = hash_fn  # the chain hash block bodies in peer messages are rebuilt with
        # Every call to a peer names this node's genesis and crypto suite; a peer with another
        # one refuses it (the suite first, since that refusal says more than a digest).
        self.call_metadata: tuple[tuple[str, str], ...] = (
            ((GENESIS_METADATA, genesis_digest.hex()),) if genesis_digest is not None else ()
        ) + (((SUITE_METADATA, crypto_suite),) if crypto_suite is not None else ())
        self.offline_queue_bytes_max = offline_queue_bytes_max
        self.outbound_queue_max = outbound_queue_max
        self.consensus_queue_bytes_max = consensus_queue_bytes_max
        self.relay_queue_bytes_max = relay_queue_bytes_max
        self.message_bytes_max = message_bytes_max
        self.open_channel = channel_factory
        self.height = height
        self._on_message = on_message
        self._on_txs = on_txs
        self._room = room
        self.links = {
            peer_id: _PeerLink(self, peer_id, address)
            for peer_id, address in peers.items()
            if peer_id != node_id
        }
        self.decode_errors = 0
        self._stopping: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        for link in self.links.values():
            link.start()

    def set_peers(self, peers: Mapping[str, str]) -> None:
        """Follow a change of validator set: links to new members start, links to members that
        left stop (what was queued for them is dropped)."""
        for peer_id in [p for p in self.links if p not in peers]:
            link = self.links.pop(peer_id)
            task = asyncio.get_running_loop().create_task(link.stop())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
        for peer_id, address in peers.items():
            if peer_id != self.node_id and peer_id not in self.links:
                link = _PeerLink(self, peer_id, address)
                self.links[peer_id] = link
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
            link.stats.last_received = time.monotonic()
        for data in frame.messages:
            try:
                message = decode_message(data, hash_fn=self._hash_fn)
            except MessageError:
                self.decode_errors += 1
                if link is not None:
                    link.stats.rejected_inbound += 1
                continue
            self._on_message(message, len(data))
        if frame.txs:
            self._on_txs(peer_id, list(frame.txs))

    async def room(self) -> None:
        """Wait until this node has room for more inbound frames (backpressure)."""
        if self._room is not None:
            await self._room()

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
        identify: Callable[[grpc.aio.ServicerContext[Any, Any]], str | None],
        require_tls_identity: bool = True,
        genesis_digest: bytes | None = None,
        on_refused: Callable[[str, str, str], None] = lambda reason, caller, detail: None,
        crypto_suite: str | None = None,
        role_of: Callable[[grpc.aio.ServicerContext[Any, Any]], str | None] = lambda c: None,
        tip: Callable[[], int] = lambda: 0,
        node_id: str = "",
        certificate_of: Callable[[grpc.aio.ServicerContext[Any, Any]], str | None] = (
            lambda c: None
        ),
        revoked: RevocationList | None = None,
        fetchers: frozenset[str] | None = None,
    ) -> None:
        self._certificate_of = certificate_of
        self._revoked = revoked or RevocationList()
        self._role_of = role_of
        self._tip = tip
        self._node_id = node_id
        # Authenticated calls by (caller id, method): what each validator and observer asked.
        self.calls: Counter[tuple[str, str]] = Counter()
        self._genesis_digest = genesis_digest
        self._crypto_suite = crypto_suite
        self._on_refused = on_refused
        self._identify = identify
        self._transport = transport
        self._members = members
        # Validators of earlier sets may still fetch blocks (to finish their own set's part).
        self._fetchers = fetchers if fetchers is not None else members
        self._fetch_blocks = fetch_blocks
        self._require_tls_identity = require_tls_identity

    def set_members(self, members: frozenset[str], fetchers: frozenset[str]) -> None:
        """Follow a change of validator set: from now on only ``members`` exchange frames (an
        open stream of a caller that left is cut at its next frame)."""
        self._members = members
        self._fetchers = fetchers | members

    async def _check_genesis(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if self._genesis_digest is None:
            return
        theirs = ""
        their_suite = ""
        for key, value in context.invocation_metadata() or ():
            if key == GENESIS_METADATA and isinstance(value, str):
                theirs = value
            elif key == SUITE_METADATA and isinstance(value, str):
                their_suite = value
        if self._crypto_suite is not None and their_suite and their_suite != self._crypto_suite:
            caller = self._identify(context) or context.peer()
            detail = (
                f"{SUITE_MISMATCH}: {caller} runs crypto suite {their_suite[:40]}, this node runs "
                f"{self._crypto_suite}; a chain's suite is fixed at genesis"
            )
            self._on_refused(SUITE_MISMATCH, caller, detail)
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, detail)
        ours = self._genesis_digest.hex()
        if theirs != ours:
            caller = self._identify(context) or context.peer()
            stated = theirs[:16] + "..." if theirs else "(not stated)"
            detail = (
                f"{GENESIS_MISMATCH}: {caller} runs genesis {stated}, this node runs "
                f"{ours[:16]}...; every validator of a network must start from the same genesis"
            )
            self._on_refused(GENESIS_MISMATCH, caller, detail)
            await context.abort(status_for(GENESIS_MISMATCH), detail)

    async def _authenticate(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        claimed: str,
        method: str,
        *,
        observers: bool = False,
    ) -> str:
        """The caller's id, once it may call ``method``: a validator, or with ``observers`` an
        observer too; anyone else is refused (and the call aborted)."""
        peer_id = await self._identity(context, claimed, method, observers)
        await self._check_revoked(context, peer_id)
        # Only a validator or an observer learns this node's genesis digest from the refusal.
        await self._check_genesis(context)
        self.calls[(peer_id, method)] += 1
        return peer_id

    async def _identity(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        claimed: str,
        method: str,
        observers: bool,
    ) -> str:
        peer_id = self._identify(context)
        if peer_id is None and not self._require_tls_identity:
            # In-process tests without TLS only: trust the claim (or serve an anonymous fetch).
            return claimed or "anonymous"
        if peer_id is not None and self._role_of(context) == OBSERVER_ROLE:
            # Checked before membership: an observer's certificate never speaks for a validator,
            # whatever name the CA wrote in it, so it may only read. (An observer that governance
            # is making a validator keeps reading with it until it has its validator's.)
            if observers:
                return peer_id
            detail = (
                f"FORBIDDEN: {peer_id} is an observer; it may fetch blocks but not call {method}"
            )
            self._on_refused("FORBIDDEN", peer_id, detail)
            await context.abort(status_for("FORBIDDEN"), detail)
        allowed = self._fetchers if observers else self._members
        if peer_id is None or peer_id not in allowed:
            detail = f"FORBIDDEN: {peer_id or 'an unidentified caller'} is not a validator"
            self._on_refused("FORBIDDEN", peer_id or context.peer(), detail)
            await context.abort(status_for("FORBIDDEN"), detail)
        assert peer_id is not None
        return peer_id

    async def _check_revoked(self, context: grpc.aio.ServicerContext[Any, Any], peer: str) -> None:
        """Refuse a caller whose certificate governance revoked (``contracts/revocations.py``)."""
        if not self._revoked.fingerprints:
            return
        fingerprint = self._certificate_of(context)
        if fingerprint is not None and fingerprint in self._revoked:
            detail = (
                f"CERTIFICATE_REVOKED: {peer}'s certificate {fingerprint[:16]}... was revoked by "
                "the consortium's governance; it needs a new certificate from the CA"
            )
            self._on_refused("CERTIFICATE_REVOKED", peer, detail)
            await context.abort(status_for("CERTIFICATE_REVOKED"), detail)

    async def Exchange(
        self,
        request_iterator: AsyncIterator[peer_pb2.PeerFrame],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[peer_pb2.PeerFrame]:
        peer_id: str | None = None
        checked = self._revoked.generation
        async for frame in request_iterator:
            if peer_id is None:
                peer_id = await self._authenticate(context, frame.sender, "Exchange")
            elif peer_id not in self._members:
                detail = f"FORBIDDEN: {peer_id} is no longer a validator of this node's set"
                self._on_refused("FORBIDDEN", peer_id, detail)
                await context.abort(status_for("FORBIDDEN"), detail)
            elif self._revoked.generation != checked:
                # The list changed under an open stream: from that block on, this caller's
                # frames count only while its certificate is not on it.
                checked = self._revoked.generation
                await self._check_revoked(context, peer_id)
            self._transport.receive_frame(peer_id, frame)
            # Read the next frame only when there is room: a flood waits in the sender's
            # bounded queue (which drops its oldest) rather than in this node's memory.
            await self._transport.room()
        return
        yield  # an async generator that answers nothing: the reverse direction has its own stream

    async def FetchBlocks(
        self, request: peer_pb2.FetchBlocksRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[types_pb2.Block]:
        await self._authenticate(context, "", "FetchBlocks", observers=True)
        for block in await asyncio.to_thread(
            self._fetch_blocks, request.from_height, request.to_height
        ):
            yield block

    async def Tip(
        self, request: peer_pb2.TipRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> peer_pb2.TipReply:
        await self._authenticate(context, "", "Tip", observers=True)
        return peer_pb2.TipReply(node_id=self._node_id, height=self._tip())
