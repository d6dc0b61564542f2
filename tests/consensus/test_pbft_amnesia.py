"""Amnesia (TESTING B14): a validator that lost its consensus records signs nothing it could
have signed before, until it has executed past its vote floor, and follows by state transfer.

The vote floor is what the node knows from outside its data directory (node/vote_record.py):
the core only obeys it. Without it, a replica restarted empty would answer a second PRE-PREPARE
for a (view, sequence number) it had already prepared with a PREPARE for the other digest.
"""

from __future__ import annotations

from dataclasses import replace

from pbft_harness import Harness, KeyedSigner, Node, req, signed_by

from ibledger.consensus import (
    Block,
    Broadcast,
    Commit,
    NewView,
    Prepare,
    PrePrepare,
    Replica,
    ViewChange,
)
from ibledger.consensus.config import ConfigError


def _votes(h: Harness, m: str, since: int = 0) -> list[object]:
    kinds = PrePrepare | Prepare | Commit | ViewChange | NewView
    return [
        e.message.message
        for e in h.nodes[m].effects[since:]
        if isinstance(e, Broadcast) and isinstance(e.message.message, kinds)
    ]


def _lose_records(h: Harness, m: str, vote_floor: int) -> Replica:
    """`m` restarts with an empty data directory, told of the floor its vote record keeps."""
    h.nodes[m] = Node(
        Replica(replace(h.config, vote_floor=vote_floor), m, KeyedSigner(m), h.verifier)
    )
    return h.nodes[m].replica


def test_an_empty_restart_below_its_floor_never_signs_a_second_digest() -> None:
    h = Harness()
    h.tick(1)
    a = Block(1, h.now_ms, (req(1),))
    b = Block(1, h.now_ms, (req(2),))
    r1 = h.replica("r1")
    h.handle("r1", r1.step(signed_by("r0", PrePrepare(0, 1, a.digest, a))))
    assert [type(v) for v in _votes(h, "r1")] == [Prepare]
    # Its data directory is gone. Without a floor it would prepare b for (0, 1) as well.
    unguarded = _lose_records(h, "r1", vote_floor=0)
    h.handle("r1", unguarded.tick(h.now_ms))
    out = h.handle("r1", unguarded.step(signed_by("r0", PrePrepare(0, 1, b.digest, b))))
    assert any(isinstance(e, Broadcast) and isinstance(e.message.message, Prepare) for e in out)
    # With the floor its vote record keeps, the equivocating primary gets nothing signed.
    r1 = _lose_records(h, "r1", vote_floor=1)
    assert r1.below_vote_floor
    h.handle("r1", r1.tick(h.now_ms))
    h.handle("r1", r1.step(signed_by("r0", PrePrepare(0, 1, b.digest, b))))
    assert _votes(h, "r1") == []


def test_below_its_floor_a_replica_follows_without_voting_then_votes_again() -> None:
    h = Harness(batch_size_max=1, batch_timeout_ticks=0)
    h.tick(1)
    for i in range(3):
        h.submit("r0", req(i))
    h.tick(4)
    assert h.heights()["r1"] == 3
    r1 = _lose_records(h, "r1", vote_floor=6)  # it may have signed up to block 6
    h.handle("r1", r1.tick(h.now_ms))
    signed_below: list[object] = []
    for i in range(3, 12):
        since = len(h.nodes["r1"].effects)
        below = r1.below_vote_floor
        h.submit("r0", req(i))
        h.tick(2)
        if below:
            signed_below += _votes(h, "r1", since)
    assert signed_below == []
    # It followed on its peers' proofs (from genesis: its blocks were gone too), then voted.
    assert h.heights()["r1"] == h.heights()["r0"] == 12
    assert [b.digest for b in h.nodes["r1"].executed] == [b.digest for b in h.nodes["r0"].executed]
    votes = [v for v in _votes(h, "r1") if isinstance(v, Prepare | Commit)]
    assert votes and min(v.seq for v in votes) > 6


def test_below_its_floor_a_replica_starts_no_view_change_and_sends_none() -> None:
    h = Harness()
    h.tick(1)
    r2 = _lose_records(h, "r2", vote_floor=50)
    h.handle("r2", r2.tick(h.now_ms))
    # Requests it holds time out: it starts no view change of its own.
    h.handle("r2", r2.submit(req(1), h.now_ms, forward=False))
    h.filter = lambda src, dst, sm: dst != "r2" or isinstance(sm.message, ViewChange)
    h.crash("r0")
    h.submit("r1", req(2))
    h.submit("r3", req(2))
    h.tick(40)
    assert r2.view == h.replica("r1").view >= 1  # it followed r1 and r3 into the new view
    assert r2.counters["view-change-below-vote-floor"] >= 1
    assert _votes(h, "r2") == []


def test_a_negative_floor_is_refused() -> None:
    h = Harness()
    try:
        replace(h.config, vote_floor=-1)
    except ConfigError as exc:
        assert "vote_floor" in str(exc)
    else:
        raise AssertionError("a negative vote floor was accepted")
