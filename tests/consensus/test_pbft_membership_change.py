"""A change of validator set at a scheduled height, in the pure core.

The old set is told its last sequence number (`Replica.end_at`) and orders nothing above it,
filling the gap with empty blocks when there is no load; the new set starts from a base
checkpoint at that height, trusted without signatures as genesis is, and orders from there.
Signatures of the two sets are told apart by the signer's domain, as the node's are (each set
signs under its own epoch number), so a message of the old set means nothing to the new one.
"""

from __future__ import annotations

import hashlib

import pytest
from pbft_harness import Harness, KeyedSigner, KeyedVerifier, req

from ibledger.consensus import (
    CheckpointCertificate,
    ConfigError,
    ExecutedTip,
    Replica,
    ReplicaConfig,
    SignedMessage,
    StableCheckpoint,
    ViewChange,
)
from ibledger.consensus.codec import signing_bytes

END = 8  # checkpoint_interval 4, watermark_window 8: a change scheduled at height 0 ends at 8


def _run_to_end(h: Harness) -> None:
    for m in h.members:
        h.handle(m, h.replica(m).end_at(END))
    for i in range(40):
        h.submit("r1", req(i))
        h.tick(2)
    h.tick(40)


def test_the_old_set_orders_exactly_to_its_end_with_load() -> None:
    h = Harness()
    _run_to_end(h)
    for m in h.members:
        replica = h.replica(m)
        assert replica.last_executed == END, (m, h.heights())
        assert replica.finished
        assert replica.status().watermark_high == END
    # No pre-prepare above the end was ever sent.
    assert all(
        getattr(sm.message, "seq", 0) <= END for _src, _dst, sm in h.sent if sm.message is not None
    )
    executed = [b.block.seq for b in h.nodes["r0"].executed]
    assert executed == list(range(1, END + 1))


def test_without_load_the_primary_fills_the_gap_with_empty_blocks() -> None:
    h = Harness()
    h.submit("r0", req(1))
    h.tick(5)
    assert h.replica("r2").last_executed == 1
    for m in h.members:
        h.handle(m, h.replica(m).end_at(END))
    h.tick(60)
    for m in h.members:
        node = h.nodes[m]
        assert node.replica.finished, (m, h.heights())
        assert [len(b.block.requests) for b in node.executed[1:]] == [0] * (END - 1)
    assert len({tuple(b.digest for b in n.executed) for n in h.nodes.values()}) == 1


def test_a_primary_that_does_not_fill_the_gap_is_replaced() -> None:
    h = Harness()
    h.submit("r0", req(1))
    h.tick(5)
    h.crash("r0")
    for m in ("r1", "r2", "r3"):
        h.handle(m, h.replica(m).end_at(END))
    h.tick(120)
    for m in ("r1", "r2", "r3"):
        assert h.replica(m).finished, (m, h.heights())
        assert h.replica(m).view >= 1


def test_an_end_is_never_moved_up_and_never_below_what_executed() -> None:
    h = Harness()
    for i in range(12):
        h.submit("r0", req(i))
        h.tick(2)
    executed = h.replica("r0").last_executed
    assert executed >= 1
    h.replica("r0").end_at(executed + 16)
    h.replica("r0").end_at(executed + 40)
    assert h.replica("r0").end_seq == executed + 16
    h.replica("r0").end_at(0)
    assert h.replica("r0").end_seq == executed


def _next_set(old: Harness, members: tuple[str, ...]) -> Harness:
    """The set after the change (epoch 1), starting where `old` ended: base checkpoint at END."""
    last = old.nodes["r0"].executed[-1]
    root = old.nodes["r0"].root
    new = Harness(
        members=members,
        epoch=1,
        tip=ExecutedTip(END, last.digest, last.timestamp_ms, root),
        base=CheckpointCertificate(END, last.digest, root, ()),
    )
    new.now_ms = old.now_ms
    for node in new.nodes.values():
        node.root = root
    return new


def test_the_next_set_takes_over_from_the_base_with_a_new_member_and_without_a_removed_one() -> (
    None
):
    old = Harness()
    _run_to_end(old)
    # r3 leaves, r4 joins (it starts from the state at END, as a node restored from a peer's
    # snapshot does).
    new = _next_set(old, ("r0", "r1", "r2", "r4"))
    for i in range(100, 130):
        new.submit("r4", req(i))
        new.tick(2)
    new.tick(40)
    heights = {m: new.replica(m).last_executed for m in new.members}
    assert min(heights.values()) >= END + 8, heights
    chains = {tuple(b.digest for b in n.executed) for n in new.nodes.values()}
    assert len(chains) == 1
    first = new.nodes["r4"].executed[0]
    assert first.block.seq == END + 1
    assert first.parent_digest == old.nodes["r0"].executed[-1].digest
    # The new set's stable checkpoints are its own certificates, above the base.
    assert new.replica("r4").stable_checkpoint.seq > END
    assert new.replica("r4").stable_checkpoint.signatures
    # The base itself is never handed out as a stable checkpoint: the old set's signed
    # certificate at END stays the proof of that height.
    for m in new.members:
        handed = [e.certificate for e in new.effects_of(m, StableCheckpoint)]
        assert handed and all(c.seq > END and c.signatures for c in handed), (m, handed)


def test_messages_of_the_old_set_mean_nothing_to_the_new_one() -> None:
    old = Harness()
    _run_to_end(old)
    new = _next_set(old, ("r0", "r1", "r2", "r4"))
    # r1's own VIEW-CHANGE of the old set, replayed by anyone into the new set: its signature
    # is in the old set's domain, so the new set drops it before it can count as a vote.
    replayed = [
        sm
        for _src, _dst, sm in old.sent
        if isinstance(sm, SignedMessage) and sm.sender == "r1" and sm.message is not None
    ]
    assert replayed
    # Even a well-formed VIEW-CHANGE for a higher view, signed by r1 under the old domain.
    vc = ViewChange(5, old.replica("r1").stable_checkpoint, ())
    signed = SignedMessage(vc, "r1", KeyedSigner("r1").sign(signing_bytes(vc, "r1")))
    before = dict(new.replica("r0").counters)
    for sm in [*replayed[:50], signed]:
        new.handle("r0", new.replica("r0").step(sm))
    after = new.replica("r0").counters
    assert after["drop-bad-signature"] - before.get("drop-bad-signature", 0) == 51
    assert new.replica("r0").view == 0


def test_a_replica_cannot_start_below_its_sets_base() -> None:
    base = CheckpointCertificate(8, hashlib.sha256(b"b").digest(), b"r", ())
    config = ReplicaConfig(("r0", "r1", "r2", "r3"), checkpoint_interval=4, base=base)
    with pytest.raises(ConfigError, match="below the validator set's base"):
        Replica(config, "r0", KeyedSigner("r0"), KeyedVerifier(config.members), None, None)
    with pytest.raises(ConfigError, match="unsigned checkpoint"):
        ReplicaConfig(
            ("r0",), checkpoint_interval=4, base=CheckpointCertificate(6, b"d" * 32, b"", ())
        )
