"""State transfer: a node behind fetches certified blocks from peers; a peer serving a forged
block (consistent body and header, but a certificate for another digest) is detected, marked
suspect, and the blocks are taken from an honest peer instead."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from ibledger.consensus import (
    Commit,
    CommitCertificate,
    FetchBlocks,
    Replica,
    ReplicaConfig,
    encode_commit_certificate,
    signing_bytes,
)
from ibledger.node.api import block_pb
from ibledger.node.blocks import BlockHeader
from ibledger.node.crypto import CryptoSuite, KeyPair, generate_keypair, get_suite
from ibledger.node.ledger import Ledger
from ibledger.node.runtime import ReplicaRuntime, TransferredBlocks
from ibledger.node.signing import ValidatorSigner, ValidatorVerifier
from ibledger.node.state_transfer import StateTransfer
from ibledger.proto import peer_pb2, peer_pb2_grpc, types_pb2

from .conftest import GENESIS_TIME_MS, Directory, make_genesis, register_tx

MEMBERS = ("node0", "node1", "node2", "node3")


def _suite(validators: dict[str, KeyPair]) -> CryptoSuite:
    """The chain's suite: the one its validator keys are of (the tests run once per suite)."""
    return get_suite(validators[MEMBERS[0]].suite)


def _certificate(validators: dict[str, KeyPair], header: BlockHeader) -> bytes:
    digest = header.consensus_digest(_suite(validators).hash)
    commit = Commit(0, header.height, digest)
    signatures = tuple(
        (rid, validators[rid].sign(signing_bytes(commit, rid))) for rid in MEMBERS[:3]
    )
    return encode_commit_certificate(CommitCertificate(0, header.height, digest, signatures))


def _certified_chain(
    tmp_path: Path, suite_name: str
) -> tuple[dict[str, object], dict[str, KeyPair], list[types_pb2.Block], bytes]:
    """Six certified blocks of one registration each, as a peer serves them, and their tip."""
    directory = Directory(suite=suite_name)
    genesis = make_genesis(directory)
    validators = {rid: generate_keypair(suite_name) for rid in MEMBERS}
    blocks: list[types_pb2.Block] = []
    with Ledger.open(tmp_path / "source", genesis) as source:
        for height in range(1, 7):
            envelopes = [register_tx(directory, f"R{height}", nonce=height)]
            header = source.next_header(GENESIS_TIME_MS + height * 1000, envelopes)
            source.append_block(header, envelopes, _certificate(validators, header))
            stored = source.get_block(height)
            assert stored is not None
            blocks.append(block_pb(stored))
        return genesis, validators, blocks, source.tip_hash


class _Server(peer_pb2_grpc.PeerServicer):
    def __init__(self, blocks: list[types_pb2.Block]) -> None:
        self.blocks = blocks
        self.calls = 0

    async def FetchBlocks(
        self, request: object, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[types_pb2.Block]:
        self.calls += 1
        for block in self.blocks:
            yield block


class _RangeServer(_Server):
    """Streams every block of the asked range, however many bytes that is."""

    async def FetchBlocks(
        self, request: object, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[types_pb2.Block]:
        self.calls += 1
        assert isinstance(request, peer_pb2.FetchBlocksRequest)
        for block in self.blocks[request.from_height - 1 : request.to_height]:
            yield block


async def _serve(servicer: _Server) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    peer_pb2_grpc.add_PeerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


class _NoPeers:
    def send(self, to: str, data: bytes) -> None:
        pass

    def broadcast(self, data: bytes) -> None:
        pass


def _behind_node(
    path: Path,
    genesis: dict[str, object],
    validators: dict[str, KeyPair],
    peers: dict[str, str],
) -> tuple[Ledger, Replica, asyncio.Task[None], StateTransfer]:
    """node3 at height 0, with its replica running and state transfer towards ``peers``."""
    ledger = Ledger.open(path, genesis)
    suite = _suite(validators)
    replica = Replica(
        ReplicaConfig(MEMBERS, hash_fn=suite.hash),
        "node3",
        ValidatorSigner("node3", validators["node3"], suite),
        ValidatorVerifier({rid: k.public_key for rid, k in validators.items()}, suite),
        None,
        ledger.executed_tip(GENESIS_TIME_MS),
    )
    runtime = ReplicaRuntime(
        replica, ledger, _NoPeers(), on_committed=lambda *_: None, on_fetch=lambda _: None
    )
    runner = asyncio.create_task(runtime.run())
    transfer = StateTransfer(
        node_id="node3",
        ledger=ledger,
        runtime=runtime,
        peers=peers,
        channel_factory=lambda peer_id, address: grpc.aio.insecure_channel(address),
        peer_heights=lambda: {},
        genesis_time_ms=GENESIS_TIME_MS,
    )
    return ledger, replica, runner, transfer


@pytest.mark.parametrize("forger_first", [True, False])
async def test_forged_blocks_are_refused_and_an_honest_peer_is_used(
    tmp_path: Path, forger_first: bool, suite_name: str
) -> None:
    directory = Directory(suite=suite_name)
    genesis = make_genesis(directory)
    validators = {rid: generate_keypair(suite_name) for rid in MEMBERS}
    honest_blocks: list[types_pb2.Block] = []
    forged_blocks: list[types_pb2.Block] = []
    with Ledger.open(tmp_path / "source", genesis) as source:
        for height in range(1, 7):
            envelopes = [register_tx(directory, f"R{height}", nonce=height)]
            header = source.next_header(GENESIS_TIME_MS + height * 1000, envelopes)
            source.append_block(header, envelopes, _certificate(validators, header))
            stored = source.get_block(height)
            assert stored is not None
            honest_blocks.append(block_pb(stored))
            # The forger swaps the transaction and re-derives a header that matches it, but can
            # only attach the certificate the validators signed for the real block.
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
        source_tip, source_root = source.tip_hash, source.state_root

    forger, honest = _Server(forged_blocks), _Server(honest_blocks)
    forger_server, forger_address = await _serve(forger)
    honest_server, honest_address = await _serve(honest)
    peers = {"node0": forger_address, "node1": honest_address}
    ledger, replica, runner, transfer = _behind_node(
        tmp_path / "behind", genesis, validators, peers
    )
    hint = ("node0", "node1") if forger_first else ("node1", "node0")
    try:
        transfer.request(FetchBlocks(1, 6, hint))
        for _ in range(200):
            if ledger.height == 6:
                break
            await asyncio.sleep(0.05)
        assert (ledger.height, ledger.tip_hash, ledger.state_root) == (6, source_tip, source_root)
        assert honest.calls >= 1
        if forger_first:
            assert forger.calls == 1 and transfer.bad_peers_seen == 1
            assert replica.counters["state-transfer-invalid"] >= 1
        else:
            assert forger.calls == 0 and transfer.bad_peers_seen == 0
    finally:
        await transfer.stop()
        runner.cancel()
        await forger_server.stop(None)
        await honest_server.stop(None)
        ledger.close()


async def test_a_round_holds_a_bounded_number_of_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suite_name: str
) -> None:
    """A peer that streams a whole range of blocks at once is read only up to the byte budget;
    the fetcher asks again from the next height until it has caught up."""
    genesis, validators, blocks, source_tip = _certified_chain(tmp_path, suite_name)
    # Two blocks' worth of transactions per round.
    monkeypatch.setattr(
        "ibledger.node.state_transfer.RANGE_BYTES_MAX", sum(len(t) for t in blocks[0].txs) * 2
    )
    peer = _RangeServer(blocks)
    server, address = await _serve(peer)
    ledger, _, runner, transfer = _behind_node(
        tmp_path / "behind", genesis, validators, {"node1": address}
    )
    try:
        transfer.request(FetchBlocks(1, 6, ("node1",)))
        for _ in range(400):
            if ledger.height == 6:
                break
            await asyncio.sleep(0.05)
        assert (ledger.height, ledger.tip_hash) == (6, source_tip)
        assert peer.calls >= 3  # at most two blocks' bytes held per round
        assert transfer.bad_peers_seen == 0
    finally:
        await transfer.stop()
        runner.cancel()
        await server.stop(None)
        ledger.close()


class _JudgeOnceAskedAhead:
    """Applies a round of fetched blocks only once the peer has been asked for the next range,
    and notes how many ranges had been asked for by then."""

    def __init__(self, ledger: Ledger, peer: _Server, last: int) -> None:
        self.ledger, self.peer, self.last = ledger, peer, last
        self.asked_when_judged: list[int] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def offer(self, item: TransferredBlocks) -> bool:
        task = asyncio.create_task(self._judge(item))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _judge(self, item: TransferredBlocks) -> None:
        rounds = len(self.asked_when_judged) + 1
        if item.blocks[-1].seq < self.last:
            for _ in range(40):  # 2 s: far less than the fetcher waits for a judgement
                if self.peer.calls > rounds:
                    break
                await asyncio.sleep(0.05)
        self.asked_when_judged.append(self.peer.calls)
        if item.blocks[-1].seq == self.last or self.peer.calls > rounds:
            for block in item.blocks:
                self.ledger.apply_committed(block)
        assert item.done is not None
        item.done.set_result(None)


async def test_the_next_range_downloads_while_a_round_is_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suite_name: str
) -> None:
    """A peer at another site costs a round trip per range: the fetcher asks for the next
    range before the current one is applied, and never for more than one range ahead."""
    genesis, _, blocks, source_tip = _certified_chain(tmp_path, suite_name)
    monkeypatch.setattr("ibledger.node.state_transfer.RANGE_MAX", 2)
    peer = _RangeServer(blocks)
    server, address = await _serve(peer)
    with Ledger.open(tmp_path / "behind", genesis) as ledger:
        judge = _JudgeOnceAskedAhead(ledger, peer, last=6)
        transfer = StateTransfer(
            node_id="node3",
            ledger=ledger,
            runtime=judge,
            peers={"node1": address},
            channel_factory=lambda peer_id, address: grpc.aio.insecure_channel(address),
            peer_heights=lambda: {},
            genesis_time_ms=GENESIS_TIME_MS,
        )
        try:
            transfer.request(FetchBlocks(1, 6, ("node1",)))
            for _ in range(200):
                if ledger.height == 6:
                    break
                await asyncio.sleep(0.05)
            assert (ledger.height, ledger.tip_hash) == (6, source_tip)
            # Rounds 1 and 2 were judged with the next range asked for and no further one;
            # the last round had nothing after it to ask for.
            assert judge.asked_when_judged == [2, 3, 3]
            assert transfer.bad_peers_seen == 0
        finally:
            await transfer.stop()
            await server.stop(None)


async def test_blocks_of_heights_not_asked_for_make_the_peer_suspect(
    tmp_path: Path, suite_name: str
) -> None:
    """A peer that answers a range with other heights is skipped before anything is judged."""
    genesis, validators, blocks, source_tip = _certified_chain(tmp_path, suite_name)
    shifted, honest = _Server(blocks[1:]), _RangeServer(blocks)
    shifted_server, shifted_address = await _serve(shifted)
    honest_server, honest_address = await _serve(honest)
    ledger, replica, runner, transfer = _behind_node(
        tmp_path / "behind",
        genesis,
        validators,
        {"node0": shifted_address, "node1": honest_address},
    )
    try:
        transfer.request(FetchBlocks(1, 6, ("node0", "node1")))
        for _ in range(200):
            if ledger.height == 6:
                break
            await asyncio.sleep(0.05)
        assert (ledger.height, ledger.tip_hash) == (6, source_tip)
        assert shifted.calls == 1 and transfer.bad_peers_seen == 1
        assert replica.counters["state-transfer-gap"] == 0  # never handed to the replica
    finally:
        await transfer.stop()
        runner.cancel()
        await shifted_server.stop(None)
        await honest_server.stop(None)
        ledger.close()
