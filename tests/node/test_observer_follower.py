"""The observer's follower behind state transfer: it executes certified blocks into its ledger
(ending with the source's tip hash and state root), refuses a forged block whose certificate is
for another digest (the serving peer is marked suspect and an honest one used), and refuses a
certificate short of a quorum or signed by a non-validator, with the consensus core's counters.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from ibledger.consensus import (
    Commit,
    CommitCertificate,
    FetchBlocks,
    encode_commit_certificate,
    signing_bytes,
)
from ibledger.node.addresses import HostPort
from ibledger.node.api import block_pb
from ibledger.node.blocks import BlockHeader
from ibledger.node.crypto import KeyPair, generate_keypair, get_suite
from ibledger.node.epochs import EpochTable
from ibledger.node.ledger import Ledger
from ibledger.node.observer import Follower
from ibledger.node.state_transfer import StateTransfer
from ibledger.node.validator_set import ValidatorInfo
from ibledger.proto import types_pb2

from .conftest import GENESIS_TIME_MS, Directory, make_genesis, register_tx
from .test_state_transfer import MEMBERS, _certificate, _serve, _Server


def _signed_by(
    keys: dict[str, KeyPair], signers: tuple[str, ...], header: BlockHeader, suite: str
) -> bytes:
    digest = header.consensus_digest(get_suite(suite).hash)
    commit = Commit(0, header.height, digest)
    signatures = tuple((rid, keys[rid].sign(signing_bytes(commit, rid))) for rid in signers)
    return encode_commit_certificate(CommitCertificate(0, header.height, digest, signatures))


def _source_chain(
    path: Path,
    genesis: dict[str, object],
    directory: Directory,
    validators: dict[str, KeyPair],
    blocks: int,
) -> tuple[list[types_pb2.Block], list[types_pb2.Block], bytes, bytes]:
    """The honest chain as served, the same chain forged (another transaction under a header
    re-derived to match it, with the certificate the validators signed for the real block),
    and the honest tip hash and state root."""
    served: list[types_pb2.Block] = []
    forged_blocks: list[types_pb2.Block] = []
    with Ledger.open(path, genesis) as source:
        for height in range(1, blocks + 1):
            envelopes = [register_tx(directory, f"R{height}", nonce=height)]
            header = source.next_header(GENESIS_TIME_MS + height * 1000, envelopes)
            source.append_block(header, envelopes, _certificate(validators, header))
            stored = source.get_block(height)
            assert stored is not None
            served.append(block_pb(stored))
            fake = [register_tx(directory, f"FAKE{height}", nonce=100 + height)]
            fake_header = source.next_header(GENESIS_TIME_MS + height * 1000, fake)
            forged = block_pb(stored)
            forged.header.encoded = BlockHeader(
                height,
                fake_header.parent_hash,
                fake_header.timestamp_ms,
                1,
                fake_header.txs_root,
                fake_header.proposal_ms,
            ).encode()
            del forged.txs[:]
            forged.txs.extend(fake)
            forged_blocks.append(forged)
        return served, forged_blocks, source.tip_hash, source.state_root


def _follower(
    path: Path, genesis: dict[str, object], validators: dict[str, KeyPair], suite: str
) -> tuple[Ledger, Follower, list[int]]:
    ledger = Ledger.open(path, genesis)
    applied: list[int] = []
    table = EpochTable.genesis(
        [
            ValidatorInfo(rid, validators[rid].public_key, HostPort("127.0.0.1", 7200 + n),
                          HostPort("127.0.0.1", 7100 + n))
            for n, rid in enumerate(MEMBERS)
        ]
    )  # fmt: skip
    follower = Follower(
        ledger=ledger,
        validator_sets=lambda: table,
        suite=get_suite(suite),
        genesis_time_ms=GENESIS_TIME_MS,
        on_applied=lambda block, committed: applied.append(block.header.height),
    )
    return ledger, follower, applied


def _transfer(ledger: Ledger, follower: Follower, peers: dict[str, str]) -> StateTransfer:
    return StateTransfer(
        node_id="observer1",
        ledger=ledger,
        runtime=follower,
        peers=peers,
        channel_factory=lambda peer_id, address: grpc.aio.insecure_channel(address),
        peer_heights=lambda: {},
        genesis_time_ms=GENESIS_TIME_MS,
    )


async def _until(condition: object, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.05)


async def test_the_follower_executes_certified_blocks_and_skips_a_forger(
    tmp_path: Path, suite_name: str
) -> None:
    directory = Directory(suite=suite_name)
    genesis = make_genesis(directory)
    validators = {rid: generate_keypair(suite_name) for rid in MEMBERS}
    honest_blocks, forged_blocks, tip, root = _source_chain(
        tmp_path / "source", genesis, directory, validators, 6
    )
    forger, honest = _Server(forged_blocks), _Server(honest_blocks)
    forger_server, forger_address = await _serve(forger)
    honest_server, honest_address = await _serve(honest)
    ledger, follower, applied = _follower(tmp_path / "observer", genesis, validators, suite_name)
    runner = asyncio.create_task(follower.run())
    transfer = _transfer(ledger, follower, {"node0": forger_address, "node1": honest_address})
    try:
        transfer.request(FetchBlocks(1, 6, ("node0", "node1")))
        await _until(lambda: ledger.height == 6)
        assert (ledger.height, ledger.tip_hash, ledger.state_root) == (6, tip, root)
        assert applied == [1, 2, 3, 4, 5, 6]
        assert forger.calls >= 1 and honest.calls >= 1
        assert transfer.bad_peers_seen == 1
        assert follower.counters["state-transfer-invalid"] >= 1  # the certificate check
        assert follower.failure is None
    finally:
        await transfer.stop()
        runner.cancel()
        await forger_server.stop(None)
        await honest_server.stop(None)
        ledger.close()


@pytest.mark.parametrize(
    "signers",
    [("node0", "node1"), ("node0", "node1", "observer1"), ("node0", "node0", "node1")],
    ids=["short-of-a-quorum", "a-non-validator-signs", "a-validator-twice"],
)
async def test_the_follower_refuses_a_certificate_without_a_quorum_of_validators(
    tmp_path: Path, suite_name: str, signers: tuple[str, ...]
) -> None:
    directory = Directory(suite=suite_name)
    genesis = make_genesis(directory)
    keys = {rid: generate_keypair(suite_name) for rid in (*MEMBERS, "observer1")}
    served: list[types_pb2.Block] = []
    with Ledger.open(tmp_path / "source", genesis) as source:
        envelopes = [register_tx(directory, "R1", nonce=1)]
        header = source.next_header(GENESIS_TIME_MS + 1000, envelopes)
        source.append_block(header, envelopes, _signed_by(keys, signers, header, suite_name))
        stored = source.get_block(1)
        assert stored is not None
        served.append(block_pb(stored))
    server = _Server(served)
    grpc_server, address = await _serve(server)
    ledger, follower, applied = _follower(tmp_path / "observer", genesis, keys, suite_name)
    runner = asyncio.create_task(follower.run())
    transfer = _transfer(ledger, follower, {"node0": address})
    try:
        transfer.request(FetchBlocks(1, 1, ("node0",)))
        await _until(lambda: transfer.bad_peers_seen == 1)
        assert transfer.bad_peers_seen == 1
        assert ledger.height == 0 and applied == []
        assert follower.counters["state-transfer-invalid"] == 1
    finally:
        await transfer.stop()
        runner.cancel()
        await grpc_server.stop(None)
        ledger.close()
