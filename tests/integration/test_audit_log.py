"""Four real nodes, one of them started from a genesis one byte different: node0's audit log
records the peers it refused (GENESIS_MISMATCH, and a consortium certificate for a node that is
not a validator), the client requests it refused (an unknown
sender, bytes that are not protobuf) and a committed participant registration; after a clean
stop ``ibledger audit verify`` passes with the node's key from genesis, and names the entry once
one byte of it is changed.  Restarted without its log, the node writes a new one that holds the
registration again, read back from the ledger.  Killed with ``kill -9`` and a line torn, a node
cuts and records the torn line, continues its chain, and repeats no governance record."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization

from ibledger.cli.client import api_channel
from ibledger.node import pki
from ibledger.node.audit import AGGREGATE_INTERVAL_MS_DEFAULT, read_records
from ibledger.node.crypto import generate_keypair
from ibledger.node.tx import build_transaction, decode_envelope
from ibledger.proto import ledger_pb2, peer_pb2, peer_pb2_grpc

from .cluster import Cluster, run_cli

pytestmark = pytest.mark.slow

FLOOD = 300


def _records(audit_dir: Path) -> list[tuple[str, int, dict[str, Any]]]:
    if not audit_dir.exists():
        return []
    return [(f, n, r) for f, n, r, problem in read_records([audit_dir]) if r and not problem]


def _find(records: list[tuple[str, int, dict[str, Any]]], kind: str, **fields: Any) -> Any:
    for file, line, record in records:
        if record["kind"] == kind and all(record["fields"].get(k) == v for k, v in fields.items()):
            return file, line, record
    return None


def _registration(cluster: Cluster, participant: str, nonce: int) -> bytes:
    newcomer = generate_keypair()
    return build_transaction(
        cluster.admin,
        chain_id=cluster.manifest.chain_id,
        sender="ADMIN",
        operation="identity.register",
        args={
            "id": participant,
            "name": f"{participant} Ltd",
            "roles": ["registrar"],
            "keys": [{"suite": newcomer.suite, "public_key": newcomer.public_key.hex()}],
        },
        nonce=nonce,
    )


def _wait_for(audit_dir: Path, kind: str, timeout_s: float = 60, **fields: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while _find(_records(audit_dir), kind, **fields) is None:
        assert time.monotonic() < deadline, f"no {kind} {fields} in {audit_dir}"
        time.sleep(0.2)


def test_refusals_and_governance_are_in_a_verifiable_audit_log(tmp_path: Path) -> None:
    cluster = Cluster.create(tmp_path / "network")
    node_dir = cluster.directory / "nodes" / "node3"
    genesis = json.loads((cluster.directory / "genesis.json").read_text())
    genesis["participants"][1]["name"] += "."  # one byte
    (node_dir / "genesis.json").write_text(json.dumps(genesis, indent=2))
    toml = node_dir / "node.toml"
    toml.write_text(toml.read_text().replace('"../../genesis.json"', '"genesis.json"'))
    audit_dir = cluster.directory / "nodes" / "node0" / "data" / "audit"
    chain_id = cluster.manifest.chain_id

    cluster.up_without("node3")  # never ready: its peers refuse its genesis
    try:
        stranger = build_transaction(
            generate_keypair(),
            chain_id=chain_id,
            sender="NOBODY",
            operation="identity.update_details",
            args={"participant": "NOBODY", "name": "n"},
            nonce=1,
        )
        [rejected] = (
            cluster.stub("node0")
            .SubmitBatch(ledger_pb2.SubmitBatchRequest(envelopes=[stranger]), timeout=10)
            .results
        )
        assert (rejected.status, rejected.code) == (ledger_pb2.REJECTED, "UNKNOWN_SENDER")

        raw = api_channel(cluster.address("node0"), cluster.manifest.ca_cert, "node0").unary_unary(
            "/ibledger.v1.Ledger/Submit",
            request_serializer=lambda data: data,
            response_deserializer=lambda data: data,
        )
        flood_started = time.monotonic()
        with pytest.raises(grpc.RpcError) as caught:
            raw(b"\xff\xff\xff\xff\x0f\x00\x01", timeout=10)
        assert (caught.value.details() or "").startswith("MALFORMED_REQUEST:")
        # A flood from the same caller: counted, not written line by line.
        for _ in range(FLOOD):
            with pytest.raises(grpc.RpcError):
                raw(b"\xff\xff\xff\xff\x0f\x00\x01", timeout=10)
        flood_s = time.monotonic() - flood_started

        outsider = pki.issue_node_certificate(pki.load_ca(cluster.directory / "ca"), "node9")
        credentials = grpc.ssl_channel_credentials(
            (cluster.directory / "ca" / "ca.crt").read_bytes(),
            outsider.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            outsider.certificate_pem,
        )
        node0 = cluster.manifest.node("node0")
        assert node0 is not None
        peer_address = f"{node0.peer.host}:{node0.peer.port}"
        with grpc.secure_channel(
            peer_address, credentials, options=pki.channel_options("node0")
        ) as channel:
            request = peer_pb2.FetchBlocksRequest(from_height=1, to_height=1)
            with pytest.raises(grpc.RpcError) as refused:
                list(peer_pb2_grpc.PeerStub(channel).FetchBlocks(request, timeout=10))
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED

        register = _registration(cluster, "AUDITCO", 900_001)
        cluster.wait_committed("node0", cluster.submit("node0", [register]), timeout_s=60)
        _wait_for(audit_dir, "peer.refused", reason="GENESIS_MISMATCH")
        _wait_for(audit_dir, "governance", event="identity.registered")
        url = f"http://{node0.metrics.host}:{node0.metrics.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert "\nibledger_audit_broken 0" in response.read().decode()
    finally:
        stopped = cluster.down()
    # A node killed after the SIGTERM deadline leaves its audit chain without the closing
    # signed head, and the --require-signed check below would fail for that reason alone.
    assert stopped.get("node0") == "stopped", (stopped, cluster.log_tail("node0"))

    records = _records(audit_dir)
    _, _, peer = _find(records, "peer.refused", reason="GENESIS_MISMATCH")
    assert peer["fields"]["caller"] == "node3"
    assert "GENESIS_MISMATCH" in peer["fields"]["example"]["detail"]
    _, _, outsider_record = _find(records, "peer.refused", reason="FORBIDDEN")
    assert outsider_record["fields"]["caller"] == "node9"
    _, _, unknown = _find(records, "client.refused", reason="UNKNOWN_SENDER")
    assert unknown["fields"]["caller"] == "ipv4:127.0.0.1"
    assert unknown["fields"]["example"]["method"] == "SubmitBatch"
    _, _, malformed = _find(records, "client.refused", reason="MALFORMED_REQUEST")
    assert malformed["fields"]["example"] == {"bytes": 7, "method": "Submit"}
    malformed_records = [
        r["fields"]
        for _, _, r in records
        if r["kind"] == "client.refused" and r["fields"]["reason"] == "MALFORMED_REQUEST"
    ]
    assert sum(f["count"] for f in malformed_records) == 1 + FLOOD
    # One record at once, then at most one per aggregation window the flood spanned.
    windows = 2 + int(flood_s / (AGGREGATE_INTERVAL_MS_DEFAULT / 1000))
    assert len(malformed_records) <= 1 + windows, malformed_records
    file, line, registered = _find(records, "governance", event="identity.registered")
    assert registered["fields"]["sender"] == "ADMIN"
    assert registered["fields"]["attrs"]["participant"] == "AUDITCO"
    assert registered["fields"]["height"] >= 1

    genesis_file = str(cluster.directory / "genesis.json")
    verify = ("audit", "verify", str(audit_dir), "--genesis", genesis_file, "--require-signed")
    report = json.loads(run_cli(*verify, "--json").stdout)
    assert report["ok"] is True and report["node_id"] == "node0", report
    assert report["signatures_checked"] and report["heads"] >= 1, report

    path = Path(file)
    data = path.read_bytes()
    at = data.index(b"AUDITCO")
    path.write_bytes(data[:at] + b"AUDITCP" + data[at + len(b"AUDITCO") :])
    result = run_cli(*verify, "--json", check=False)
    assert result.returncode != 0
    problem = json.loads(result.stdout)["problem"]
    assert (problem["seq"], problem["line"], problem["file"]) == (registered["seq"], line, file)
    assert "AUDIT_BROKEN" in result.stderr
    text = run_cli(*verify, check=False).stdout
    assert text.startswith(f"BROKEN at seq {registered['seq']} ")

    audit_dir.rename(audit_dir.with_name("audit.tampered"))
    cluster.up_without("node3")
    cluster.down()
    assert json.loads(run_cli(*verify, "--json").stdout)["ok"] is True
    replayed = [r for _, _, r in _records(audit_dir) if r["kind"] == "governance"]
    assert [
        (r["fields"]["attrs"]["participant"], r["fields"].get("replayed")) for r in replayed
    ] == [("AUDITCO", True)]
    assert replayed[0]["fields"]["height"] == registered["fields"]["height"]


def _participants(audit_dir: Path) -> list[str]:
    return [
        r["fields"]["attrs"]["participant"]
        for _, _, r in _records(audit_dir)
        if r["kind"] == "governance"
    ]


def test_a_killed_node_cuts_a_torn_line_and_continues_its_chain(tmp_path: Path) -> None:
    cluster = Cluster.create(tmp_path / "network")
    audit_dir = cluster.directory / "nodes" / "node0" / "data" / "audit"
    genesis_file = str(cluster.directory / "genesis.json")
    verify = ("audit", "verify", str(audit_dir), "--genesis", genesis_file)
    cluster.up()
    try:
        first = _registration(cluster, "FIRSTCO", 900_101)
        cluster.wait_committed("node0", cluster.submit("node0", [first]), timeout_s=60)
        _wait_for(audit_dir, "governance", event="identity.registered")
        cluster.kill("node0")
        # As if the crash came right after the governance record: its head (and whatever
        # followed) never written, and the next line cut short.
        [segment] = sorted(audit_dir.iterdir())
        lines = segment.read_bytes().splitlines(keepends=True)
        [at] = [i for i, line in enumerate(lines) if b'"participant":"FIRSTCO"' in line]
        torn = b'{"fields":{"caller":"ipv4:127.0'
        segment.write_bytes(b"".join(lines[: at + 1]) + torn)
        result = run_cli(*verify, "--json", check=False)
        assert result.returncode != 0
        assert "incomplete" in json.loads(result.stdout)["problem"]["message"]

        cluster.up()
        second = _registration(cluster, "SECONDCO", 900_102)
        cluster.wait_committed("node1", cluster.submit("node1", [second]), timeout_s=60)
        cluster.wait_committed("node0", [decode_envelope(second).tx_id], timeout_s=60)
        deadline = time.monotonic() + 60
        while "SECONDCO" not in _participants(audit_dir):
            assert time.monotonic() < deadline, _participants(audit_dir)
            time.sleep(0.2)
    finally:
        cluster.down()

    report = json.loads(run_cli(*verify, "--require-signed", "--json").stdout)
    assert report["ok"] is True, report
    assert report["records_by_kind"]["audit.open"] == 2
    [cut] = report["torn_tails"]
    assert cut["bytes"] == len(torn) and cut["segment"] == segment.name
    assert _participants(audit_dir) == ["FIRSTCO", "SECONDCO"]  # none repeated by the replay
