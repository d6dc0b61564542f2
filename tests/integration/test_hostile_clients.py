"""A hostile or broken client against four real node processes: deactivated senders, reused
nonces (also split between the primary and the backups), transactions valid forever, signed
queries replayed as transactions and back, and bytes that are not protobuf at all.

Every refusal names its code, the network keeps committing, and all nodes agree."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from ibledger.cli.client import api_channel
from ibledger.node.crypto import load_private_key
from ibledger.node.tx import QUERY_SIGNING_DOMAIN, build_transaction, decode_envelope
from ibledger.proto import ledger_pb2

from .cluster import Cluster

pytestmark = pytest.mark.slow

HOUR_MS = 3600 * 1000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster.create(tmp_path_factory.mktemp("hostile") / "network")
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


def _signed(
    cluster: Cluster,
    sender: str,
    operation: str,
    args: dict[str, object],
    *,
    nonce: int,
    expires_at_ms: int | None = None,
    domain: bytes | None = None,
) -> bytes:
    keypair = load_private_key(cluster.manifest.identities[sender].key_file)
    extra = {"domain": domain} if domain is not None else {}
    return build_transaction(
        keypair,
        chain_id=cluster.manifest.chain_id,
        sender=sender,
        operation=operation,
        args=args,
        nonce=nonce,
        expires_at_ms=expires_at_ms,
        **extra,  # type: ignore[arg-type]
    )


def _rename(
    cluster: Cluster, sender: str, name: str, nonce: int, expires_at_ms: int | None = None
) -> bytes:
    """A sender's change of its own details: valid, signed, and refused by the contract (only
    an admin may change details), which is beside the point of these tests."""
    return _signed(
        cluster,
        sender,
        "identity.update_details",
        {"participant": sender, "name": name},
        nonce=nonce,
        expires_at_ms=expires_at_ms,
    )


def _results(cluster: Cluster, node_id: str, envelopes: list[bytes]) -> list[tuple[str, str]]:
    response = cluster.stub(node_id).SubmitBatch(
        ledger_pb2.SubmitBatchRequest(envelopes=envelopes), timeout=10
    )
    return [(ledger_pb2.SubmitStatus.Name(r.status), r.code) for r in response.results]


def _receipt_code(cluster: Cluster, node_id: str, tx_id: bytes) -> str:
    receipt = cluster.stub(node_id).WaitForCommit(
        ledger_pb2.WaitForCommitRequest(
            tx_id=tx_id, timeout_ms=60_000, viewer=cluster.session(node_id)
        ),
        timeout=65,
    )
    return str(receipt.result.code)


def _agree(cluster: Cluster) -> None:
    height = cluster.wait_heights_equal(cluster.node_ids, timeout_s=60)
    roots = {n: cluster.status(n).state_root for n in cluster.node_ids}
    assert len(set(roots.values())) == 1, (height, roots)


def test_a_deactivated_participant_is_refused_at_admission(cluster: Cluster) -> None:
    before = _rename(cluster, "SUPPLIER", "s", nonce=1)
    [(status, code)] = _results(cluster, "node1", [before])
    assert (status, code) == ("ADMITTED", "OK")
    # Executed (the contract refuses a non-admin's detail change, which is beside the point).
    assert _receipt_code(cluster, "node1", decode_envelope(before).tx_id) == "FORBIDDEN"
    # A governance proposal; `network init`'s single admin is a quorum of one, so it executes.
    deactivate = _signed(
        cluster,
        "ADMIN",
        "governance.propose",
        {
            "action": "identity.deactivate",
            "args": {"participant": "SUPPLIER"},
            "expires_at_ms": int(time.time() * 1000) + 3_600_000,
        },
        nonce=10_001,
    )
    executed = cluster.submit("node0", [deactivate])
    for node_id in cluster.node_ids:  # admission reads the state each node has applied
        cluster.wait_committed(node_id, executed, timeout_s=60)
    after = _rename(cluster, "SUPPLIER", "t", nonce=2)
    for node_id in cluster.node_ids:
        [(status, code)] = _results(cluster, node_id, [after])
        assert (status, code) == ("REJECTED", "SENDER_INACTIVE"), node_id
    _agree(cluster)


def test_a_nonce_is_used_once_even_split_between_primary_and_backups(cluster: Cluster) -> None:
    primary = cluster.status("node0").primary
    backups = [n for n in cluster.node_ids if n != primary]
    nonce = 777_000
    first = _rename(cluster, "ICBC", "a", nonce=nonce)
    second = _rename(cluster, "ICBC", "b", nonce=nonce)
    assert decode_envelope(first).tx_id != decode_envelope(second).tx_id
    # Both at once, one to the primary, the other to a backup (B11): both may be admitted.
    [a] = _results(cluster, primary, [first])
    [b] = _results(cluster, backups[0], [second])
    codes = []
    for envelope, (status, code) in ((first, a), (second, b)):
        if status == "REJECTED":
            codes.append(code)
        else:
            codes.append(_receipt_code(cluster, backups[1], decode_envelope(envelope).tx_id))
    # Exactly one executes (the contract's own answer: a bank may not edit its details); the
    # other is refused for its nonce, by admission or, when both were admitted, in execution.
    assert sorted(codes) == ["FORBIDDEN", "NONCE_REUSED"], codes
    # Once one has committed, the same nonce is refused at admission on every node (each
    # answers from the state it has applied, so wait until each has applied both).
    admitted = [e for e, (status, _) in ((first, a), (second, b)) if status != "REJECTED"]
    for node_id in cluster.node_ids:
        for envelope in admitted:
            _receipt_code(cluster, node_id, decode_envelope(envelope).tx_id)
    third = _rename(cluster, "ICBC", "c", nonce=nonce)
    for node_id in cluster.node_ids:
        assert _results(cluster, node_id, [third]) == [("REJECTED", "NONCE_REUSED")], node_id
    _agree(cluster)


def test_expiry_is_capped_by_the_chain_horizon(cluster: Cluster) -> None:
    forever = _rename(cluster, "CIB", "x", nonce=1, expires_at_ms=2**63 - 1)
    assert _results(cluster, "node2", [forever]) == [("REJECTED", "EXPIRY_TOO_FAR")]
    two_days = int(time.time() * 1000) + 48 * HOUR_MS
    late = _rename(cluster, "CIB", "x", nonce=2, expires_at_ms=two_days)
    assert _results(cluster, "node2", [late]) == [("REJECTED", "EXPIRY_TOO_FAR")]
    in_time = _rename(
        cluster,
        "CIB",
        "x",
        nonce=3,
        expires_at_ms=int(time.time() * 1000) + 23 * HOUR_MS,
    )
    assert _results(cluster, "node2", [in_time]) == [("ADMITTED", "OK")]
    assert _receipt_code(cluster, "node2", decode_envelope(in_time).tx_id) == "FORBIDDEN"


def test_queries_and_transactions_are_signed_in_separate_domains(cluster: Cluster) -> None:
    now = int(time.time() * 1000)
    query = _signed(
        cluster,
        "SPDB",
        "query.participant",
        {"id": "SPDB"},
        nonce=5,
        expires_at_ms=now + 60_000,
        domain=QUERY_SIGNING_DOMAIN,
    )
    answer = cluster.stub("node0").Query(ledger_pb2.QueryRequest(envelope=query), timeout=10)
    assert answer.result
    # The captured query, submitted as the viewer's transaction: its signature is not one.
    assert _results(cluster, "node0", [query]) == [("REJECTED", "BAD_SIGNATURE")]
    # And a transaction presented as a query.
    as_tx = _signed(
        cluster, "SPDB", "query.participant", {"id": "SPDB"}, nonce=6, expires_at_ms=now + 60_000
    )
    with pytest.raises(grpc.RpcError) as caught:
        cluster.stub("node0").Query(ledger_pb2.QueryRequest(envelope=as_tx), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (caught.value.details() or "").startswith("BAD_SIGNATURE:")


@pytest.mark.parametrize("method", ["Submit", "SubmitBatch", "GetBlock", "StreamBlocks", "Query"])
def test_malformed_protobuf_is_invalid_argument_with_a_code(cluster: Cluster, method: str) -> None:
    channel = api_channel(cluster.address("node3"), cluster.manifest.ca_cert, "node3")
    streaming = method == "StreamBlocks"
    call = (channel.unary_stream if streaming else channel.unary_unary)(
        f"/ibledger.v1.Ledger/{method}",
        request_serializer=lambda raw: raw,
        response_deserializer=lambda raw: raw,
    )
    for _ in range(50):
        with pytest.raises(grpc.RpcError) as caught:
            result = call(b"\xff\xff\xff\xff\x0f\x00\x01", timeout=10)
            if streaming:
                list(result)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value
        assert (caught.value.details() or "").startswith("MALFORMED_REQUEST:"), caught.value
    log = (cluster.directory / "nodes" / "node3" / "node.log").read_text()
    assert "Traceback" not in log and "DecodeError" not in log
    # Rate-limited: 250 bad requests across the parameters, a handful of lines.
    assert log.count("malformed request refused") <= 60
    assert cluster.status("node3").height >= 0  # still serving
