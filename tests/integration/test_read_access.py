"""Who reads what, through the public API of four real node processes.

The API serves TLS with the node's certificate from the consortium CA; every read of blocks,
receipts and events names its viewer with a read session, and is shown only the transactions
that viewer is a party to (the regulator: all; an anonymous caller: what proofs need). Long
calls are limited per viewer, and anonymous callers have their own pool: a crowd of idle
anonymous streams must not lock out a bank that signs its reads.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ibledger.cli.client import Client, api_credentials
from ibledger.cli.client_verify import ValidatorSet, verify_block, verify_receipt
from ibledger.node import pki
from ibledger.node.crypto import load_private_key
from ibledger.node.tx import (
    QUERY_SIGNING_DOMAIN,
    READ_SESSION_OP,
    READ_SIGNING_DOMAIN,
    build_transaction,
)
from ibledger.proto import ledger_pb2, ledger_pb2_grpc, types_pb2

from .cluster import Cluster, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster.create(tmp_path_factory.mktemp("net") / "network")
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="module")
def committed(cluster: Cluster) -> bytes:
    """ADMIN updates CSDC's details: the parties are ADMIN (sender) and CSDC (named)."""
    [tx_id] = cluster.submit("node0", [cluster.envelope("Registrar, read-access test")])
    cluster.wait_committed("node0", [tx_id], timeout_s=30)
    # The tests read from other nodes, which may apply the block a little after node0.
    cluster.wait_heights_at_least(cluster.node_ids, _block_of(cluster, tx_id), timeout_s=60)
    return tx_id


def _validators(cluster: Cluster) -> ValidatorSet:
    return ValidatorSet.from_genesis(cluster.manifest.genesis())


def _error_code(exc: grpc.RpcError) -> str:
    return str(exc.details()).split(":", 1)[0]  # type: ignore[attr-defined]


# --- TLS ---------------------------------------------------------------------------------------


def test_the_api_serves_tls_from_the_consortium_ca(cluster: Cluster, tmp_path: Path) -> None:
    address = cluster.address("node1")
    plaintext = ledger_pb2_grpc.LedgerStub(grpc.insecure_channel(address))
    with pytest.raises(grpc.RpcError) as refused:
        plaintext.GetStatus(ledger_pb2.GetStatusRequest(), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]

    other_ca = pki.create_ca("another consortium")
    other_ca.write(tmp_path)
    foreign = grpc.secure_channel(
        address,
        api_credentials(tmp_path / pki.CA_CERT_FILE),
        options=[("grpc.ssl_target_name_override", "node1")],
    )
    with pytest.raises(grpc.RpcError) as untrusted:
        ledger_pb2_grpc.LedgerStub(foreign).GetStatus(ledger_pb2.GetStatusRequest(), timeout=5)
    assert untrusted.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]

    # The right CA, but the name of another node: node1's certificate is not node2's.
    impostor = grpc.secure_channel(
        address,
        api_credentials(cluster.manifest.ca_cert or Path()),
        options=[("grpc.ssl_target_name_override", "node2")],
    )
    with pytest.raises(grpc.RpcError):
        ledger_pb2_grpc.LedgerStub(impostor).GetStatus(ledger_pb2.GetStatusRequest(), timeout=5)

    assert cluster.status("node1").node_id == "node1"


# --- redaction ---------------------------------------------------------------------------------


def _block_of(cluster: Cluster, tx_id: bytes) -> int:
    receipt = cluster.stub("node0").GetReceipt(ledger_pb2.GetReceiptRequest(tx_id=tx_id))
    return int(receipt.height)


def _get_block(cluster: Cluster, height: int, viewer: str | None) -> types_pb2.Block:
    proof = cluster.session("node2", viewer) if viewer else b""
    request = ledger_pb2.GetBlockRequest(height=height, viewer=proof)
    block: types_pb2.Block = cluster.stub("node2").GetBlock(request, timeout=10)
    return block


def test_an_anonymous_caller_sees_only_what_proofs_need(cluster: Cluster, committed: bytes) -> None:
    height = _block_of(cluster, committed)
    block = _get_block(cluster, height, None)
    assert block.header.tx_count >= 1
    assert list(block.withheld) == list(range(block.header.tx_count))
    assert all(tx == b"" for tx in block.txs)
    assert all(result.code == "" for result in block.results)
    assert not block.events
    assert b"read-access test" not in block.SerializeToString()
    report = verify_block(block, _validators(cluster))
    assert report.ok, report.to_dict()  # header, request ids and certificate still verify

    receipt = cluster.stub("node2").GetReceipt(ledger_pb2.GetReceiptRequest(tx_id=committed))
    assert receipt.withheld and not receipt.envelope and not receipt.events
    assert not receipt.HasField("result_proof") and receipt.result.code == ""
    # Whoever holds the envelope (the submitter) can still prove its inclusion.
    envelope = cluster.sent[committed]
    report = verify_receipt(receipt, _validators(cluster), envelope=envelope)
    assert [check.name for check in report.failed] == ["result"], report.to_dict()

    with pytest.raises(grpc.RpcError) as refused:
        stream = cluster.stub("node2").StreamEvents(
            ledger_pb2.StreamEventsRequest(from_height=1), timeout=10
        )
        next(iter(stream))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert _error_code(refused.value) == "VIEWER_REQUIRED"


def test_a_participant_sees_only_its_own_transactions(cluster: Cluster, committed: bytes) -> None:
    height = _block_of(cluster, committed)
    for viewer, sees in (("CSDC", True), ("ADMIN", True), ("REGULATOR", True), ("ICBC", False)):
        block = _get_block(cluster, height, viewer)
        shown = [i for i in range(block.header.tx_count) if i not in set(block.withheld)]
        payload_seen = any(b"read-access test" in block.txs[i] for i in shown)
        assert payload_seen is sees, (viewer, list(block.withheld))
        event_seen = any(event.kind == "identity.details_updated" for event in block.events)
        assert event_seen is sees, viewer
        assert verify_block(block, _validators(cluster)).ok

    request = ledger_pb2.GetReceiptRequest(tx_id=committed, viewer=cluster.session("node3", "ICBC"))
    assert cluster.stub("node3").GetReceipt(request, timeout=10).withheld
    request = ledger_pb2.GetReceiptRequest(tx_id=committed, viewer=cluster.session("node3", "CSDC"))
    receipt = cluster.stub("node3").GetReceipt(request, timeout=10)
    assert not receipt.withheld and receipt.result.code == "OK" and receipt.events
    report = verify_receipt(receipt, _validators(cluster))
    assert [check.name for check in report.failed] == [], report.to_dict()


def test_the_cli_shows_a_party_its_receipt_and_verifies_it(
    cluster: Cluster, committed: bytes
) -> None:
    with Client.from_network(cluster.directory, "CSDC") as party:
        receipt = party.receipt(committed)
        assert not receipt.withheld and receipt.ok
        assert receipt.transaction is not None and receipt.transaction.sender == "ADMIN"
    with Client.from_network(cluster.directory, "ICBC") as outsider:
        assert outsider.receipt(committed).withheld
    with Client.from_network(cluster.directory) as anonymous:
        assert anonymous.receipt(committed).withheld


def test_tx_wait_reports_a_withheld_receipt_as_committed(
    cluster: Cluster, committed: bytes
) -> None:
    """A caller who is not a party waits on a committed transaction: it is committed (exit 0),
    its result withheld, never an error with an empty code."""
    for who in ([], ["--as", "ICBC"]):
        waited = run_cli("tx", "wait", committed.hex(), "--network", str(cluster.directory),
                         "--json", *who)  # fmt: skip
        receipt = json.loads(waited.stdout)
        assert receipt["status"] == "COMMITTED" and receipt["withheld"] is True, receipt
        assert receipt["height"] == _block_of(cluster, committed)
        text = run_cli("tx", "wait", committed.hex(), "--network", str(cluster.directory), *who)
        assert "result withheld" in text.stdout, text.stdout


def test_a_participants_event_stream_carries_only_its_transactions(
    cluster: Cluster, committed: bytes
) -> None:
    # Stream as CSDC from ADMIN's change to it: that event comes first, then a change to SPDB
    # (not CSDC's business) must be skipped, then a second change to CSDC ends the stream.
    height = _block_of(cluster, committed)
    spdb = build_transaction(
        cluster.admin,
        chain_id=cluster.manifest.chain_id,
        sender="ADMIN",
        operation="identity.update_details",
        args={"participant": "SPDB", "name": "SPDB, not for CSDC"},
        nonce=10_000,
    )
    [spdb_id] = cluster.submit("node1", [spdb])
    cluster.wait_committed("node1", [spdb_id], timeout_s=30)
    marker = cluster.envelope("Registrar, after SPDB")
    [marker_id] = cluster.submit("node1", [marker])
    cluster.wait_committed("node1", [marker_id], timeout_s=30)

    request = ledger_pb2.StreamEventsRequest(
        from_height=height, viewer=cluster.session("node1", "CSDC")
    )
    stream = cluster.stub("node1").StreamEvents(request, timeout=30)
    seen: list[bytes] = []
    try:
        for event in stream:
            seen.append(event.tx_id)
            if event.tx_id == marker_id:
                break
    finally:
        stream.cancel()
    assert seen[0] == committed and seen[-1] == marker_id
    assert spdb_id not in seen


# --- viewer proofs -----------------------------------------------------------------------------


def _session(
    cluster: Cluster, node_id: str, *, domain: bytes = READ_SIGNING_DOMAIN, ttl_ms: int = 60_000
) -> bytes:
    key = load_private_key(cluster.manifest.identities["CSDC"].key_file)
    return build_transaction(
        key,
        chain_id=cluster.manifest.chain_id,
        sender="CSDC",
        operation=READ_SESSION_OP,
        args={"node": node_id},
        expires_at_ms=int(time.time() * 1000) + ttl_ms,
        domain=domain,
    )


@pytest.mark.parametrize(
    ("proof", "status", "code"),
    [
        ("for another node", grpc.StatusCode.UNAUTHENTICATED, "BAD_VIEWER"),
        ("query domain", grpc.StatusCode.INVALID_ARGUMENT, "BAD_SIGNATURE"),
        ("valid for a day", grpc.StatusCode.FAILED_PRECONDITION, "EXPIRED"),
        ("garbage", grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_ENVELOPE"),
    ],
)
def test_a_bad_viewer_proof_is_refused_with_a_code(
    cluster: Cluster, committed: bytes, proof: str, status: grpc.StatusCode, code: str
) -> None:
    viewer = {
        "for another node": lambda: _session(cluster, "node0"),
        "query domain": lambda: _session(cluster, "node3", domain=QUERY_SIGNING_DOMAIN),
        "valid for a day": lambda: _session(cluster, "node3", ttl_ms=86_400_000),
        "garbage": lambda: b"\x93\x01\x02",
    }[proof]()
    with pytest.raises(grpc.RpcError) as refused:
        cluster.stub("node3").GetReceipt(
            ledger_pb2.GetReceiptRequest(tx_id=committed, viewer=viewer), timeout=10
        )
    assert refused.value.code() == status  # type: ignore[attr-defined]
    assert _error_code(refused.value) == code


# --- long-call limits --------------------------------------------------------------------------


async def _open_streams(
    cluster: Cluster, node_id: str, count: int, viewer: bytes = b""
) -> tuple[list[grpc.aio.Call], list[str]]:
    """Open ``count`` StreamBlocks calls from the chain's tip and wait for each to either
    deliver its first block or fail; returns the open calls and the failures' codes."""
    ca = cluster.manifest.ca_cert
    assert ca is not None
    channels = [
        grpc.aio.secure_channel(
            cluster.address(node_id),
            api_credentials(ca),
            options=[("grpc.ssl_target_name_override", node_id)],
        )
        for _ in range(-(-count // 16))  # 16 calls per connection, under its stream cap
    ]
    height = cluster.status(node_id).height
    calls = [
        ledger_pb2_grpc.LedgerStub(channels[i // 16]).StreamBlocks(
            ledger_pb2.StreamBlocksRequest(from_height=height, viewer=viewer)
        )
        for i in range(count)
    ]
    open_calls: list[grpc.aio.Call] = []
    failures: list[str] = []

    async def first(call: grpc.aio.Call) -> None:
        try:
            await asyncio.wait_for(call.read(), 30)  # type: ignore[attr-defined]
            open_calls.append(call)
        except grpc.aio.AioRpcError as exc:
            failures.append(str(exc.details()).split(":", 1)[0])

    await asyncio.gather(*(first(call) for call in calls))
    return open_calls, failures


def test_idle_anonymous_streams_cannot_lock_out_a_signed_reader(cluster: Cluster) -> None:
    async def scenario() -> None:
        crowd, refused = await _open_streams(cluster, "node0", 256)
        # The anonymous pool per address (8 by default) is all the crowd gets.
        assert len(crowd) == 8, (len(crowd), refused[:3])
        assert set(refused) == {"STREAM_LIMIT"}
        try:
            # A bank that signs its reads still streams, waits and is answered.
            mine, failures = await _open_streams(
                cluster, "node0", 3, viewer=cluster.session("node0", "CSDC")
            )
            assert len(mine) == 3 and not failures
            for call in mine:
                call.cancel()
            with Client.from_network(
                cluster.directory, "ADMIN", node=cluster.address("node0")
            ) as c:
                assert c.status().node_id == "node0"
                receipt = c.submit(
                    "identity.update_details", {"participant": "CSDC", "name": "still served"}
                )
                assert receipt.ok and not receipt.withheld
        finally:
            for call in crowd:
                call.cancel()

    asyncio.run(scenario())


def test_one_viewer_holds_at_most_its_share_of_streams(cluster: Cluster) -> None:
    async def scenario() -> None:
        session = cluster.session("node1", "CIB")
        held, refused = await _open_streams(cluster, "node1", 20, viewer=session)
        try:
            assert len(held) == 16 and refused == ["STREAM_LIMIT"] * 4
        finally:
            for call in held:
                call.cancel()
        # Closed streams give their slots back.
        again, failures = await _open_streams(cluster, "node1", 4, viewer=session)
        for call in again:
            call.cancel()
        assert len(again) == 4 and not failures

    asyncio.run(scenario())
