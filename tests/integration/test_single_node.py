"""One validator in the foreground, the way `ibledger node start` runs under a supervisor: a
single-node development chain commits, SIGTERM stops the node cleanly (exit status 0, the last
log line says so), and a restart resumes from the verified ledger."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from ibledger.cli.client import api_channel
from ibledger.cli.manifest import load_manifest
from ibledger.node.crypto import load_private_key
from ibledger.node.tx import build_transaction
from ibledger.proto import ledger_pb2, ledger_pb2_grpc

from .cluster import read_session, run_cli

pytestmark = pytest.mark.slow


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ibledger.cli.main", "node", "start", "--config", str(config)],
        cwd=config.parent,
        stderr=log.open("ab"),
        stdout=subprocess.DEVNULL,
        env=os.environ.copy(),
    )


def _wait_ready(stub: ledger_pb2_grpc.LedgerStub) -> ledger_pb2.NodeStatus:
    deadline = time.monotonic() + 30
    while True:
        try:
            return stub.GetStatus(ledger_pb2.GetStatusRequest(), timeout=1)
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_single_node_chain_commits_stops_on_sigterm_and_resumes(tmp_path: Path) -> None:
    directory = tmp_path / "dev"
    run_cli("network", "init", "--nodes", "1", "--dir", str(directory))
    manifest = load_manifest(directory)
    node = manifest.nodes[0]
    log = tmp_path / "node.log"
    stub = ledger_pb2_grpc.LedgerStub(
        api_channel(f"{node.api.host}:{node.api.port}", manifest.ca_cert, node.id)
    )
    admin = load_private_key(manifest.identities["ADMIN"].key_file)

    process = _start(node.config, log)
    try:
        _wait_ready(stub)
        envelope = build_transaction(
            admin,
            chain_id=manifest.chain_id,
            sender="ADMIN",
            operation="identity.update_details",
            args={"participant": "CSDC", "name": "Registrar, single-node chain"},
        )
        submitted = stub.Submit(ledger_pb2.SubmitRequest(envelope=envelope))
        receipt = stub.WaitForCommit(
            ledger_pb2.WaitForCommitRequest(
                tx_id=submitted.tx_id,
                timeout_ms=10_000,
                viewer=read_session(manifest, node.id, "ADMIN"),
            )
        )
        assert receipt.result.code == "OK" and receipt.height == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
    # The node writes its own JSON log ([log] file in node.toml); its output holds nothing else.
    last = json.loads((node.dir / "node.log").read_text().strip().splitlines()[-1])
    assert last["msg"] == "node stopped" and last["node"] == node.id

    process = _start(node.config, log)
    try:
        status = _wait_ready(stub)
        assert status.height == 1
        again = stub.Submit(ledger_pb2.SubmitRequest(envelope=envelope))
        assert again.status == ledger_pb2.COMMITTED and again.receipt.height == 1
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
