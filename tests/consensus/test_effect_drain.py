"""One effect drain: its order and feedback rules, and that every interpreter of effects uses it.

The node's runtime, the simulator, the consensus test harness and the consensus benchmark each
handle effects their own way (sockets and LevelDB, a simulated network, lists, counters), but
they take effects from the same `EffectDrain`, so what the simulator proves about ordering and
about `on_executed` feedback is what the node does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ibledger.consensus import (
    GENESIS_CHECKPOINT,
    Block,
    CommitCertificate,
    CommittedBlock,
    Effect,
    EffectDrain,
    Execute,
    RequestRejected,
    ViewChanged,
)

ROOT = Path(__file__).resolve().parents[2]
INTERPRETERS = (
    "node/runtime.py",
    "sim/cluster.py",
    "tests/consensus/pbft_harness.py",
    "bench/bench_consensus.py",
)


class Feedback:
    def __init__(self, answers: dict[int, list[Effect]]) -> None:
        self.answers = answers
        self.reported: list[tuple[int, bytes]] = []

    def on_executed(self, seq: int, state_root: bytes) -> list[Effect]:
        self.reported.append((seq, state_root))
        return self.answers.get(seq, [])


def execute(seq: int) -> Execute:
    block = Block(seq, 1_000 + seq, (b"request-%d" % seq,))
    certificate = CommitCertificate(0, seq, block.digest, ())
    return Execute(CommittedBlock(block, certificate, GENESIS_CHECKPOINT.block_digest, 1_000 + seq))


def test_effects_come_in_order_and_feedback_joins_behind_the_queue() -> None:
    first, second = execute(1), execute(2)
    marker = RequestRejected(b"r" * 32, "late")
    feedback = Feedback({1: [marker]})
    view = ViewChanged(1, "r1")
    drain = EffectDrain(feedback, [first, view, second])
    seen: list[Effect] = []
    for effect in drain:
        seen.append(effect)
        if isinstance(effect, Execute):
            drain.executed(effect, b"root-%d" % effect.block.seq)
    assert seen == [first, view, second, marker]
    assert feedback.reported == [(1, b"root-1"), (2, b"root-2")]
    assert drain.taken == 4


def test_an_execute_must_be_reported_before_the_next_effect() -> None:
    drain = EffectDrain(Feedback({}), [execute(1), ViewChanged(1, "r1")])
    effects = iter(drain)
    next(effects)
    with pytest.raises(RuntimeError, match="never reported"):
        next(effects)


def test_only_the_block_being_executed_can_be_reported() -> None:
    drain = EffectDrain(Feedback({}), [execute(1)])
    for _ in drain:
        with pytest.raises(RuntimeError, match="not the block being executed"):
            drain.executed(execute(2), b"root")
        break


@pytest.mark.parametrize("path", INTERPRETERS)
def test_every_effect_interpreter_drains_through_effect_drain(path: str) -> None:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    names = {
        node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        for node in calls
    }
    assert "EffectDrain" in names, f"{path} does not drain effects through EffectDrain"
    assert "on_executed" not in names, (
        f"{path} calls on_executed itself: report state roots through EffectDrain.executed"
    )
