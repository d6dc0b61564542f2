"""The public gRPC API: a thin adapter from ``proto/ledger.proto`` to the node's parts.

Handlers validate what they are given, call admission, the ledger or the contracts' query side,
and translate results to protobuf.  Failures are raised as ``NodeError(code, sentence)``; the
gRPC edge that registers the service (``grpc_edge.add_service``) turns them into a status in one
place, for unary calls and streams alike: the status comes from the table in ``errors`` and the
details read ``"CODE: sentence"``.  Anything else escaping a handler is a bug: the edge logs it
and answers INTERNAL, and the node keeps serving.  ``LedgerService.refused`` is the edge's hook:
it tells the audit log of each refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from ibledger.consensus import HashFn, MessageError, decode_commit_certificate, request_id, sha256
from ibledger.contracts import runtime as contracts
from ibledger.contracts.codec import CodecError, canonical_encode
from ibledger.contracts.errors import QueryError
from ibledger.proto import ledger_pb2, ledger_pb2_grpc, types_pb2

from . import clock
from .admission import ADMITTED, COMMITTED, PENDING, Admission, AdmissionResult
from .blocks import BlockHeader, Receipt, ResultProof, StoredBlock
from .errors import NodeError
from .ledger import Ledger
from .read_access import ANONYMOUS, LongCallLimits, Viewer, ViewerGate, tx_visible, visible_indexes
from .tx import QUERY_SIGNING_DOMAIN, TxError, decode_envelope

log = logging.getLogger("ibledger.api")

SUBMIT_BATCH_MAX = 2_000
WAIT_MAX_MS = 120_000
QUERY_TTL_MAX_MS = 10 * 60 * 1000
STREAM_BATCH = 64


_STATUS_ENUM = {
    ADMITTED: ledger_pb2.ADMITTED,
    PENDING: ledger_pb2.PENDING,
    COMMITTED: ledger_pb2.COMMITTED,
}


class CommitFeed:
    """Wakes whoever waits for a transaction or for the chain to grow."""

    def __init__(self) -> None:
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        self._grown = asyncio.Condition()

    def committed(self, tx_ids: list[bytes]) -> None:
        for tx_id in tx_ids:
            for future in self._waiters.pop(tx_id, []):
                if not future.done():
                    future.set_result(None)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._grown:
            self._grown.notify_all()

    async def wait_tx(self, tx_id: bytes, timeout_s: float) -> bool:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(tx_id, []).append(future)
        try:
            await asyncio.wait_for(future, timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            waiters = self._waiters.get(tx_id)
            if waiters is not None and future in waiters:
                waiters.remove(future)
                if not waiters:
                    del self._waiters[tx_id]

    async def wait_growth(self, timeout_s: float) -> None:
        async with self._grown:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._grown.wait(), timeout_s)


@dataclass(frozen=True, slots=True)
class NodeView:
    """What GetStatus reports about consensus, read from the runtime."""

    view: int
    primary: str
    catching_up: bool


def certificate_view(certificate: bytes | None) -> int:
    """The view of a stored commit certificate (0 for none, or one that does not decode)."""
    if not certificate:
        return 0
    try:
        return decode_commit_certificate(certificate).view
    except MessageError:
        return 0


def header_pb(header: BlockHeader, certificate: bytes | None = None) -> types_pb2.BlockHeader:
    """``view`` is not in the header (replicas may certify one block in different views): it
    is the view of this node's commit certificate for the block, 0 without one."""
    return types_pb2.BlockHeader(
        height=header.height,
        parent_hash=header.parent_hash,
        timestamp_ms=header.timestamp_ms,
        tx_count=header.tx_count,
        txs_root=header.txs_root,
        view=certificate_view(certificate),
        encoded=header.encode(),
        proposal_ms=header.proposal_ms,
    )


def event_pb(height: int, timestamp_ms: int, event: Mapping[str, Any]) -> types_pb2.Event:
    return types_pb2.Event(
        height=height,
        timestamp_ms=timestamp_ms,
        tx_index=event["tx_index"],
        tx_id=event["tx_id"],
        kind=event["kind"],
        attrs=canonical_encode(event["attrs"]),
    )


def block_pb(
    block: StoredBlock, visible: frozenset[int] | None = None, *, hash_fn: HashFn = sha256
) -> types_pb2.Block:
    """The block as a viewer who may see the transactions at ``visible`` (None: all) sees it;
    its request ids are the chain hash ``hash_fn`` (the ledger suite's) of each envelope."""
    height, timestamp_ms = block.header.height, block.header.timestamp_ms
    shown = range(len(block.txs)) if visible is None else visible
    empty = types_pb2.TxResult()
    return types_pb2.Block(
        header=header_pb(block.header, block.certificate),
        block_hash=block.block_hash,
        txs=[tx if index in shown else b"" for index, tx in enumerate(block.txs)],
        results=[
            types_pb2.TxResult(code=r.code, message=r.message) if index in shown else empty
            for index, r in enumerate(block.results)
        ],
        state_root=block.state_root,
        certificate=block.certificate or b"",
        events=[
            event_pb(height, timestamp_ms, event)
            for event in block.events
            if event["tx_index"] in shown
        ],
        request_ids=[request_id(tx, hash_fn) for tx in block.txs],
        withheld=[index for index in range(len(block.txs)) if index not in shown],
    )


def result_proof_pb(proof: ResultProof) -> types_pb2.ResultProof:
    return types_pb2.ResultProof(
        checkpoint_certificate=proof.checkpoint_certificate,
        previous_state_root=proof.previous_state_root,
        links=[
            types_pb2.StateLink(
                height=link.height,
                block_hash=link.block_hash,
                results_digest=link.results_digest,
                write_set_digest=link.write_set_digest,
            )
            for link in proof.links
        ],
        outcome=proof.outcome,
        outcome_proof=list(proof.outcome_proof),
    )


def receipt_pb(receipt: Receipt, *, withheld: bool = False) -> types_pb2.Receipt:
    """The receipt; ``withheld`` keeps only its position and inclusion path (for non-parties)."""
    height, timestamp_ms = receipt.height, receipt.header.timestamp_ms
    if withheld:
        return types_pb2.Receipt(
            tx_id=receipt.tx_id,
            height=receipt.height,
            index=receipt.index,
            header=header_pb(receipt.header, receipt.certificate),
            block_hash=receipt.block_hash,
            proof=list(receipt.proof.siblings),
            certificate=receipt.certificate or b"",
            withheld=True,
        )
    message = types_pb2.Receipt(
        tx_id=receipt.tx_id,
        height=receipt.height,
        index=receipt.index,
        result=types_pb2.TxResult(code=receipt.result.code, message=receipt.result.message),
        header=header_pb(receipt.header, receipt.certificate),
        block_hash=receipt.block_hash,
        envelope=receipt.envelope,
        proof=list(receipt.proof.siblings),
        certificate=receipt.certificate or b"",
        events=[event_pb(height, timestamp_ms, event) for event in receipt.events],
    )
    if receipt.result_proof is not None:
        message.result_proof.CopyFrom(result_proof_pb(receipt.result_proof))
    return message


# Answers rather than refusals: the request was acceptable, the thing asked for is not there.
NOT_REFUSALS = frozenset({"NOT_FOUND", "TIMEOUT"})

RefusalHook = Callable[[str, str, Mapping[str, Any]], None]
"""Told of each refused request: its code, the caller's gRPC peer string, and details."""


class LedgerService(ledger_pb2_grpc.LedgerServicer):
    def __init__(
        self,
        *,
        node_id: str,
        ledger: Ledger,
        admission: Admission | None,
        feed: CommitFeed,
        node_view: Callable[[], NodeView],
        mempool_size: Callable[[], int],
        peers: Callable[[], list[ledger_pb2.PeerStatus]],
        version: str,
        ready: Callable[[], bool] = lambda: True,
        limits: LongCallLimits | None = None,
        on_refused: RefusalHook = lambda code, peer, details: None,
        read_only: str | None = None,
    ) -> None:
        """Without ``admission`` the node is read-only (an observer): every write call answers
        ``OBSERVER_READ_ONLY`` with the sentence ``read_only``, which names where to send."""
        if (admission is None) == (read_only is None):
            raise ValueError("a LedgerService has either an admission or a read-only refusal")
        self._read_only = read_only
        self._on_refused = on_refused
        self._node_id = node_id
        self._ledger = ledger
        self._admission = admission
        self._feed = feed
        self._node_view = node_view
        self._mempool_size = mempool_size
        self._peers = peers
        self._version = version
        self._ready = ready
        self._gate = ViewerGate(node_id=node_id, ledger=ledger)
        self._limits = limits or LongCallLimits(
            per_viewer=16, anonymous_per_address=8, anonymous_max=64
        )

    def refused(self, method: str, peer: str, exc: NodeError) -> None:
        """Told by the gRPC edge of each NodeError a handler raised."""
        if exc.code not in NOT_REFUSALS:
            self._on_refused(exc.code, peer, {"method": method, "message": exc.message})

    # --- submit ---------------------------------------------------------------------------------

    def _response(self, result: AdmissionResult) -> ledger_pb2.SubmitResponse:
        if result.status == "REJECTED":
            return ledger_pb2.SubmitResponse(
                tx_id=result.tx_id,
                status=ledger_pb2.REJECTED,
                code=result.code,
                message=result.message,
            )
        response = ledger_pb2.SubmitResponse(
            tx_id=result.tx_id, status=_STATUS_ENUM[result.status], code="OK"
        )
        if result.status == COMMITTED:
            # The submitter proves no identity: it gets the anonymous view (and, holding the
            # envelope, can still check the inclusion path); a party asks GetReceipt as itself.
            receipt = self._ledger.get_receipt(result.tx_id)
            if receipt is not None:
                response.receipt.CopyFrom(self._receipt_for(ANONYMOUS, receipt))
        return response

    def _require_ready(self) -> None:
        if not self._ready():
            raise NodeError("NOT_READY", "the node is starting; retry in a moment")

    def _writable(self) -> Admission:
        """Where a write goes; on a read-only node, the refusal that names a validator."""
        if self._admission is None:
            assert self._read_only is not None
            raise NodeError("OBSERVER_READ_ONLY", self._read_only)
        return self._admission

    async def _submit(self, request: ledger_pb2.SubmitRequest) -> ledger_pb2.SubmitResponse:
        admission = self._writable()
        self._require_ready()
        [result] = await admission.admit([request.envelope])
        if result.status == "REJECTED":
            raise NodeError(result.code, result.message)
        return self._response(result)

    async def Submit(
        self, request: ledger_pb2.SubmitRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ledger_pb2.SubmitResponse:
        return await self._submit(request)

    async def _submit_batch(
        self, request: ledger_pb2.SubmitBatchRequest, peer: str
    ) -> ledger_pb2.SubmitBatchResponse:
        admission = self._writable()
        self._require_ready()
        if len(request.envelopes) > SUBMIT_BATCH_MAX:
            raise NodeError(
                "BATCH_TOO_LARGE", f"at most {SUBMIT_BATCH_MAX} envelopes per SubmitBatch call"
            )
        results = await admission.admit(list(request.envelopes))
        for result in results:
            if result.status == "REJECTED":
                details = {
                    "method": "SubmitBatch",
                    "tx_id": result.tx_id,
                    "message": result.message,
                }
                self._on_refused(result.code, peer, details)
        return ledger_pb2.SubmitBatchResponse(results=[self._response(r) for r in results])

    async def SubmitBatch(
        self, request: ledger_pb2.SubmitBatchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ledger_pb2.SubmitBatchResponse:
        return await self._submit_batch(request, context.peer())

    # --- receipts and blocks ----------------------------------------------------------------------

    def _receipt_for(self, viewer: Viewer, receipt: Receipt) -> types_pb2.Receipt:
        visible = tx_visible(viewer, self._ledger.state(), receipt.envelope, receipt.events)
        return receipt_pb(receipt, withheld=not visible)

    def _receipt(self, tx_id: bytes, viewer: Viewer) -> types_pb2.Receipt | None:
        if len(tx_id) != 32:
            raise NodeError("BAD_ARGUMENT", "a transaction id is 32 bytes")
        receipt = self._ledger.get_receipt(tx_id)
        return None if receipt is None else self._receipt_for(viewer, receipt)

    async def _get_receipt(self, request: ledger_pb2.GetReceiptRequest) -> types_pb2.Receipt:
        receipt = self._receipt(request.tx_id, self._gate.viewer(request.viewer))
        if receipt is None:
            raise NodeError("NOT_FOUND", f"transaction {request.tx_id.hex()} is not committed")
        return receipt

    async def GetReceipt(
        self, request: ledger_pb2.GetReceiptRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> types_pb2.Receipt:
        return await self._get_receipt(request)

    async def _wait(self, request: ledger_pb2.WaitForCommitRequest, peer: str) -> types_pb2.Receipt:
        viewer = self._gate.viewer(request.viewer)
        receipt = self._receipt(request.tx_id, viewer)
        if receipt is not None:
            return receipt
        with self._limits.hold(viewer, peer):
            return await self._wait_held(request, viewer)

    async def _wait_held(
        self, request: ledger_pb2.WaitForCommitRequest, viewer: Viewer
    ) -> types_pb2.Receipt:
        timeout_ms = min(request.timeout_ms or 30_000, WAIT_MAX_MS)
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            receipt = self._receipt(request.tx_id, viewer)
            if receipt is not None:
                return receipt
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NodeError(
                    "TIMEOUT",
                    f"transaction {request.tx_id.hex()} did not commit within {timeout_ms} ms",
                )
            await self._feed.wait_tx(request.tx_id, remaining)

    async def WaitForCommit(
        self, request: ledger_pb2.WaitForCommitRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> types_pb2.Receipt:
        return await self._wait(request, context.peer())

    def _block_for(self, viewer: Viewer, block: StoredBlock) -> types_pb2.Block:
        return block_pb(
            block,
            visible_indexes(viewer, self._ledger.state(), block),
            hash_fn=self._ledger.suite.hash,
        )

    async def _get_block(self, request: ledger_pb2.GetBlockRequest) -> types_pb2.Block:
        viewer = self._gate.viewer(request.viewer)
        block = self._ledger.get_block(request.height)
        if block is None:
            raise NodeError(
                "NOT_FOUND",
                f"no block at height {request.height}; the chain is at {self._ledger.height}",
            )
        return self._block_for(viewer, block)

    async def GetBlock(
        self, request: ledger_pb2.GetBlockRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> types_pb2.Block:
        return await self._get_block(request)

    async def _blocks_from(self, height: int) -> AsyncIterator[StoredBlock]:
        while True:
            while height <= self._ledger.height:
                block = self._ledger.get_block(height)
                if block is None:
                    break
                yield block
                height += 1
            await self._feed.wait_growth(1.0)

    async def _stream_blocks(
        self, request: ledger_pb2.StreamBlocksRequest, peer: str
    ) -> AsyncIterator[types_pb2.Block]:
        viewer = self._gate.viewer(request.viewer)
        with self._limits.hold(viewer, peer):
            async for block in self._blocks_from(request.from_height):
                yield self._block_for(viewer, block)

    async def StreamBlocks(
        self, request: ledger_pb2.StreamBlocksRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[types_pb2.Block]:
        async for block in self._stream_blocks(request, context.peer()):
            yield block

    async def _stream_events(
        self, request: ledger_pb2.StreamEventsRequest, peer: str
    ) -> AsyncIterator[types_pb2.Event]:
        viewer = self._gate.viewer(request.viewer)
        if viewer.anonymous:
            raise NodeError(
                "VIEWER_REQUIRED",
                "events are shown to the parties of their transactions and to the regulator: "
                "sign the request with a viewer proof",
            )
        kinds = set(request.kinds)
        with self._limits.hold(viewer, peer):
            async for block in self._blocks_from(request.from_height):
                if not block.events:
                    continue
                visible = visible_indexes(viewer, self._ledger.state(), block)
                for event in block.events:
                    if event["tx_index"] in visible and (not kinds or event["kind"] in kinds):
                        yield event_pb(block.header.height, block.header.timestamp_ms, event)

    async def StreamEvents(
        self, request: ledger_pb2.StreamEventsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[types_pb2.Event]:
        async for event in self._stream_events(request, context.peer()):
            yield event

    # --- queries and status -------------------------------------------------------------------

    async def _query(self, request: ledger_pb2.QueryRequest) -> ledger_pb2.QueryResponse:
        try:
            tx = decode_envelope(
                request.envelope, hash_fn=self._ledger.suite.hash, domain=QUERY_SIGNING_DOMAIN
            )
        except TxError as exc:
            raise NodeError(exc.code, exc.message) from None
        if tx.chain_id != self._ledger.chain_id:
            raise NodeError("WRONG_CHAIN", f"the query is for chain {tx.chain_id!r}")
        now_ms = clock.now_ms()
        if not now_ms < tx.expires_at_ms <= now_ms + QUERY_TTL_MAX_MS:
            raise NodeError("EXPIRED", "a query envelope must expire within the next ten minutes")
        if not tx.operation.startswith("query."):
            raise NodeError("BAD_ARGUMENT", "a query's op is 'query.<name>'")
        [verdict] = await asyncio.to_thread(self._ledger.verifier.verify, [tx])
        if not verdict.ok:
            raise NodeError(verdict.code, verdict.message)
        height = self._ledger.height
        as_of = request.as_of_height if request.HasField("as_of_height") else None
        if as_of is not None:
            self._check_as_of(as_of, height)
        versions_at = tx.args.get("height") if isinstance(tx.args, Mapping) else None
        if (
            isinstance(versions_at, int)
            and not isinstance(versions_at, bool)
            and versions_at > height
        ):
            # The contracts read versions up to a height, but only the node knows its tip: a
            # height above it would be answered from a state that later blocks still change.
            raise NodeError(
                "BAD_ARGUMENT", f"height {versions_at} is above the ledger's height {height}"
            )

        def run() -> bytes:
            current = self._ledger.state()
            name = tx.operation[len("query.") :]
            if as_of is None:
                return canonical_encode(contracts.query(current, name, tx.args, tx.sender))
            # The data as of the height; who the viewer is (its roles) as of now.
            past = self._ledger.as_of(as_of)
            return canonical_encode(contracts.query(past, name, tx.args, tx.sender, current))

        try:
            result = await asyncio.to_thread(run)
        except QueryError as exc:
            raise NodeError(exc.code, exc.message) from None
        except CodecError as exc:
            raise NodeError("INTERNAL", f"the query result could not be encoded: {exc}") from exc
        return ledger_pb2.QueryResponse(result=result, height=height if as_of is None else as_of)

    def _check_as_of(self, as_of: int, tip: int) -> None:
        """Refuse an as-of height this node cannot answer exactly (node/archive.py)."""
        if as_of > tip:
            raise NodeError(
                "HEIGHT_IN_FUTURE",
                f"height {as_of} is not committed yet; the chain is at {tip}",
            )
        oldest, newest = self._ledger.history_range()
        if not oldest <= as_of <= newest:
            where = "no height yet" if newest < oldest else f"heights {oldest} to {newest} only"
            raise NodeError(
                "HEIGHT_UNAVAILABLE",
                f"this node can answer as of {where}, not {as_of}; ask again once it has "
                "indexed its history, or ask another node",
            )

    async def Query(
        self, request: ledger_pb2.QueryRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ledger_pb2.QueryResponse:
        return await self._query(request)

    async def GetStatus(
        self, request: ledger_pb2.GetStatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ledger_pb2.NodeStatus:
        view = self._node_view()
        return ledger_pb2.NodeStatus(
            node_id=self._node_id,
            chain_id=self._ledger.chain_id,
            height=self._ledger.height,
            view=view.view,
            primary=view.primary,
            tip_hash=self._ledger.tip_hash,
            state_root=self._ledger.state_root,
            mempool_size=self._mempool_size(),
            peers=self._peers(),
            version=self._version,
            catching_up=view.catching_up,
        )
