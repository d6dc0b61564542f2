"""A real local network for integration tests: `ibledger network init/up/down` in a temporary
directory, gRPC stubs to every node, and a client history of acknowledged transactions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from ibledger.cli.client import api_channel
from ibledger.cli.manifest import Manifest, load_manifest
from ibledger.contracts.codec import canonical_decode
from ibledger.node.crypto import ED25519_SHA256, SUITE_NAMES, KeyPair, get_suite, load_private_key
from ibledger.node.jsonfile import update_genesis
from ibledger.node.tx import (
    READ_SESSION_OP,
    READ_SIGNING_DOMAIN,
    Transaction,
    build_transaction,
    decode_envelope,
)
from ibledger.proto import ledger_pb2, ledger_pb2_grpc, types_pb2

CLI = [sys.executable, "-m", "ibledger.cli.main"]
# Module-scoped network fixtures take ``params=SUITES`` to run their whole module once per suite.
SUITES = SUITE_NAMES


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=180, env=os.environ.copy()
    )
    if check and result.returncode != 0:
        raise AssertionError(f"ibledger {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class Cluster:
    directory: Path
    manifest: Manifest = field(init=False)
    admin: KeyPair = field(init=False)
    acked: dict[bytes, str] = field(default_factory=dict)  # tx id -> node that acknowledged
    sent: dict[bytes, bytes] = field(default_factory=dict)  # tx id -> envelope
    _nonce: int = 0

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        view_change_timeout_ms: int = 1000,
        checkpoint_interval: int | None = None,
        admission: dict[str, int] | None = None,
        admins: int = 1,
        admin_quorum: int | None = None,
        crypto: str = ED25519_SHA256,
        nodes: int = 4,
    ) -> Cluster:
        governance = ["--admins", str(admins)]
        if admin_quorum is not None:
            governance += ["--admin-quorum", str(admin_quorum)]
        run_cli(
            "network", "init", "--nodes", str(nodes), "--dir", str(directory), "--crypto", crypto,
            *governance,
        )  # fmt: skip
        consensus = {"view_change_timeout_ms": view_change_timeout_ms}
        if checkpoint_interval is not None:
            consensus["checkpoint_interval"] = checkpoint_interval
            consensus["watermark_window"] = 4 * checkpoint_interval
        changes = {"consensus": consensus, "admission": admission or {}}
        update_genesis(directory / "genesis.json", changes)
        cluster = cls(directory)
        cluster.manifest = load_manifest(directory)
        cluster.admin = load_private_key(cluster.manifest.identities["ADMIN"].key_file)
        return cluster

    # --- processes --------------------------------------------------------------------------

    def up(self) -> None:
        try:
            run_cli("network", "up", "--dir", str(self.directory), "--timeout", "60")
        except BaseException:
            self.down()  # a network that did not come up must not outlive the test
            raise

    def up_without(self, node_id: str, timeout_s: float = 20) -> str:
        """``network up`` when ``node_id`` cannot become ready: it fails naming that node alone;
        returns what it printed on standard error."""
        result = run_cli(
            "network",
            "up",
            "--dir",
            str(self.directory),
            "--timeout",
            f"{timeout_s:g}",
            check=False,
        )
        assert result.returncode == 1, result.stdout
        assert f"1 of 4 node(s) did not come up ({node_id})" in result.stderr, result.stderr
        return result.stderr

    def down(self) -> dict[str, str]:
        """Stop every node; what ``network down`` says happened to each (``stopped``, ...)."""
        result = run_cli("network", "down", "--dir", str(self.directory), "--json", check=False)
        try:
            rows = json.loads(result.stdout)["nodes"]
        except (ValueError, KeyError, TypeError):
            return {}
        return {row["node_id"]: row["result"] for row in rows}

    def log_tail(self, node_id: str, lines: int = 40) -> str:
        """The last lines of a node's own log, for an assertion's message."""
        path = self.directory / "nodes" / node_id / "node.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"

    def pid(self, node_id: str) -> int:
        return int((self.directory / "nodes" / node_id / "node.pid").read_text())

    def kill(self, node_id: str) -> None:
        os.kill(self.pid(node_id), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid(node_id), 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    # --- talking to nodes -------------------------------------------------------------------

    def address(self, node_id: str) -> str:
        """A validator's or an observer's API address."""
        node = self.manifest.node(node_id) or self.manifest.observer(node_id)
        assert node is not None
        return f"{node.api.host}:{node.api.port}"

    def reload_manifest(self) -> None:
        """Read network.json again (after network add-observer, add-node or remove-node)."""
        self.manifest = load_manifest(self.directory)

    def stub(self, node_id: str) -> ledger_pb2_grpc.LedgerStub:
        """A stub over TLS, verifying the node's certificate against the consortium CA."""
        return ledger_pb2_grpc.LedgerStub(
            api_channel(self.address(node_id), self.manifest.ca_cert, node_id)
        )

    def session(self, node_id: str, identity: str = "REGULATOR") -> bytes:
        """A read session (viewer proof) of ``identity`` for ``node_id``; the regulator's by
        default, who is shown every transaction."""
        return read_session(self.manifest, node_id, identity)

    @property
    def node_ids(self) -> list[str]:
        return [node.id for node in self.manifest.nodes]

    def status(self, node_id: str) -> ledger_pb2.NodeStatus:
        return self.stub(node_id).GetStatus(ledger_pb2.GetStatusRequest(), timeout=3)

    def envelope(
        self, name: str, *, chain_id: str | None = None, expires_at_ms: int | None = None
    ) -> bytes:
        self._nonce += 1
        return build_transaction(
            self.admin,
            chain_id=chain_id or self.manifest.chain_id,
            sender="ADMIN",
            operation="identity.update_details",
            args={"participant": "CSDC", "name": name},
            nonce=self._nonce,
            expires_at_ms=expires_at_ms,
        )

    def decode(self, envelope: bytes) -> Transaction:
        """An envelope decoded with the chain's hash (its transaction id is the node's)."""
        return decode_envelope(envelope, hash_fn=get_suite(self.admin.suite).hash)

    def submit(self, node_id: str, envelopes: list[bytes]) -> list[bytes]:
        """Submit a batch; returns the ids the node acknowledged as admitted or committed."""
        response = self.stub(node_id).SubmitBatch(
            ledger_pb2.SubmitBatchRequest(envelopes=envelopes), timeout=10
        )
        for envelope in envelopes:
            self.sent[self.decode(envelope).tx_id] = envelope
        return [r.tx_id for r in response.results if r.status != ledger_pb2.REJECTED]

    def recent_envelopes(self, tx_ids: Iterable[bytes]) -> list[bytes]:
        """The envelopes sent earlier under these ids, for a client that resubmits."""
        return [self.sent[tx_id] for tx_id in tx_ids]

    def wait_committed(
        self, node_id: str, tx_ids: Iterable[bytes], timeout_s: float, *, code: str | None = "OK"
    ) -> None:
        """Wait until every transaction is in a block; ``code`` is the result each must have
        (``None``: any result, for load that is meant to be refused in execution)."""
        stub = self.stub(node_id)
        deadline = time.monotonic() + timeout_s
        for tx_id in tx_ids:
            remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
            receipt = stub.WaitForCommit(
                ledger_pb2.WaitForCommitRequest(
                    tx_id=tx_id, timeout_ms=remaining_ms, viewer=self.session(node_id)
                ),
                timeout=remaining_ms / 1000 + 5,
            )
            self.acked[tx_id] = node_id
            assert code is None or receipt.result.code == code, receipt.result

    def wait_heights_equal(self, node_ids: list[str], timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                heights = {n: self.status(n).height for n in node_ids}
            except grpc.RpcError:
                heights = {}
            if heights and len(set(heights.values())) == 1:
                return next(iter(heights.values()))
            if time.monotonic() > deadline:
                raise AssertionError(f"heights did not converge: {heights}")
            time.sleep(0.2)

    def wait_heights_at_least(self, node_ids: list[str], height: int, timeout_s: float) -> None:
        """Wait until every node has applied ``height`` (the deadline bounds a hang only)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                heights = {n: self.status(n).height for n in node_ids}
            except grpc.RpcError:
                heights = {}
            if heights and min(heights.values()) >= height:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not every node reached height {height}: {heights}")
            time.sleep(0.1)

    def blocks(self, node_id: str) -> list[types_pb2.Block]:
        stub = self.stub(node_id)
        height = self.status(node_id).height
        viewer = self.session(node_id)
        return [
            stub.GetBlock(ledger_pb2.GetBlockRequest(height=h, viewer=viewer), timeout=10)
            for h in range(height + 1)
        ]

    def chain_summary(self, node_id: str) -> tuple[list[bytes], bytes, dict[bytes, int]]:
        """Block hashes, state root, and how many times each tx committed (not as a duplicate)."""
        blocks = self.blocks(node_id)
        counts: dict[bytes, int] = {}
        for block in blocks:
            for envelope, result in zip(block.txs, block.results, strict=True):
                if result.code == "DUPLICATE_TX":
                    continue
                tx_id = self.decode(envelope).tx_id
                counts[tx_id] = counts.get(tx_id, 0) + 1
        return [b.block_hash for b in blocks], blocks[-1].state_root, counts


def read_session(manifest: Manifest, node_id: str, identity: str = "REGULATOR") -> bytes:
    """A read session of a manifest identity for one node, valid for five minutes."""
    entry = manifest.identity(identity)
    assert entry is not None
    return build_transaction(
        load_private_key(entry.key_file),
        chain_id=manifest.chain_id,
        sender=entry.participant,
        operation=READ_SESSION_OP,
        args={"node": node_id},
        expires_at_ms=int(time.time() * 1000) + 5 * 60_000,
        domain=READ_SIGNING_DOMAIN,
    )


def decode_attrs(event: types_pb2.Event) -> object:
    return canonical_decode(event.attrs)
