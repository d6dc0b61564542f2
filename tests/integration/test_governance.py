"""One consortium admin cannot take over a bank; M of N admins can change its keys. Four real
node processes, three admins, admin quorum 2 (genesis governance.admin_quorum).

The attack is the raw one: an admin signs identity.add_key for another bank with a key of its
own (and identity.deactivate for another), submitted straight to a node. Every replica refuses it
in execution with GOVERNANCE_REQUIRED, the bank's keys are unchanged on every node, and the
admin's key does not sign as the bank. Then the governance route: a proposal (one approval) does
nothing yet; a second admin's approval executes the key change in that transaction, on every
node, and the new key signs for the bank."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ibledger.node.crypto import generate_keypair, load_private_key
from ibledger.node.tx import build_transaction, decode_envelope
from ibledger.proto import ledger_pb2, types_pb2

from .cluster import Cluster, decode_attrs, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster.create(tmp_path / "network", admins=3, admin_quorum=2)
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


def _receipt(cluster: Cluster, node_id: str, tx_id: bytes) -> types_pb2.Receipt:
    receipt: types_pb2.Receipt = cluster.stub(node_id).WaitForCommit(
        ledger_pb2.WaitForCommitRequest(
            tx_id=tx_id, timeout_ms=60_000, viewer=cluster.session(node_id)
        ),
        timeout=65,
    )
    return receipt


def _cli(cluster: Cluster, *args: str, node: str = "node0") -> dict[str, object]:
    result = run_cli(
        *args, "--network", str(cluster.directory), "--node", cluster.address(node), "--json"
    )
    data: dict[str, object] = json.loads(result.stdout)
    return data


def _keys_everywhere(cluster: Cluster) -> set[tuple[str, ...]]:
    """ICBC's key ids as each node reports them (after the nodes reach one height)."""
    cluster.wait_heights_equal(cluster.node_ids, timeout_s=60)
    seen = set()
    for node_id in cluster.node_ids:
        record = _cli(cluster, "participant", "show", "ICBC", "--as", "ICBC", node=node_id)
        seen.add(tuple(record["keys"]))  # type: ignore[arg-type]
    return seen


def test_one_admin_is_refused_and_two_admins_change_a_banks_keys(cluster: Cluster) -> None:
    admin = load_private_key(cluster.manifest.identities["ADMIN"].key_file)
    icbc = load_private_key(cluster.manifest.identities["ICBC"].key_file)
    (original,) = _keys_everywhere(cluster)
    assert original == (icbc.key_id.hex(),)

    # The attack: ADMIN adds its own key to ICBC, then would sign as ICBC.
    stolen = generate_keypair()
    grab = build_transaction(
        admin,
        chain_id=cluster.manifest.chain_id,
        sender="ADMIN",
        operation="identity.add_key",
        args={
            "participant": "ICBC",
            "suite": "ed25519-sha256",
            "public_key": stolen.public_key.hex(),
        },
        nonce=1,
    )
    silence = build_transaction(
        admin,
        chain_id=cluster.manifest.chain_id,
        sender="ADMIN",
        operation="identity.deactivate",
        args={"participant": "CIB"},
        nonce=2,
    )
    for envelope in (grab, silence):
        [tx_id] = cluster.submit("node1", [envelope])
        for node_id in cluster.node_ids:
            result = _receipt(cluster, node_id, tx_id).result
            assert result.code == "GOVERNANCE_REQUIRED", (node_id, result)
            assert "governance.propose" in result.message
    assert _keys_everywhere(cluster) == {original}
    impersonation = build_transaction(
        stolen,
        chain_id=cluster.manifest.chain_id,
        sender="ICBC",
        operation="identity.revoke_key",
        args={"key_id": icbc.key_id.hex()},
        nonce=3,
    )
    response = cluster.stub("node2").SubmitBatch(
        ledger_pb2.SubmitBatchRequest(envelopes=[impersonation]), timeout=10
    )
    assert response.results[0].status == ledger_pb2.REJECTED, response
    cib = _cli(cluster, "participant", "show", "CIB", "--as", "CIB")
    assert cib["active"] is True

    # The governance route: ICBC lost its key, and two of three admins install a new one.
    replacement = generate_keypair()
    proposed = _cli(
        cluster,
        "governance",
        "propose",
        "add-key",
        "ICBC",
        "--public-key",
        replacement.public_key.hex(),
        "--as",
        "ADMIN",
    )
    proposal = str(proposed["proposal"])
    assert proposed["executed"] is False
    assert _keys_everywhere(cluster) == {original}  # one approval of two: nothing yet
    listed = _cli(cluster, "governance", "list", "--as", "CIB", node="node3")
    assert [p["proposal"] for p in listed["proposals"]] == [proposal]  # type: ignore[index, union-attr]

    approved = _cli(cluster, "governance", "approve", proposal, "--as", "ADMIN2", node="node2")
    assert approved["executed"] is True
    receipt = _receipt(cluster, "node3", bytes.fromhex(str(approved["tx_id"])))
    kinds = [event.kind for event in receipt.events]
    assert kinds == ["governance.approved", "identity.key_added", "governance.executed"], kinds
    executed = decode_attrs(receipt.events[-1])
    assert executed["approvals"] == ["ADMIN", "ADMIN2"]  # type: ignore[index]
    expected = tuple(sorted([icbc.key_id.hex(), replacement.key_id.hex()]))
    assert _keys_everywhere(cluster) == {expected}
    shown = _cli(cluster, "governance", "show", proposal, "--as", "ICBC", node="node1")
    assert shown["status"] == "executed"

    # The installed key now signs for ICBC: it revokes the old one.
    rotate = build_transaction(
        replacement,
        chain_id=cluster.manifest.chain_id,
        sender="ICBC",
        operation="identity.revoke_key",
        args={"key_id": icbc.key_id.hex()},
        nonce=int(time.time() * 1000),
    )
    [tx_id] = cluster.submit("node0", [rotate])
    assert _receipt(cluster, "node1", tx_id).result.code == "OK"
    assert decode_envelope(rotate).tx_id == tx_id
