"""One bank floods the network (S6): its transactions beyond its rate and its pending share
are refused with RESOURCE_EXHAUSTED and a code, at every node it tries, and another bank's
transactions are still admitted and committed. Four real node processes; the quota is set in
genesis, small here so that a test can exceed it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ibledger.node.crypto import load_private_key
from ibledger.node.tx import build_transaction, decode_envelope
from ibledger.proto import ledger_pb2

from .cluster import Cluster

pytestmark = pytest.mark.slow

QUOTA = {"sender_rate_per_s": 20, "sender_burst": 40, "sender_pending_max": 60}


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster.create(tmp_path / "network", admission=QUOTA)
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


def _envelopes(cluster: Cluster, sender: str, count: int, first_nonce: int) -> list[bytes]:
    keypair = load_private_key(cluster.manifest.identities[sender].key_file)
    return [
        build_transaction(
            keypair,
            chain_id=cluster.manifest.chain_id,
            sender=sender,
            operation="identity.update_details",
            args={"participant": sender, "name": f"flood {n}"},
            nonce=first_nonce + n,
        )
        for n in range(count)
    ]


def test_a_flooding_sender_is_held_to_its_quota_and_others_go_through(cluster: Cluster) -> None:
    flood = _envelopes(cluster, "ICBC", 400, 1)  # ten times the burst, in one go
    codes: Counter[str] = Counter()
    for node_id in cluster.node_ids:
        index = cluster.node_ids.index(node_id)
        part = flood[100 * index : 100 * (index + 1)]
        response = cluster.stub(node_id).SubmitBatch(
            ledger_pb2.SubmitBatchRequest(envelopes=part), timeout=30
        )
        codes.update(r.code for r in response.results)
    assert codes["RATE_LIMITED"] > 0, codes
    admitted = codes["OK"]
    # At most a burst per node, plus what the bucket refilled meanwhile; never all of them.
    assert admitted < 400, codes
    # A single Submit over quota is RESOURCE_EXHAUSTED with the code in the details.
    [extra] = _envelopes(cluster, "ICBC", 1, 10_000)
    refused = 0
    for _ in range(200):
        try:
            cluster.stub("node1").Submit(ledger_pb2.SubmitRequest(envelope=extra), timeout=10)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc
            assert (exc.details() or "").split(":")[0] in {"RATE_LIMITED", "SENDER_QUOTA"}, exc
            refused += 1
            break
        [extra] = _envelopes(cluster, "ICBC", 1, 10_001 + _)
    assert refused == 1
    # Another bank is unaffected by ICBC's quota.
    other = _envelopes(cluster, "CIB", 5, 1)
    tx_ids = cluster.submit("node2", other)
    assert len(tx_ids) == 5
    stub = cluster.stub("node2")
    for tx_id in tx_ids:
        receipt = stub.WaitForCommit(
            ledger_pb2.WaitForCommitRequest(
                tx_id=tx_id, timeout_ms=60_000, viewer=cluster.session("node2")
            ),
            timeout=65,
        )
        assert receipt.result.code  # executed (the contract's own answer)
    assert {decode_envelope(e).tx_id for e in other} == set(tx_ids)
