"""An observer added to a running 4-validator network (real processes, gRPC over mutual TLS,
LevelDB): it follows the validators under load and ends with their block hashes and state roots
at every height, answers a regulator's signed query and read-session reads like a validator,
refuses writes with OBSERVER_READ_ONLY naming a validator, shows its lag on its metrics endpoint
and in ``network status``, keeps an audit log of its own signed with its TLS key, and never
takes part in consensus: the validators accepted no Exchange call from it (they refuse one
when it tries) and counted its block fetches.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from ibledger.cli.manifest import ManifestObserver
from ibledger.consensus import decode_commit_certificate
from ibledger.node.crypto import get_suite, load_private_key
from ibledger.node.ledger import genesis_hash
from ibledger.node.observer import BEHIND_LAG_BLOCKS
from ibledger.node.peer import GENESIS_METADATA
from ibledger.node.tx import QUERY_SIGNING_DOMAIN, build_transaction
from ibledger.proto import ledger_pb2, peer_pb2, peer_pb2_grpc

from .cluster import Cluster, run_cli

pytestmark = pytest.mark.slow

OBSERVER = "regulator-copy"
VALIDATORS = ["node0", "node1", "node2", "node3"]
LOAD_S = 8.0
BATCH = 10


@dataclass
class Load:
    """Batches of ADMIN transactions sent round-robin to the validators from a thread."""

    cluster: Cluster
    acked: list[bytes] = field(default_factory=list)
    last_name: str = ""
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        round_number = 0
        while not self.stop.is_set():
            node_id = VALIDATORS[round_number % len(VALIDATORS)]
            names = [f"Registrar {round_number}-{i}" for i in range(BATCH)]
            try:
                self.acked += self.cluster.submit(
                    node_id, [self.cluster.envelope(name) for name in names]
                )
                self.last_name = names[-1]
            except grpc.RpcError as exc:
                self.errors.append(f"{node_id}: {exc}")
            round_number += 1
            time.sleep(0.1)


@dataclass
class Scenario:
    cluster: Cluster
    observer: ManifestObserver
    load: Load
    height: int


def _metrics(address: str) -> dict[str, float]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://{address}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    cluster = Cluster.create(tmp_path_factory.mktemp("net") / "network")
    cluster.up()
    try:
        load = Load(cluster)
        thread = threading.Thread(target=load.run, name="load", daemon=True)
        thread.start()
        try:
            time.sleep(2.0)  # the network has blocks before the observer exists
            run_cli("network", "add-observer", "--network", str(cluster.directory), "--name",
                    OBSERVER)  # fmt: skip
            cluster.reload_manifest()
            result = run_cli("network", "up", "--dir", str(cluster.directory), "--timeout", "60")
            assert result.stdout.count("already running") == 4, result.stdout
            # The observer follows while the load goes on: its height grows and its lag stays
            # bounded (it was ready, so within a few blocks, when `network up` returned).
            metrics = str(cluster.manifest.processes[-1].metrics)
            lags, heights = [], []
            deadline = time.monotonic() + LOAD_S
            while time.monotonic() < deadline:
                samples = _metrics(metrics)
                lags.append(samples["ibledger_observer_lag_blocks"])
                heights.append(samples["ibledger_height"])
                time.sleep(0.5)
            assert heights[-1] > heights[0], heights
            assert max(lags) <= BEHIND_LAG_BLOCKS, lags
        finally:
            load.stop.set()
            thread.join(timeout=30)
        assert not load.errors, load.errors
        cluster.wait_committed("node0", load.acked, timeout_s=120)
        height = cluster.wait_heights_equal([*VALIDATORS, OBSERVER], timeout_s=120)
        observer = cluster.manifest.observer(OBSERVER)
        assert observer is not None
        yield Scenario(cluster, observer, load, height)
    finally:
        cluster.down()


def test_the_observer_ends_with_the_validators_chain(scenario: Scenario) -> None:
    cluster = scenario.cluster
    assert scenario.load.acked  # the load ran while the observer followed (how much: the machine)
    observer_blocks = cluster.blocks(OBSERVER)
    assert len(observer_blocks) == scenario.height + 1
    hashes = [block.block_hash for block in observer_blocks]
    roots = [block.state_root for block in observer_blocks]
    for node_id in VALIDATORS:
        blocks = cluster.blocks(node_id)
        assert [block.block_hash for block in blocks] == hashes, node_id
        assert [block.state_root for block in blocks] == roots, node_id
    # Every acknowledged transaction is in the observer's copy exactly once.
    _, _, counts = cluster.chain_summary(OBSERVER)
    assert all(counts.get(tx_id) == 1 for tx_id in scenario.load.acked)
    # Each certificate it stored is signed by validators only (a quorum of them).
    for block in observer_blocks[1:]:
        signers = {rid for rid, _ in decode_commit_certificate(block.certificate).signatures}
        assert signers <= set(VALIDATORS) and len(signers) >= 3, block.header.height


def test_the_observer_answers_a_regulators_query(scenario: Scenario) -> None:
    cluster = scenario.cluster
    keypair = load_private_key(cluster.manifest.identities["REGULATOR"].key_file)
    query = build_transaction(
        keypair,
        chain_id=cluster.manifest.chain_id,
        sender="REGULATOR",
        operation="query.participant",
        args={"id": "CSDC"},
        nonce=1,
        expires_at_ms=int(time.time() * 1000) + 60_000,
        domain=QUERY_SIGNING_DOMAIN,
    )
    request = ledger_pb2.QueryRequest(envelope=query)
    on_observer = cluster.stub(OBSERVER).Query(request, timeout=10)
    on_validator = cluster.stub("node0").Query(request, timeout=10)
    assert on_observer.height == on_validator.height == scenario.height
    assert on_observer.result == on_validator.result
    assert scenario.load.last_name.encode() in on_observer.result
    # A receipt read under the regulator's read session, as from a validator.
    tx_id = scenario.load.acked[-1]
    receipt = cluster.stub(OBSERVER).GetReceipt(
        ledger_pb2.GetReceiptRequest(tx_id=tx_id, viewer=cluster.session(OBSERVER)), timeout=10
    )
    assert receipt.result.code == "OK" and receipt.envelope


@pytest.mark.parametrize("method", ["Submit", "SubmitBatch"])
def test_the_observer_refuses_writes_naming_a_validator(scenario: Scenario, method: str) -> None:
    cluster = scenario.cluster
    envelope = cluster.envelope("Registrar, sent to the observer")
    stub = cluster.stub(OBSERVER)
    with pytest.raises(grpc.RpcError) as refused:
        if method == "Submit":
            stub.Submit(ledger_pb2.SubmitRequest(envelope=envelope), timeout=10)
        else:
            stub.SubmitBatch(ledger_pb2.SubmitBatchRequest(envelopes=[envelope]), timeout=10)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
    details = refused.value.details() or ""  # type: ignore[attr-defined]
    assert details.startswith(f"OBSERVER_READ_ONLY: {OBSERVER} is an observer"), details
    named = [v for v in VALIDATORS if f"validator, e.g. {v} at {cluster.address(v)}" in details]
    assert named, details
    refusals = _metrics(str(scenario.observer.metrics))
    assert refusals['ibledger_api_refused_total{code="OBSERVER_READ_ONLY"}'] >= 1


def test_the_observer_lag_is_on_its_metrics_and_in_network_status(scenario: Scenario) -> None:
    cluster = scenario.cluster
    samples = _metrics(str(scenario.observer.metrics))
    assert samples["ibledger_observer_lag_blocks"] == 0
    assert samples["ibledger_observer_validators_height"] == scenario.height
    assert samples["ibledger_height"] == scenario.height
    assert samples["ibledger_observer_seconds_since_block"] >= 0
    assert samples["ibledger_observer_validators_connected"] == len(VALIDATORS)
    result = run_cli("network", "status", "--dir", str(cluster.directory), "--json")
    rows = {row["node_id"]: row for row in json.loads(result.stdout)["nodes"]}
    assert list(rows) == [*VALIDATORS, OBSERVER]
    row = rows[OBSERVER]
    assert row["role"] == "observer" and row["up"] is True
    assert row["height"] == scenario.height and row["lag_blocks"] == 0
    assert row["seconds_since_block"] is not None
    assert row["state_root"] == rows["node0"]["state_root"]
    assert all(rows[v]["role"] == "validator" for v in VALIDATORS)
    text = run_cli("network", "status", "--dir", str(cluster.directory)).stdout
    line = next(line for line in text.splitlines() if line.startswith(OBSERVER))
    assert line.split()[1:3] == ["observer", "up"] and " 0 blk / " in line


def test_validators_served_the_observer_blocks_but_no_consensus(scenario: Scenario) -> None:
    cluster = scenario.cluster
    fetched = 0.0
    for node_id in VALIDATORS:
        node = cluster.manifest.node(node_id)
        assert node is not None
        samples = _metrics(str(node.metrics))
        calls = {
            name: value
            for name, value in samples.items()
            if name.startswith("ibledger_peer_calls_total{")
        }
        observer_calls = {name for name in calls if f'caller="{OBSERVER}"' in name}
        assert observer_calls, (node_id, sorted(calls))  # it asked every validator for its tip
        assert not any('method="Exchange"' in name for name in observer_calls), observer_calls
        fetched += sum(
            value for name, value in calls.items() if name in observer_calls and "Fetch" in name
        )
        # The validators' own consensus streams are counted the same way.
        assert any('method="Exchange"' in name for name in calls), (node_id, sorted(calls))
    assert fetched >= 1


def test_a_validator_refuses_consensus_messages_from_the_observer(scenario: Scenario) -> None:
    """The observer's certificate is the CA's, but for an observer: Exchange is refused before
    any frame is read, even for a frame that claims to come from a validator."""
    cluster = scenario.cluster
    tls = Path(scenario.observer.dir) / "tls"
    assert cluster.manifest.ca_cert is not None
    credentials = grpc.ssl_channel_credentials(
        root_certificates=cluster.manifest.ca_cert.read_bytes(),
        private_key=(tls / "node.key").read_bytes(),
        certificate_chain=(tls / "node.crt").read_bytes(),
    )
    node0 = cluster.manifest.node("node0")
    assert node0 is not None
    channel = grpc.secure_channel(
        str(node0.peer), credentials, options=[("grpc.ssl_target_name_override", "node0")]
    )
    try:
        stub = peer_pb2_grpc.PeerStub(channel)
        frames = iter([peer_pb2.PeerFrame(sender="node1", messages=[b"\x00"], height=10**6)])
        with pytest.raises(grpc.RpcError) as refused:
            for _ in stub.Exchange(frames, timeout=10):
                pass
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
        details = refused.value.details() or ""  # type: ignore[attr-defined]
        assert details == (
            f"FORBIDDEN: {OBSERVER} is an observer; it may fetch blocks but not call Exchange"
        )
        # The same certificate may fetch certified blocks (naming the network's genesis).
        genesis = cluster.manifest.genesis()
        digest = genesis_hash(get_suite(genesis["crypto_suite"]), genesis)
        blocks = list(
            stub.FetchBlocks(
                peer_pb2.FetchBlocksRequest(from_height=1, to_height=2),
                timeout=10,
                metadata=((GENESIS_METADATA, digest.hex()),),
            )
        )
        assert [block.header.height for block in blocks] == [1, 2]
    finally:
        channel.close()
    samples = _metrics(str(node0.metrics))
    assert f'ibledger_peer_calls_total{{caller="{OBSERVER}",method="Exchange"}}' not in samples


def test_client_commands_reach_the_observer_only_when_named(scenario: Scenario) -> None:
    """Client commands use the manifest's validators; ``--node`` names the observer, whose TLS
    name the manifest gives, and a transaction sent there fails with the read-only code."""
    cluster = scenario.cluster
    network = ["--network", str(cluster.directory)]
    address = cluster.address(OBSERVER)
    shown = json.loads(run_cli("status", *network, "--node", address, "--json").stdout)
    assert shown["node_id"] == OBSERVER and shown["height"] >= scenario.height
    default = json.loads(run_cli("status", *network, "--json").stdout)
    assert default["node_id"] in VALIDATORS  # without --node, a validator of the manifest
    args = json.dumps({"participant": "CSDC", "name": "Registrar, by the CLI"})
    refused = run_cli(
        "tx", "submit", "identity.update_details", "--args", args, "--as", "ADMIN",
        *network, "--node", address, check=False,
    )  # fmt: skip
    assert refused.returncode == 1, refused.stdout
    assert "OBSERVER_READ_ONLY" in refused.stderr and "send transactions to a validator" in (
        refused.stderr
    ), refused.stderr


def _audit_records(audit_dir: Path) -> list[dict[str, object]]:
    records = []
    for segment in sorted(audit_dir.glob("audit-*.jsonl")):
        for line in segment.read_text().splitlines():
            with contextlib.suppress(ValueError):  # a line the writer has not finished
                records.append(json.loads(line))
    return records


def test_the_observer_keeps_its_own_audit_log_signed_with_its_tls_key(scenario: Scenario) -> None:
    """Like a validator, it records the calls it refused and the governance it executed, in a
    hash chain whose heads it signs with its TLS key (it holds no validator key)."""
    cluster, observer_dir = scenario.cluster, Path(scenario.observer.dir)
    audit_dir = observer_dir / "data" / "audit"
    stub = cluster.stub(OBSERVER)
    with pytest.raises(grpc.RpcError):
        stub.Submit(ledger_pb2.SubmitRequest(envelope=cluster.envelope("Refused here")), timeout=10)
    verify = ["audit", "verify", str(audit_dir), "--json"]
    deadline = time.monotonic() + 60
    while True:
        records = _audit_records(audit_dir)
        kinds = {str(r["kind"]) for r in records}
        refused = [
            r for r in records
            if r["kind"] == "client.refused"
            and r["fields"]["reason"] == "OBSERVER_READ_ONLY"  # type: ignore[index]
        ]  # fmt: skip
        report = json.loads(run_cli(*verify, "--certificate", str(observer_dir / "tls" /
                                    "node.crt")).stdout)  # fmt: skip
        if "governance" in kinds and refused and report["heads"] >= 1:
            break
        assert time.monotonic() < deadline, (sorted(kinds), report)
        time.sleep(0.5)
    assert report["ok"] is True and report["node_id"] == OBSERVER, report
    assert report["signatures_checked"], report
    # Another node's certificate does not verify its heads.
    other = cluster.directory / "nodes" / "node0" / "tls" / "node.crt"
    result = run_cli(*verify, "--certificate", str(other), check=False)
    assert result.returncode != 0 and "does not verify" in result.stdout, result.stdout


def test_the_observer_restarts_from_its_own_ledger(scenario: Scenario) -> None:
    """Killed and started again, it opens its ledger where it was and fetches only what the
    validators committed meanwhile (this test runs last: it changes the chain)."""
    cluster = scenario.cluster
    before = cluster.status(OBSERVER).height
    pid = int((Path(scenario.observer.dir) / "node.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)
    tx_ids = cluster.submit("node1", [cluster.envelope(f"Registrar, later {i}") for i in range(5)])
    cluster.wait_committed("node1", tx_ids, timeout_s=60)
    result = run_cli("network", "up", "--dir", str(cluster.directory), "--timeout", "60")
    assert result.stdout.count("already running") == 4, result.stdout
    height = cluster.wait_heights_equal([*VALIDATORS, OBSERVER], timeout_s=60)
    assert height > before
    samples = _metrics(str(scenario.observer.metrics))
    fetched = samples["ibledger_state_transfer_blocks_total"]
    assert 1 <= fetched <= height - before, (fetched, height, before)
    assert [b.block_hash for b in cluster.blocks(OBSERVER)] == [
        b.block_hash for b in cluster.blocks("node2")
    ]
