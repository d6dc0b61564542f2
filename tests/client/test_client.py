"""The Python client against a fake node: submit and wait, idempotent resubmission, batches,
queries, error details parsed into codes and exit statuses, failover, streams."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from ibledger.cli.client import (
    Client,
    ClientError,
    Submission,
    TransactionFailed,
    TxReceipt,
)
from ibledger.cli.manifest import load_manifest
from ibledger.node.tx import decode_envelope
from ibledger.proto import ledger_pb2

from .conftest import CHAIN_ID, Network

ISIN = "CND10006PJH0"


def _register_bond(client: Client) -> TxReceipt:
    return client.submit(
        "asset.register",
        {
            "isin": ISIN,
            "issuer_lei": "5493002ERZU2K9PZDL40",
            "cfi": "DBFTFB",
            "currency": "CNY",
            "denomination_minor": 10_000,
            "issue_size_minor": 1_000_000_00,
            "issue_date": "2026-03-02",
            "maturity_date": "2029-03-02",
            "name": "Test bond",
        },
    )


def test_submit_waits_for_commit_and_returns_the_receipt(network: Network) -> None:
    with network.client("CSDC") as client:
        receipt = _register_bond(client)
    assert isinstance(receipt, TxReceipt)
    assert receipt.ok and receipt.code == "OK"
    assert receipt.height == 1 and receipt.index == 0
    assert receipt.transaction is not None and receipt.transaction.sender == "CSDC"
    assert [e.kind for e in receipt.events] == ["asset.registered"]
    assert receipt.events[0].attrs["isin"] == ISIN
    assert receipt.header.height == 1 and receipt.block_hash
    assert network.node.calls == ["Submit", "WaitForCommit"]


def test_wait_blocks_until_the_transaction_commits(network: Network) -> None:
    network.node.hold = True
    with network.client("CSDC") as client:
        threading.Timer(0.2, network.node.release).start()
        started = time.monotonic()
        receipt = _register_bond(client)
    assert receipt.ok and time.monotonic() - started >= 0.2


def test_committed_resubmission_returns_the_original_receipt(network: Network) -> None:
    with network.client("CSDC") as client:
        envelope = client.build("asset.suspend", {"isin": ISIN})  # fails: no such instrument
        first = client.submit_envelope(envelope)
        again = client.submit_envelope(envelope)
    assert isinstance(first, TxReceipt) and isinstance(again, TxReceipt)
    assert first.code == "UNKNOWN_INSTRUMENT" and not first.ok
    assert again.resubmitted and not first.resubmitted
    assert (again.tx_id, again.height, again.code) == (first.tx_id, first.height, first.code)
    assert network.ledger.height == 1  # executed once
    with pytest.raises(TransactionFailed) as failed:
        again.raise_for_result()
    assert failed.value.code == "UNKNOWN_INSTRUMENT" and failed.value.exit_code == 1


def test_no_wait_returns_the_admission_answer(network: Network) -> None:
    network.node.hold = True
    with network.client("CSDC") as client:
        submission = client.submit("asset.suspend", {"isin": ISIN}, wait=False)
        assert isinstance(submission, Submission) and submission.status == "ADMITTED"
        envelope_id = submission.tx_id
        assert client.status().mempool_size == 1
        network.node.release()
        receipt = client.wait(envelope_id.hex(), 5)
    assert receipt.tx_id == envelope_id and receipt.code == "UNKNOWN_INSTRUMENT"


def test_submit_many_uses_one_batch_and_reports_each(network: Network) -> None:
    with network.client("ADMIN") as client:
        results = client.submit_many(
            [
                ("identity.update_details", {"participant": "CIB", "name": "Industrial Bank"}),
                ("identity.update_details", {"participant": "NOBODY", "name": "x"}),
            ]
        )
    assert network.node.calls[0] == "SubmitBatch" and "Submit" not in network.node.calls
    assert [r.status for r in results] == ["COMMITTED", "COMMITTED"]
    assert [r.receipt.code for r in results if r.receipt] == ["OK", "UNKNOWN_PARTICIPANT"]
    assert results[0].receipt and results[0].receipt.height == results[1].receipt.height  # type: ignore[union-attr]


def test_batch_rejections_come_back_per_envelope(network: Network) -> None:
    with network.client("ADMIN") as client:
        good = client.build("identity.update_details", {"participant": "CIB", "name": "x"})
        foreign = Client(
            network.address, chain_id="other-chain", keypair=client.keypair, sender="ADMIN"
        ).build("identity.deactivate", {"participant": "CIB"})
        # The raw RPC, to feed an envelope signed for another chain into the same batch.
        request = ledger_pb2.SubmitBatchRequest(envelopes=[good, foreign])
        response = client._call("SubmitBatch", request)
    assert [r.status for r in response.results] == [ledger_pb2.ADMITTED, ledger_pb2.REJECTED]
    assert response.results[1].code == "WRONG_CHAIN"
    assert decode_envelope(good).tx_id == response.results[0].tx_id


def test_query_is_signed_and_decoded(network: Network) -> None:
    with network.client("ICBC") as client:
        me = client.query("participant", {"id": "ICBC"})
        assert me["lei"] == "5493002ERZU2K9PZDL40" and client.last_query_height == 0
        with pytest.raises(ClientError) as missing:
            client.query("instrument", {"isin": ISIN})
        assert (missing.value.code, missing.value.grpc_status) == (
            "NOT_FOUND",
            grpc.StatusCode.NOT_FOUND,
        )
        with pytest.raises(ClientError) as forbidden:
            client.query("positions", {"participant": "CIB"})
        assert forbidden.value.code == "FORBIDDEN"
        assert forbidden.value.grpc_status == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("status", "details", "code", "message", "exit_code"),
    [
        (
            grpc.StatusCode.FAILED_PRECONDITION,
            "WRONG_CHAIN: the chain is another one",
            "WRONG_CHAIN",
            "the chain is another one",
            1,
        ),
        (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "MEMPOOL_FULL: try again: later",
            "MEMPOOL_FULL",
            "try again: later",
            1,
        ),
        (grpc.StatusCode.INTERNAL, "boom", "INTERNAL", "boom", 1),
        (
            grpc.StatusCode.UNAVAILABLE,
            "UNAVAILABLE: the node is catching up",
            "UNAVAILABLE",
            "the node is catching up",
            3,
        ),
        (
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "DEADLINE_EXCEEDED: waited 5 s",
            "DEADLINE_EXCEEDED",
            "waited 5 s",
            4,
        ),
    ],
)
def test_error_details_become_codes_and_exit_statuses(
    network: Network,
    status: grpc.StatusCode,
    details: str,
    code: str,
    message: str,
    exit_code: int,
) -> None:
    network.node.fail_next("GetStatus", status, details)
    with network.client(None) as client, pytest.raises(ClientError) as caught:
        client.status()
    error = caught.value
    assert (error.code, error.message, error.grpc_status, error.exit_code) == (
        code,
        message,
        status,
        exit_code,
    )


def test_admission_refusals_are_raised_with_their_code(network: Network) -> None:
    with network.client("ICBC") as client:
        impostor = Client(
            network.address, chain_id=CHAIN_ID, keypair=network.keys["CIB"], sender="ICBC"
        )  # CIB's key, claiming to be ICBC
        with pytest.raises(ClientError) as refused:
            impostor.submit("identity.deactivate", {"participant": "CIB"})
        assert refused.value.code == "SIGNER_NOT_SENDER"
        assert refused.value.grpc_status == grpc.StatusCode.UNAUTHENTICATED
        wrong_chain = Client(
            network.address, chain_id="elsewhere", keypair=client.keypair, sender="ICBC"
        )
        with pytest.raises(ClientError) as refused:
            wrong_chain.submit("identity.deactivate", {"participant": "CIB"})
        assert refused.value.code == "WRONG_CHAIN"
        assert refused.value.grpc_status == grpc.StatusCode.FAILED_PRECONDITION


def test_failover_skips_unavailable_nodes_in_manifest_order(
    network: Network, unused_port: int
) -> None:
    network.write_manifest([f"127.0.0.1:{unused_port}", network.address])
    with network.client("CSDC") as client:
        assert client.status().height == 0
        assert client.address == network.address
        assert _register_bond(client).ok
    network.node.fail_next("GetStatus", grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE: starting")
    with network.client(None) as client:
        with pytest.raises(ClientError) as down:
            client.status()  # the dead port, then the node that is starting: both unavailable
        assert down.value.exit_code == 3 and "no node answered" in down.value.message


def test_wait_runs_out_with_deadline_exceeded(network: Network) -> None:
    network.node.hold = True
    with network.client("CSDC") as client:
        submission = client.submit("asset.suspend", {"isin": ISIN}, wait=False)
        started = time.monotonic()
        with pytest.raises(ClientError) as late:
            client.wait(submission.tx_id, 0.3)
    assert late.value.code == "TIMEOUT" and late.value.exit_code == 4
    assert late.value.grpc_status == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 30  # bounds a hang only: the wait itself is 0.3 s


def test_wait_renews_when_the_node_caps_each_wait(network: Network) -> None:
    network.node.hold = True
    network.node.wait_max_ms = 100
    with network.client("CSDC") as client:
        submission = client.submit("asset.suspend", {"isin": ISIN}, wait=False)
        threading.Timer(0.45, network.node.release).start()
        receipt = client.wait(submission.tx_id, 5)
    assert receipt.code == "UNKNOWN_INSTRUMENT"
    assert network.node.calls.count("WaitForCommit") >= 4


def test_streams_deliver_blocks_and_events_then_follow(network: Network) -> None:
    with network.client("CSDC") as client:
        _register_bond(client)
        blocks = client.blocks(0)
        assert [next(blocks).height, next(blocks).height] == [0, 1]
        events = client.events(1, ["asset.suspended"])
        client.submit(
            "asset.issue",
            {"isin": ISIN, "allotments": [{"holder": "ICBC", "quantity": 1_000_000_00}]},
        )
        client.submit("asset.suspend", {"isin": ISIN})
        event = next(events)
        assert (event.kind, event.attrs["isin"], event.height) == ("asset.suspended", ISIN, 3)
        assert next(blocks).height == 2
        blocks.close()
        events.close()


def test_manifest_reader_tolerates_extra_fields_and_names_identities(network: Network) -> None:
    manifest = load_manifest(network.directory)
    assert manifest.chain_id == CHAIN_ID and str(manifest.nodes[0].api) == network.address
    assert manifest.identity("icbc").participant == "ICBC"
    with pytest.raises(ClientError) as unknown:
        manifest.identity("NOBODY")
    assert unknown.value.code == "UNKNOWN_IDENTITY" and "ICBC" in unknown.value.message
    with pytest.raises(ClientError) as missing:
        load_manifest(network.directory / "nowhere")
    assert missing.value.code == "NO_NETWORK"
