"""Four real node processes on loopback, driven the way an operator and a client would: commits
on every node, crash and restart of backups and of the primary, loss of quorum, catch-up, the
peer port's TLS gate, size limits and replay rules. One network serves the whole module; the
tests run in file order and the last one checks every acknowledged transaction against every
node's chain."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization

from ibledger.contracts.codec import canonical_decode
from ibledger.node import pki
from ibledger.node.blocks import BlockHeader, txs_root
from ibledger.node.crypto import get_suite
from ibledger.node.ledger import genesis_hash
from ibledger.node.peer import GENESIS_METADATA
from ibledger.proto import ledger_pb2, peer_pb2, peer_pb2_grpc

from .cluster import SUITES, Cluster, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=SUITES)
def cluster(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Cluster]:
    cluster = Cluster.create(tmp_path_factory.mktemp("net") / "network", crypto=request.param)
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


def _primary(cluster: Cluster, among: list[str]) -> str:
    return cluster.status(among[0]).primary


def test_transactions_submitted_to_every_node_commit_on_all(cluster: Cluster) -> None:
    tx_ids: list[bytes] = []
    for index, node_id in enumerate(cluster.node_ids):
        batch = [cluster.envelope(f"n{index}-{i}") for i in range(10)]
        tx_ids += cluster.submit(node_id, batch)
    assert len(tx_ids) == 40
    cluster.wait_committed("node0", tx_ids, timeout_s=20)
    height = cluster.wait_heights_equal(cluster.node_ids, timeout_s=10)
    roots = {cluster.status(n).state_root for n in cluster.node_ids}
    assert height >= 1 and len(roots) == 1
    for node_id in cluster.node_ids:  # every node serves every receipt
        receipt = cluster.stub(node_id).GetReceipt(
            ledger_pb2.GetReceiptRequest(tx_id=tx_ids[-1], viewer=cluster.session(node_id))
        )
        assert receipt.result.code == "OK"


def test_ids_block_hashes_and_certificates_follow_the_chains_suite(cluster: Cluster) -> None:
    """On an sm2-sm3 chain every hash the network computes is SM3 and every signature SM2: the
    node's transaction ids, the Merkle root over them, the block hash, and the commit
    certificate's digest, checked here from raw bytes and by `block show --verify`."""
    suite = cluster.manifest.genesis()["crypto_suite"]
    hash_name, other = ("sm3", "sha256") if suite == "sm2-sm3" else ("sha256", "sm3")
    envelopes = [cluster.envelope(f"suite-{i}") for i in range(3)]
    tx_ids = cluster.submit("node0", envelopes)
    payloads = [cluster.decode(e).payload for e in envelopes]
    assert tx_ids == [hashlib.new(hash_name, p).digest() for p in payloads]
    assert tx_ids != [hashlib.new(other, p).digest() for p in payloads]
    cluster.wait_committed("node0", tx_ids, timeout_s=20)
    receipt = cluster.stub("node0").GetReceipt(
        ledger_pb2.GetReceiptRequest(tx_id=tx_ids[0], viewer=cluster.session("node0"))
    )
    block = cluster.stub("node0").GetBlock(
        ledger_pb2.GetBlockRequest(height=receipt.height, viewer=cluster.session("node0"))
    )
    chain_hash = get_suite(suite).hash
    header = BlockHeader.from_dict(canonical_decode(block.header.encoded))
    assert block.block_hash == header.hash(chain_hash)
    assert block.block_hash != hashlib.new(other, b"ibledger/header/v1" + header.encode()).digest()
    assert header.txs_root == txs_root(list(block.txs), chain_hash)
    assert list(block.request_ids) == [hashlib.new(hash_name, e).digest() for e in block.txs]
    shown = run_cli(
        "block", "show", str(receipt.height), "--verify", "--network", str(cluster.directory)
    )
    algorithms = {"sm2-sm3": "SM2 signatures, SM3 hashes"}.get(suite, "Ed25519 signatures")
    assert f": VERIFIED ({suite}: {algorithms}" in shown.stdout, shown.stdout


def test_every_node_serves_prometheus_metrics(cluster: Cluster) -> None:
    for node in cluster.manifest.nodes:
        url = f"http://{node.metrics.host}:{node.metrics.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        height = cluster.status(node.id).height
        values = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and line[0] != "#")
        assert int(float(values["ibledger_height"])) in (height, height + 1)
        assert float(values["ibledger_txs_committed_total"]) >= 40
        assert "# TYPE ibledger_blocks_committed_total counter" in text
        assert float(values["ibledger_peers_connected"]) == 3
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(url.replace("/metrics", "/other"), timeout=5)


def test_resubmission_returns_the_original_receipt(cluster: Cluster) -> None:
    envelope = cluster.envelope("once")
    [tx_id] = cluster.submit("node1", [envelope])
    cluster.wait_committed("node1", [tx_id], timeout_s=10)
    # node2 answers from what it has executed, which may trail node1's by a block or two.
    cluster.wait_committed("node2", [tx_id], timeout_s=10)
    first = cluster.stub("node1").GetReceipt(ledger_pb2.GetReceiptRequest(tx_id=tx_id))
    again = cluster.stub("node2").Submit(ledger_pb2.SubmitRequest(envelope=envelope))
    assert again.status == ledger_pb2.COMMITTED
    assert again.receipt.height == first.height and again.receipt.index == first.index
    assert again.receipt.block_hash == first.block_hash


@pytest.mark.parametrize(
    ("kind", "code"), [("expired", "EXPIRED"), ("foreign chain", "WRONG_CHAIN")]
)
def test_expired_and_foreign_chain_transactions_are_rejected(
    cluster: Cluster, kind: str, code: str
) -> None:
    if kind == "expired":
        envelope = cluster.envelope("late", expires_at_ms=int(time.time() * 1000) - 1000)
    else:
        envelope = cluster.envelope("elsewhere", chain_id="another-chain")
    with pytest.raises(grpc.RpcError) as caught:
        cluster.stub("node0").Submit(ledger_pb2.SubmitRequest(envelope=envelope))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.details().startswith(f"{code}: ")


def test_oversized_request_is_refused_and_the_node_keeps_serving(cluster: Cluster) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        cluster.stub("node0").Submit(
            ledger_pb2.SubmitRequest(envelope=b"\x00" * (4 * 1024 * 1024 + 1)), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.RpcError) as caught:
        cluster.stub("node0").Submit(
            ledger_pb2.SubmitRequest(envelope=b"\x94" + b"\x00" * 70_000), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "ENVELOPE_TOO_LARGE" in caught.value.details()
    assert cluster.status("node0").node_id == "node0"


def _peer_call(
    address: str,
    credentials: grpc.ChannelCredentials | None,
    metadata: tuple[tuple[str, str], ...] = (),
) -> grpc.StatusCode:
    options = pki.channel_options("node0")
    channel = (
        grpc.secure_channel(address, credentials, options=options)
        if credentials is not None
        else grpc.insecure_channel(address)
    )
    stub = peer_pb2_grpc.PeerStub(channel)
    try:
        request = peer_pb2.FetchBlocksRequest(from_height=1, to_height=1)
        list(stub.FetchBlocks(request, timeout=5, metadata=metadata))
    except grpc.RpcError as exc:
        return exc.code()
    finally:
        channel.close()
    return grpc.StatusCode.OK


def test_peer_port_refuses_callers_without_a_consortium_certificate(
    cluster: Cluster, tmp_path: Path
) -> None:
    node = cluster.manifest.node("node0")
    assert node is not None
    address = f"{node.peer.host}:{node.peer.port}"
    ca_pem = (cluster.directory / "ca" / "ca.crt").read_bytes()
    foreign_ca = pki.create_ca("another consortium")
    impostor = pki.issue_node_certificate(foreign_ca, "node1")
    impostor_key = impostor.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    own_dir = cluster.directory / "nodes" / "node1" / "tls"
    genuine = grpc.ssl_channel_credentials(
        ca_pem, (own_dir / "node.key").read_bytes(), (own_dir / "node.crt").read_bytes()
    )
    assert _peer_call(address, None) == grpc.StatusCode.UNAVAILABLE  # plaintext
    assert _peer_call(address, grpc.ssl_channel_credentials(ca_pem)) == (
        grpc.StatusCode.UNAVAILABLE  # TLS without a client certificate
    )
    assert (
        _peer_call(
            address, grpc.ssl_channel_credentials(ca_pem, impostor_key, impostor.certificate_pem)
        )
        == grpc.StatusCode.UNAVAILABLE  # a certificate from another CA
    )
    # A validator's certificate, but no genesis digest, or another one: refused too.
    assert _peer_call(address, genuine) == grpc.StatusCode.FAILED_PRECONDITION
    assert _peer_call(address, genuine, ((GENESIS_METADATA, "00" * 32),)) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    genesis = json.loads((cluster.directory / "genesis.json").read_text())
    digest = genesis_hash(get_suite(genesis["crypto_suite"]), genesis).hex()
    assert _peer_call(address, genuine, ((GENESIS_METADATA, digest),)) == grpc.StatusCode.OK
    # A certificate from the consortium CA, but for a node that is not a validator.
    outsider = pki.issue_node_certificate(pki.load_ca(cluster.directory / "ca"), "node9")
    outsider_key = outsider.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert (
        _peer_call(
            address, grpc.ssl_channel_credentials(ca_pem, outsider_key, outsider.certificate_pem)
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert cluster.status("node0").node_id == "node0"  # and the node keeps serving


def test_killed_backup_restarts_and_catches_up(cluster: Cluster) -> None:
    primary = _primary(cluster, cluster.node_ids)
    backup = next(n for n in reversed(cluster.node_ids) if n != primary)
    cluster.kill(backup)
    others = [n for n in cluster.node_ids if n != backup]
    for round_ in range(5):
        ids = cluster.submit(
            others[round_ % len(others)],
            [cluster.envelope(f"while-{backup}-down-{round_}-{i}") for i in range(20)],
        )
        cluster.wait_committed(others[0], ids, timeout_s=20)
    cluster.up()
    height = cluster.wait_heights_equal(cluster.node_ids, timeout_s=60)
    summaries = {n: cluster.chain_summary(n)[:2] for n in cluster.node_ids}
    assert len({(tuple(h), root) for h, root in summaries.values()}) == 1, height


def test_killed_primary_under_load_is_replaced(cluster: Cluster) -> None:
    primary = _primary(cluster, cluster.node_ids)
    view_before = cluster.status(primary).view
    backups = [n for n in cluster.node_ids if n != primary]
    submitted: list[bytes] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def load() -> None:
        round_ = 0
        while not stop.is_set():
            try:
                submitted.extend(
                    cluster.submit(
                        backups[round_ % 3],
                        [cluster.envelope(f"load-{round_}-{i}") for i in range(10)],
                    )
                )
            except grpc.RpcError as exc:  # pragma: no cover - reported below
                errors.append(exc)
            round_ += 1
            time.sleep(0.05)

    worker = threading.Thread(target=load)
    worker.start()
    time.sleep(1.0)
    cluster.kill(primary)
    time.sleep(3.0)
    stop.set()
    worker.join()
    assert not errors
    cluster.wait_committed(backups[0], submitted, timeout_s=30)
    status = cluster.status(backups[0])
    assert status.view > view_before and status.primary != primary
    cluster.up()
    cluster.wait_heights_equal(cluster.node_ids, timeout_s=60)


def test_no_block_commits_without_a_quorum_and_progress_resumes(cluster: Cluster) -> None:
    alive, down = cluster.node_ids[:2], cluster.node_ids[2:]
    for node_id in down:
        cluster.kill(node_id)
    heights = {n: cluster.status(n).height for n in alive}
    ids = cluster.submit(alive[0], [cluster.envelope(f"no-quorum-{i}") for i in range(10)])
    assert len(ids) == 10  # admitted...
    time.sleep(4.0)
    assert {n: cluster.status(n).height for n in alive} == heights  # ...but nothing commits
    cluster.up()
    cluster.wait_committed(alive[0], ids, timeout_s=60)
    cluster.wait_heights_equal(cluster.node_ids, timeout_s=60)


def test_whole_network_killed_mid_load_restarts_with_nothing_acknowledged_lost(
    cluster: Cluster,
) -> None:
    """kill -9 every node at once while blocks are being written."""
    committed_before = cluster.submit("node1", [cluster.envelope(f"c5-a{i}") for i in range(30)])
    cluster.wait_committed("node1", committed_before, timeout_s=30)
    in_flight = cluster.submit("node2", [cluster.envelope(f"c5-b{i}") for i in range(200)])
    for node_id in cluster.node_ids:
        cluster.kill(node_id)
    cluster.up()
    cluster.wait_heights_equal(cluster.node_ids, timeout_s=60)
    # Whatever was acknowledged before the crash is there; what was only admitted may be lost
    # with the mempools, and a client resubmits it: it commits once, never twice.
    cluster.submit("node0", [cluster.envelope(f"c5-c{i}") for i in range(5)])
    resubmitted = cluster.submit(
        "node3", [envelope for envelope in cluster.recent_envelopes(in_flight)]
    )
    cluster.wait_committed("node3", resubmitted, timeout_s=30)


def test_every_acknowledged_transaction_is_on_every_node_exactly_once(cluster: Cluster) -> None:
    cluster.wait_heights_equal(cluster.node_ids, timeout_s=30)
    summaries = {n: cluster.chain_summary(n) for n in cluster.node_ids}
    hashes = {tuple(s[0]) for s in summaries.values()}
    roots = {s[1] for s in summaries.values()}
    assert len(hashes) == 1 and len(roots) == 1
    assert len(cluster.acked) > 100
    for node_id, (_, _, counts) in summaries.items():
        missing = [t.hex() for t in cluster.acked if counts.get(t) != 1]
        assert not missing, f"{node_id}: {len(missing)} acknowledged txs not present exactly once"
