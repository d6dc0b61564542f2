"""An in-process stand-in for a node's public API, backed by the real ledger.

Every admitted transaction is committed at once as its own block (a batch as one block), with a
real commit certificate: COMMIT signatures of a quorum of four Ed25519 validators over the
block's consensus digest, exactly as replicas form them.  Admission checks what a node checks
(envelope, chain, signer, signature) and fails with "CODE: sentence" statuses, each under the
gRPC status the real node's table (``node.errors.STATUS``) gives its code.  Tests can hold
admitted transactions in a mempool (to exercise waiting and deadlines) and queue injected
failures per RPC.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, NoReturn

import grpc

from ibledger.consensus import (
    Commit,
    CommitCertificate,
    encode_commit_certificate,
    fault_tolerance,
    quorum_size,
    signing_bytes,
)
from ibledger.contracts import QueryError, canonical_encode, query
from ibledger.node import clock
from ibledger.node.api import block_pb, event_pb, receipt_pb  # the node's own wire shapes
from ibledger.node.blocks import BlockHeader, StoredBlock
from ibledger.node.crypto import KeyPair
from ibledger.node.errors import status_for
from ibledger.node.ledger import Ledger
from ibledger.node.tx import (
    QUERY_SIGNING_DOMAIN,
    SIGNING_DOMAIN,
    Transaction,
    TxError,
    decode_envelope,
)
from ibledger.proto import ledger_pb2, ledger_pb2_grpc

BLOCK_STEP_MS = 1_000


class Rejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def abort(context: grpc.ServicerContext, code: str, message: str) -> NoReturn:
    """End the call as the real node would: its code's status, "CODE: sentence" details."""
    context.abort(status_for(code), f"{code}: {message}")


@dataclass(eq=False)
class FakeNode(ledger_pb2_grpc.LedgerServicer):  # type: ignore[misc]
    ledger: Ledger
    validators: dict[str, KeyPair]
    clock_ms: int
    node_id: str = "node0"
    view: int = 0
    hold: bool = False  # keep admitted transactions in the mempool until release()
    wait_max_ms: int = 120_000
    failures: dict[str, deque[tuple[grpc.StatusCode, str]]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    mempool: list[bytes] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    # -- test controls --------------------------------------------------------------------

    def fail_next(self, method: str, status: grpc.StatusCode, details: str) -> None:
        self.failures.setdefault(method, deque()).append((status, details))

    def release(self) -> None:
        with self.changed:
            envelopes, self.mempool = self.mempool, []
            if envelopes:
                self._commit(envelopes)

    def certificate(self, header: BlockHeader, signers: int | None = None) -> bytes:
        members = sorted(self.validators)
        count = signers or quorum_size(len(members), fault_tolerance(len(members)))
        digest = header.consensus_digest(self.ledger.suite.hash)
        commit = Commit(self.view, header.height, digest)
        signatures = tuple(
            (rid, self.validators[rid].sign(signing_bytes(commit, rid))) for rid in members[:count]
        )
        return encode_commit_certificate(
            CommitCertificate(self.view, header.height, digest, signatures)
        )

    # -- internals --------------------------------------------------------------------------

    def _enter(self, method: str, context: grpc.ServicerContext) -> None:
        self.calls.append(method)
        queue = self.failures.get(method)
        if queue:
            status, details = queue.popleft()
            context.abort(status, details)

    def _commit(self, envelopes: list[bytes]) -> None:
        """Append one block (callers hold ``changed``)."""
        self.clock_ms = max(self.clock_ms + BLOCK_STEP_MS, self.ledger.tip_timestamp_ms + 1)
        header = self.ledger.next_header(self.clock_ms, envelopes)
        self.ledger.append_block(header, envelopes, certificate=self.certificate(header))
        self.changed.notify_all()

    def _admit(self, envelope: bytes, domain: bytes = SIGNING_DOMAIN) -> Transaction:
        try:
            tx = decode_envelope(envelope, domain=domain)
        except TxError as exc:
            raise Rejected(exc.code, exc.message) from None
        if tx.chain_id != self.ledger.chain_id:
            raise Rejected(
                "WRONG_CHAIN",
                f"this node serves chain {self.ledger.chain_id!r}, not {tx.chain_id!r}",
            )
        signer = self.ledger.resolve_signer(tx.key_id)
        if signer is None or not signer.active:
            raise Rejected("UNKNOWN_SIGNER", "the signing key is unknown")
        if signer.participant != tx.sender:
            raise Rejected(
                "SIGNER_NOT_SENDER",
                f"the signing key is not a key of {tx.sender}",
            )
        if not self.ledger.suite.verify(signer.public_key, tx.signing_message, tx.signature):
            raise Rejected("BAD_SIGNATURE", "the signature does not verify")
        return tx

    def _answer(self, envelope: bytes) -> tuple[ledger_pb2.SubmitResponse, bool]:
        """The admission answer, and whether the envelope joins the next block."""
        tx = self._admit(envelope)
        receipt = self.ledger.get_receipt(tx.tx_id)
        if receipt is not None:
            return ledger_pb2.SubmitResponse(
                tx_id=tx.tx_id, status=ledger_pb2.COMMITTED, receipt=receipt_pb(receipt)
            ), False
        if envelope in self.mempool:
            return ledger_pb2.SubmitResponse(tx_id=tx.tx_id, status=ledger_pb2.PENDING), False
        return ledger_pb2.SubmitResponse(tx_id=tx.tx_id, status=ledger_pb2.ADMITTED), True

    # -- the public API ---------------------------------------------------------------------

    def Submit(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("Submit", context)
        with self.changed:
            try:
                response, admitted = self._answer(request.envelope)
            except Rejected as exc:
                abort(context, exc.code, exc.message)
            if admitted:
                if self.hold:
                    self.mempool.append(request.envelope)
                else:
                    self._commit([request.envelope])
            return response

    def SubmitBatch(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("SubmitBatch", context)
        results = []
        block: list[bytes] = []
        with self.changed:
            for envelope in request.envelopes:
                try:
                    response, admitted = self._answer(envelope)
                except Rejected as exc:
                    results.append(
                        ledger_pb2.SubmitResponse(
                            status=ledger_pb2.REJECTED, code=exc.code, message=exc.message
                        )
                    )
                    continue
                if admitted and envelope not in block:
                    block.append(envelope)
                results.append(response)
            if block:
                if self.hold:
                    self.mempool.extend(block)
                else:
                    self._commit(block)
        return ledger_pb2.SubmitBatchResponse(results=results)

    def GetReceipt(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("GetReceipt", context)
        receipt = self.ledger.get_receipt(request.tx_id)
        if receipt is None:
            abort(context, "NOT_FOUND", f"transaction {request.tx_id.hex()} is not committed")
        return receipt_pb(receipt)

    def WaitForCommit(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("WaitForCommit", context)
        # Like the real node, one wait lasts at most wait_max_ms; clients renew it.
        timeout_ms = min(request.timeout_ms, self.wait_max_ms)
        deadline = time.monotonic() + timeout_ms / 1000
        with self.changed:
            while True:
                receipt = self.ledger.get_receipt(request.tx_id)
                if receipt is not None:
                    return receipt_pb(receipt)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not context.is_active():
                    abort(
                        context,
                        "TIMEOUT",
                        f"transaction {request.tx_id.hex()} did not commit within {timeout_ms} ms",
                    )
                self.changed.wait(min(remaining, 0.1))

    def GetBlock(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("GetBlock", context)
        block = self._block(request.height)
        if block is None:
            abort(context, "NOT_FOUND", f"there is no block {request.height} yet")
        return block_pb(block)

    def _block(self, height: int) -> StoredBlock | None:
        # The ledger moves its in-memory tip before its write batch lands, so a reader on
        # another thread could see a height whose block is not stored yet: read under the lock
        # that commits hold.
        with self.changed:
            return self.ledger.get_block(height)

    def _blocks_from(self, height: int, context: grpc.ServicerContext) -> Iterator[StoredBlock]:
        while context.is_active():
            block = self._block(height)
            if block is None:
                with self.changed:
                    self.changed.wait(0.05)
                continue
            yield block
            height += 1

    def StreamBlocks(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("StreamBlocks", context)
        for block in self._blocks_from(request.from_height, context):
            yield block_pb(block)

    def StreamEvents(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("StreamEvents", context)
        kinds = set(request.kinds)
        for block in self._blocks_from(request.from_height, context):
            for event in block.events:
                if not kinds or event["kind"] in kinds:
                    yield event_pb(block.header.height, block.header.timestamp_ms, event)

    def Query(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("Query", context)
        try:
            tx = self._admit(request.envelope, QUERY_SIGNING_DOMAIN)
        except Rejected as exc:
            abort(context, exc.code, exc.message)
        if not tx.operation.startswith("query."):
            abort(context, "BAD_ARGUMENT", "a query's op is 'query.<name>'")
        if tx.expires_at_ms < clock.now_ms():
            abort(context, "EXPIRED", "the query expired")
        height = self.ledger.height
        # As of a past height, as the real node answers (node/api.py): the data then, the
        # viewer's roles now.
        as_of = request.as_of_height if request.HasField("as_of_height") else None
        if as_of is not None and as_of > height:
            abort(context, "HEIGHT_IN_FUTURE", f"height {as_of} is not committed yet")
        current = self.ledger.state()
        try:
            if as_of is None:
                result = query(current, tx.operation[6:], tx.args, tx.sender)
            else:
                past = self.ledger.as_of(as_of)
                result = query(past, tx.operation[6:], tx.args, tx.sender, current)
                height = as_of
        except QueryError as exc:
            abort(context, exc.code, exc.message)
        return ledger_pb2.QueryResponse(result=canonical_encode(result), height=height)

    def GetStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("GetStatus", context)
        members = sorted(self.validators)
        return ledger_pb2.NodeStatus(
            node_id=self.node_id,
            chain_id=self.ledger.chain_id,
            height=self.ledger.height,
            view=self.view,
            primary=members[self.view % len(members)],
            tip_hash=self.ledger.tip_hash,
            state_root=self.ledger.state_root,
            mempool_size=len(self.mempool),
            peers=[
                ledger_pb2.PeerStatus(
                    id=rid, address="127.0.0.1:1", connected=True, height=self.ledger.height
                )
                for rid in members[1:]
            ],
            version="test",
        )


def serve(node: FakeNode) -> tuple[grpc.Server, str]:
    """Start a gRPC server for ``node`` on a free loopback port; returns it and its address."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    ledger_pb2_grpc.add_LedgerServicer_to_server(node, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"
