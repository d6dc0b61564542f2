"""State transfer: fetch committed blocks with their certificates from peers when behind.

The consensus core decides *that* the node is behind (a stable checkpoint or commit certificates
beyond its window, or a restart from an old ledger) and emits ``FetchBlocks``; this module decides
*whom* to ask.  It tries the peers the core hinted first, then the others by the height they last
reported, downloads at most ``RANGE_MAX`` blocks per request (the next range while the node
applies the current one), checks that each served block is
well formed and that its transactions hash to the header's digest (at most ``RANGE_BYTES_MAX``
of transactions per round), and hands the blocks to the
core, which accepts only those with valid commit certificates.  A peer whose blocks do not move
the ledger forward (forged, truncated, or simply wrong) is marked suspect and skipped for a while;
the next peer is tried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

import grpc

from ibledger.consensus import (
    Block,
    CommittedBlock,
    FetchBlocks,
    HashFn,
    MessageError,
    decode_commit_certificate,
)
from ibledger.contracts.codec import CodecError, canonical_decode
from ibledger.proto import peer_pb2, peer_pb2_grpc, types_pb2

from .blocks import BlockFormatError, BlockHeader
from .ledger import Ledger
from .runtime import TransferredBlocks

log = logging.getLogger("ibledger.state_transfer")

RANGE_MAX = 256
# Bytes of transactions per round, served and held: a range of full blocks would otherwise be
# up to RANGE_MAX times the block byte limit in memory at once, on both sides. The fetching
# side holds two rounds: the one it applies and the next, downloading meanwhile.
RANGE_BYTES_MAX = 16 * 1024 * 1024
SUSPECT_S = 30.0
PROGRESS_WAIT_S = 10.0
FETCH_TIMEOUT_S = 20.0


class ServedBlockError(ValueError):
    """A block a peer served that is not even well formed."""


def committed_from_pb(
    block: types_pb2.Block, parent_digest: bytes, hash_fn: HashFn
) -> CommittedBlock:
    try:
        header = BlockHeader.from_dict(canonical_decode(block.header.encoded))
        certificate = decode_commit_certificate(block.certificate)
    except (CodecError, BlockFormatError, MessageError) as exc:
        raise ServedBlockError(str(exc)) from None
    body = Block(header.height, header.proposal_ms, tuple(block.txs), hash_fn)
    if body.digest != header.consensus_digest(hash_fn):
        raise ServedBlockError(f"block {header.height}: transactions do not match the header")
    return CommittedBlock(
        block=body,
        certificate=certificate,
        parent_digest=parent_digest,
        timestamp_ms=header.timestamp_ms,
    )


class BlockJudge(Protocol):
    """Who checks fetched blocks and executes the ones whose commit proof holds: the replica
    runtime on a validator, the observer's follower (``observer.py``) on an observer. Each
    resolves ``TransferredBlocks.done`` once the blocks are judged."""

    def offer(self, item: TransferredBlocks) -> bool: ...


class StateTransfer:
    def __init__(
        self,
        *,
        node_id: str,
        ledger: Ledger,
        runtime: BlockJudge,
        peers: dict[str, str],
        channel_factory: Callable[[str, str], grpc.aio.Channel],
        peer_heights: Callable[[], dict[str, int]],
        genesis_time_ms: int,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self._metadata = metadata
        self._node_id = node_id
        self._ledger = ledger
        self._runtime = runtime
        self._peers = {k: v for k, v in peers.items() if k != node_id}
        self._open_channel = channel_factory
        self._peer_heights = peer_heights
        self._genesis_time_ms = genesis_time_ms
        self._suspect_until: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self.blocks_fetched = 0
        self.bad_peers_seen = 0
        # Told the seconds of each batch fetched and applied while catching up (metrics).
        self.on_batch: Callable[[float], None] = lambda seconds: None

    @property
    def active(self) -> bool:
        return self._task is not None and not self._task.done()

    def request(self, fetch: FetchBlocks) -> None:
        if self.active:
            return  # the core asks again after fetch_retry_ticks if this round falls short
        self._task = asyncio.create_task(self._run(fetch), name="state-transfer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def set_peers(self, peers: dict[str, str]) -> None:
        """Follow a change of validator set (every validator of any set may serve blocks)."""
        self._peers = {k: v for k, v in peers.items() if k != self._node_id}

    def _candidates(self, hint: tuple[str, ...]) -> list[str]:
        now = time.monotonic()
        heights = self._peer_heights()
        others = sorted((p for p in self._peers if p not in hint), key=lambda p: -heights.get(p, 0))
        return [
            p
            for p in (*hint, *others)
            if p in self._peers and self._suspect_until.get(p, 0.0) <= now
        ]

    async def _run(self, fetch: FetchBlocks) -> None:
        start = self._ledger.height + 1
        target = fetch.to_seq
        began, first = time.monotonic(), start
        log.info(
            "catch-up started",
            extra={"event": "catch-up-start", "height": start - 1, "target": target},
        )
        try:
            for peer_id in self._candidates(fetch.peers_hint):
                await self._from_peer(peer_id, target)
                if self._ledger.height >= target:
                    return
        finally:
            log.info(
                "catch-up ended",
                extra={
                    "event": "catch-up-end",
                    "height": self._ledger.height,
                    "target": target,
                    "blocks": self._ledger.height - first + 1,
                    "complete": self._ledger.height >= target,
                    "seconds": round(time.monotonic() - began, 3),
                },
            )

    async def _from_peer(self, peer_id: str, target: int) -> None:
        """Rounds from one peer until ``target``, or until its blocks stop moving the ledger.

        The next range downloads while the node judges and applies the current one: a round
        trip to a peer at another site, and the peer's reading of its blocks, then cost no
        time of their own. So at most two rounds are held at once."""
        download: asyncio.Task[list[CommittedBlock] | None] | None = self._download(
            peer_id, self._ledger.height + 1, target, None
        )
        try:
            while download is not None:
                round_began = time.monotonic()
                blocks = await download
                download = None
                if not blocks:
                    return
                after = blocks[-1].seq + 1
                if after <= target:
                    download = self._download(peer_id, after, target, blocks[-1].digest)
                if not await self._judge(peer_id, blocks):
                    return
                self.on_batch(time.monotonic() - round_began)
                height = self._ledger.height
                log.info(
                    "catch-up progress",
                    extra={
                        "event": "catch-up-progress",
                        "peer": peer_id,
                        "height": height,
                        "target": target,
                    },
                )
                if height < blocks[-1].seq and height < target:
                    # Only part of the round was taken: the range downloading does not
                    # extend the ledger, so ask again from where it stands.
                    if download is not None:
                        download.cancel()
                    download = self._download(peer_id, height + 1, target, None)
        finally:
            if download is not None:
                download.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await download

    def _download(
        self, peer_id: str, first: int, target: int, parent: bytes | None
    ) -> asyncio.Task[list[CommittedBlock] | None]:
        """Fetch one range, blocks ``first`` to at most ``first + RANGE_MAX - 1``, chained from
        ``parent`` (the executed tip's digest when None)."""
        last = min(target, first + RANGE_MAX - 1)
        return asyncio.create_task(
            self._fetch_range(peer_id, first, last, parent), name=f"fetch-blocks-{peer_id}"
        )

    async def _fetch_range(
        self, peer_id: str, first: int, last: int, parent: bytes | None
    ) -> list[CommittedBlock] | None:
        """The blocks a peer served for one range, decoded and linked; None when it failed."""
        channel = self._open_channel(peer_id, self._peers[peer_id])
        try:
            stub = peer_pb2_grpc.PeerStub(channel)
            served = []
            call = stub.FetchBlocks(
                peer_pb2.FetchBlocksRequest(from_height=first, to_height=last),
                timeout=FETCH_TIMEOUT_S,
                metadata=self._metadata,
            )
            size = 0
            async for block in call:
                served.append(block)
                size += sum(len(tx) for tx in block.txs)
                if len(served) > last - first or size >= RANGE_BYTES_MAX:
                    break
            if parent is None:
                parent = self._ledger.executed_tip(self._genesis_time_ms).digest
            blocks = []
            for height, block in enumerate(served, start=first):
                committed = committed_from_pb(block, parent, self._ledger.suite.hash)
                if committed.seq != height:
                    # The next range is asked for from the last height served: only the
                    # heights asked for are taken, before any certificate is checked.
                    raise ServedBlockError(f"served block {committed.seq} in place of {height}")
                blocks.append(committed)
                parent = committed.digest
        except grpc.aio.AioRpcError as exc:
            log.info("state transfer from %s failed: %s", peer_id, exc.code().name)
            return None
        except ServedBlockError as exc:
            self._suspect(peer_id, f"served a malformed block: {exc}")
            return None
        finally:
            await channel.close(grace=None)
        return blocks

    async def _judge(self, peer_id: str, blocks: list[CommittedBlock]) -> bool:
        """Hand one round to the replica (or the observer's follower); True when the ledger
        moved forward."""
        before = self._ledger.height
        judged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self._runtime.offer(TransferredBlocks(tuple(blocks), judged)):
            return False  # the replica is overloaded; the core asks again later
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(judged, PROGRESS_WAIT_S)
        if self._ledger.height <= before:
            self._suspect(peer_id, "its blocks did not verify")
            return False
        self.blocks_fetched += self._ledger.height - before
        return True

    def _suspect(self, peer_id: str, why: str) -> None:
        self.bad_peers_seen += 1
        self._suspect_until[peer_id] = time.monotonic() + SUSPECT_S
        log.warning("state transfer: peer %s is suspect: %s", peer_id, why)
