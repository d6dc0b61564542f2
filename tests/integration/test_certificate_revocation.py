"""A node's TLS certificate revoked by governance on a running 4-validator network (real
processes): from the block that executes the revocation every validator refuses peer calls made
with it, a stream opened before included, with ``CERTIFICATE_REVOKED``; the refusals are in the
validators' audit logs; the other three go on committing; and a restarted validator reads the
revocation back from its ledger. Then a rotation: ``network rotate-cert`` gives node1 a new
certificate and restarts it alone, and once the old one is revoked only the new one works.
Deadlines bound hangs only."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from ibledger.node.crypto import get_suite
from ibledger.node.ledger import genesis_hash
from ibledger.node.peer import GENESIS_METADATA
from ibledger.node.pki import certificate_sha256
from ibledger.proto import peer_pb2, peer_pb2_grpc

from .cluster import Cluster, run_cli

pytestmark = pytest.mark.slow

REVOKED = "node3"
DEADLINE_S = 90


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster.create(tmp_path_factory.mktemp("revocation") / "network")
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


def _tip_with_certificate_of(cluster: Cluster, holder: str, target: str) -> grpc.RpcError | int:
    """Call ``target``'s peer ``Tip`` with ``holder``'s TLS certificate: its height, or the
    refusal."""
    tls = cluster.directory / "nodes" / holder / "tls"
    return _tip_with(cluster, tls / "node.crt", tls / "node.key", target)


def _tip_with(cluster: Cluster, cert: Path, key: Path, target: str) -> grpc.RpcError | int:
    assert cluster.manifest.ca_cert is not None
    credentials = grpc.ssl_channel_credentials(
        root_certificates=cluster.manifest.ca_cert.read_bytes(),
        private_key=key.read_bytes(),
        certificate_chain=cert.read_bytes(),
    )
    node = cluster.manifest.node(target)
    assert node is not None
    genesis = cluster.manifest.genesis()
    digest = genesis_hash(get_suite(genesis["crypto_suite"]), genesis).hex()
    channel = grpc.secure_channel(
        str(node.peer), credentials, options=[("grpc.ssl_target_name_override", target)]
    )
    try:
        stub = peer_pb2_grpc.PeerStub(channel)
        reply = stub.Tip(peer_pb2.TipRequest(), timeout=10, metadata=((GENESIS_METADATA, digest),))
        return int(reply.height)
    except grpc.RpcError as exc:
        return exc
    finally:
        channel.close()


def _wait(what: str, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _refusals(cluster: Cluster, node_id: str) -> list[dict[str, object]]:
    audit_dir = cluster.directory / "nodes" / node_id / "data" / "audit"
    found = []
    for segment in sorted(audit_dir.glob("audit-*.jsonl")):
        for line in segment.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line the writer has not finished
            if record["kind"] == "peer.refused":
                found.append(record["fields"])
    return found


def test_a_revoked_certificate_is_refused_by_every_validator_from_its_height_on(
    cluster: Cluster,
) -> None:
    others = [n for n in cluster.node_ids if n != REVOKED]
    before = cluster.status("node0").height
    # Before: the certificate is good on every peer port.
    for node in others:
        assert isinstance(_tip_with_certificate_of(cluster, REVOKED, node), int)

    certificate = cluster.directory / "nodes" / REVOKED / "tls" / "node.crt"
    fingerprint = certificate_sha256(certificate.read_bytes())
    result = run_cli(
        "governance", "propose", "revoke-certificate", str(certificate),
        "--reason", "private key exposed", "--as", "ADMIN",
        "--network", str(cluster.directory), "--node", cluster.address("node0"), "--json",
    )  # fmt: skip
    receipt = json.loads(result.stdout)
    assert receipt["code"] == "OK" and receipt["executed"] is True, receipt
    height = int(receipt["height"])
    assert height > before

    # From that block on: every validator that executed it refuses the certificate by name.
    for node in others:
        cluster.wait_heights_at_least([node], height, DEADLINE_S)
        refused = _tip_with_certificate_of(cluster, REVOKED, node)
        assert isinstance(refused, grpc.RpcError), (node, refused)
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
        details = refused.details() or ""  # type: ignore[attr-defined]
        assert details.startswith(f"CERTIFICATE_REVOKED: {REVOKED}'s certificate "), details
        assert fingerprint[:16] in details
        # Another node's certificate is still good.
        assert isinstance(_tip_with_certificate_of(cluster, "node1", node), int)

    # node3's own Exchange streams, open since before the block, are cut too: each validator's
    # audit log records refusing it.
    def streams_refused() -> bool:
        return all(
            any(
                r.get("reason") == "CERTIFICATE_REVOKED" and r.get("caller") == REVOKED
                for r in _refusals(cluster, node)
            )
            for node in others
        )

    _wait("every validator to record refusing the revoked certificate", streams_refused)

    # The other three are a quorum: they go on committing.
    tx_ids = cluster.submit("node1", [cluster.envelope(f"After revocation {i}") for i in range(3)])
    cluster.wait_committed("node1", tx_ids, timeout_s=DEADLINE_S)


def test_a_restarted_validator_reads_the_revocation_back_from_its_ledger(
    cluster: Cluster,
) -> None:
    cluster.kill("node2")
    run_cli("network", "up", "--dir", str(cluster.directory), "--timeout", "60")
    refused = _tip_with_certificate_of(cluster, REVOKED, "node2")
    assert isinstance(refused, grpc.RpcError), refused
    assert (refused.details() or "").startswith("CERTIFICATE_REVOKED"), refused.details()  # type: ignore[attr-defined]
    log = Path(cluster.directory / "nodes" / "node2" / "node.log").read_text()
    assert '"event": "certificate-revoked"' in log


def test_a_rotated_certificate_takes_over_and_the_old_one_is_then_revoked(
    cluster: Cluster,
) -> None:
    """``network rotate-cert`` gives node1 a new certificate and restarts node1 alone; the old
    one works until governance revokes it, the new one after."""
    node, others = "node1", ["node0", "node2"]
    tls = cluster.directory / "nodes" / node / "tls"
    kept = cluster.directory / "old-node1-tls"  # the test keeps the old key; the command does not
    kept.mkdir()
    (kept / "node.crt").write_bytes((tls / "node.crt").read_bytes())
    (kept / "node.key").write_bytes((tls / "node.key").read_bytes())
    pids = {n: cluster.pid(n) for n in others}

    result = run_cli("network", "rotate-cert", node, "--dir", str(cluster.directory), "--json")
    rotated = json.loads(result.stdout)
    assert rotated["restarted"] is True, rotated
    assert rotated["replaced_sha256"] == certificate_sha256((kept / "node.crt").read_bytes())
    assert rotated["certificate_sha256"] == certificate_sha256((tls / "node.crt").read_bytes())
    assert (kept / "node.key").read_bytes() != (tls / "node.key").read_bytes()
    assert {n: cluster.pid(n) for n in others} == pids, "another node was restarted"
    # The restarted node takes part with its new certificate: its transaction commits.
    tx_ids = cluster.submit(node, [cluster.envelope("Through the rotated node")])
    cluster.wait_committed(node, tx_ids, timeout_s=DEADLINE_S)
    assert isinstance(_tip_with(cluster, kept / "node.crt", kept / "node.key", "node0"), int)

    run_cli(
        "governance", "propose", "revoke-certificate", rotated["replaced"],
        "--reason", "rotated", "--as", "ADMIN",
        "--network", str(cluster.directory), "--node", cluster.address("node0"), "--json",
    )  # fmt: skip
    cluster.wait_heights_equal(["node0", "node1", "node2"], timeout_s=DEADLINE_S)
    refused = _tip_with(cluster, kept / "node.crt", kept / "node.key", "node0")
    assert isinstance(refused, grpc.RpcError), refused
    assert (refused.details() or "").startswith("CERTIFICATE_REVOKED"), refused  # type: ignore[attr-defined]
    assert isinstance(_tip_with_certificate_of(cluster, node, "node0"), int)
    tx_ids = cluster.submit(node, [cluster.envelope("After the old certificate is revoked")])
    cluster.wait_committed(node, tx_ids, timeout_s=DEADLINE_S)
