"""Execution overlaps consensus (node/runtime.py): the runtime hands committed blocks to its
executor and takes its next input at once; the roots come back to the replica in order, a
stable certificate reaches the node only after its block, a full executor queue holds the
inputs back, and a failed execution stops the runtime."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, cast

import pytest

from ibledger.consensus import (
    GENESIS_CHECKPOINT,
    Block,
    CheckpointCertificate,
    CommitCertificate,
    CommittedBlock,
    Effect,
    Execute,
    Replica,
    SignedMessage,
    StableCheckpoint,
)
from ibledger.node.ledger import AppliedBlock, Ledger
from ibledger.node.runtime import PeerMessage, ReplicaRuntime, Tick, TransferredBlocks

DEADLINE = 30.0  # bounds a hang only


def committed(seq: int) -> CommittedBlock:
    block = Block(seq, 1_000 + seq, (b"request-%d" % seq,))
    certificate = CommitCertificate(0, seq, block.digest, ())
    return CommittedBlock(block, certificate, GENESIS_CHECKPOINT.block_digest, 1_000 + seq)


class ScriptedReplica:
    """Answers each peer message with the next scripted effects; records what it was told."""

    view_active = True
    finished = False

    def __init__(self, script: list[list[Effect]]) -> None:
        self.script = script
        self.stepped = 0
        self.ticks = 0
        self.roots: list[tuple[int, bytes]] = []

    def step(self, message: SignedMessage) -> list[Effect]:
        self.stepped += 1
        return self.script.pop(0) if self.script else []

    def tick(self, now_ms: int) -> list[Effect]:
        self.ticks += 1
        return []

    def on_state_transfer(self, blocks: tuple[CommittedBlock, ...]) -> list[Effect]:
        return [Execute(block) for block in blocks]

    def on_executed(self, seq: int, state_root: bytes) -> list[Effect]:
        self.roots.append((seq, state_root))
        return []


class GatedLedger:
    """Applies a block only when its gate opens (from the test), in a worker thread."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.gates: dict[int, threading.Event] = {}
        self.applied: list[int] = []
        self.fail_at = fail_at

    def gate(self, seq: int) -> threading.Event:
        return self.gates.setdefault(seq, threading.Event())

    def apply_committed(self, block: CommittedBlock) -> AppliedBlock:
        if not self.gate(block.seq).wait(DEADLINE):
            raise AssertionError(f"block {block.seq} was never released")
        if block.seq == self.fail_at:
            raise OSError("simulated write failure")
        self.applied.append(block.seq)
        return cast(AppliedBlock, _Applied(b"root-%d" % block.seq))


class _Applied:
    def __init__(self, root: bytes) -> None:
        self.state_root = root


class _NoPeers:
    def send(self, to: str, data: bytes) -> None:
        pass

    def broadcast(self, data: bytes) -> None:
        pass


def runtime_for(
    replica: ScriptedReplica, ledger: GatedLedger, **kwargs: Any
) -> tuple[ReplicaRuntime, list[int], list[int]]:
    committed_seqs: list[int] = []
    stable_seqs: list[int] = []
    runtime = ReplicaRuntime(
        cast(Replica, replica),
        cast(Ledger, ledger),
        _NoPeers(),
        on_committed=lambda applied, block: committed_seqs.append(block.seq),
        on_fetch=lambda _: None,
        on_stable=lambda certificate: stable_seqs.append(certificate.seq),
        **kwargs,
    )
    return runtime, committed_seqs, stable_seqs


async def until(condition: Any) -> None:
    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(wait(), DEADLINE)


MESSAGE = PeerMessage(cast(SignedMessage, object()), 10)


async def test_consensus_goes_on_while_a_block_executes() -> None:
    certificate = CheckpointCertificate(2, committed(2).digest, b"root-2", ())
    replica = ScriptedReplica(
        [[Execute(committed(1))], [Execute(committed(2)), StableCheckpoint(certificate)]]
    )
    ledger = GatedLedger()
    runtime, committed_seqs, stable_seqs = runtime_for(replica, ledger)
    task = asyncio.create_task(runtime.run())
    try:
        for _ in range(4):
            runtime.offer(MESSAGE)
        runtime.offer(Tick(5))
        # Block 1 is held in execution: the replica still took every later input.
        await until(lambda: replica.stepped == 4 and replica.ticks == 1)
        assert ledger.applied == [] and replica.roots == [] and runtime.execution_backlog == 2
        ledger.gate(1).set()
        await until(lambda: replica.roots == [(1, b"root-1")])
        assert committed_seqs == [1] and stable_seqs == []  # the certificate waits for block 2
        ledger.gate(2).set()
        await until(lambda: len(replica.roots) == 2)
        await until(lambda: stable_seqs == [2])
        assert replica.roots == [(1, b"root-1"), (2, b"root-2")]
        assert committed_seqs == [1, 2] and runtime.execution_backlog == 0
        assert runtime.failure is None
    finally:
        task.cancel()


async def test_a_full_executor_queue_holds_the_inputs_back() -> None:
    replica = ScriptedReplica([[Execute(committed(seq))] for seq in range(1, 5)])
    ledger = GatedLedger()
    runtime, _, _ = runtime_for(replica, ledger, execution_max=2)
    task = asyncio.create_task(runtime.run())
    try:
        for _ in range(6):
            runtime.offer(MESSAGE)
        # Block 1 executes, 2 and 3 fill the queue, 4 waits for room: the fifth input waits.
        await until(lambda: replica.stepped == 4)
        await asyncio.sleep(0.1)
        assert replica.stepped == 4 and runtime.backlog == 2
        for seq in range(1, 5):
            ledger.gate(seq).set()
        await until(lambda: replica.stepped == 6 and len(replica.roots) == 4)
        assert [seq for seq, _ in replica.roots] == [1, 2, 3, 4]
    finally:
        task.cancel()


async def test_transferred_blocks_are_done_once_applied() -> None:
    replica = ScriptedReplica([])
    ledger = GatedLedger()
    runtime, _, _ = runtime_for(replica, ledger)
    task = asyncio.create_task(runtime.run())
    try:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        runtime.offer(TransferredBlocks((committed(1), committed(2)), done))
        await asyncio.sleep(0.1)
        assert not done.done()  # state transfer reads the ledger's height next
        ledger.gate(1).set()
        ledger.gate(2).set()
        await asyncio.wait_for(done, DEADLINE)
        assert ledger.applied == [1, 2]
    finally:
        task.cancel()


async def test_a_failed_execution_stops_the_runtime() -> None:
    # More blocks than the queue holds come after the one that fails: the runtime must not
    # wait for room the dead executor would never make.
    replica = ScriptedReplica([[Execute(committed(seq))] for seq in range(1, 7)])
    ledger = GatedLedger(fail_at=1)
    runtime, committed_seqs, _ = runtime_for(replica, ledger, execution_max=2)
    for _ in range(6):
        runtime.offer(MESSAGE)
    ledger.gate(1).set()
    with pytest.raises(OSError, match="simulated write failure"):
        await asyncio.wait_for(runtime.run(), DEADLINE)
    assert isinstance(runtime.failure, OSError)
    assert committed_seqs == [] and replica.roots == [] and replica.stepped < 6
