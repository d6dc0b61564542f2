"""View changes: timeouts, VIEW-CHANGE contents, NEW-VIEW construction and validation (O set
recomputed from V, null blocks for gaps), the f+1 join rule, exponential timeouts, equivocation,
and request forwarding to the new primary.

Section numbers refer to Castro and Liskov, OSDI'99 (4.4 view changes, 4.5.2 liveness).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from pbft_harness import Harness, req, signed_by

from ibledger.consensus import (
    Block,
    BlockBody,
    BlockRequest,
    Broadcast,
    Commit,
    Execute,
    NewView,
    Prepare,
    PrePrepare,
    Send,
    SignedMessage,
    ViewChange,
    compute_new_view_order,
    encode_message,
    null_block,
)


def _commit0(sm: SignedMessage) -> bool:
    return isinstance(sm.message, Commit) and sm.message.view == 0


def _silence(h: Harness, m: str) -> None:
    h.filter = lambda src, dst, sm: src != m and dst != m


def test_silent_primary_is_replaced_and_request_executes() -> None:
    """Sections 4.4 and 4.5.2 (docs/testing.md B9): backups waiting for a request time out, move to
    view 1, and the forwarded request executes there."""
    h = Harness()
    _silence(h, "r0")
    h.tick(1)
    h.submit("r1", req(1))
    h.tick(40)
    for m in ("r1", "r2", "r3"):
        assert h.replica(m).view == 1 and h.replica(m).view_active
        assert [len(b.requests) for b in h.nodes[m].executed] == [1]
        assert h.view_changes(m)[-1].primary == "r1"
    # Why each left view 0: r1 (with the request) timed out; the others too, or they joined
    # the f+1 replicas that had moved on, whichever came first.
    assert h.view_changes("r1")[-1].cause == "request-timeout"
    for m in ("r2", "r3"):
        assert h.view_changes(m)[-1].cause in ("request-timeout", "joined-peers")


def test_view_change_carries_prepared_certificates() -> None:
    """Section 4.4: VIEW-CHANGE carries P, a prepared certificate per prepared sequence number
    above the stable checkpoint, over digests only (no bodies, whatever the blocks hold)."""
    h = Harness()
    h.tick(1)
    # Deliver pre-prepare and prepares, drop all commits: everyone prepares, nobody commits.
    h.filter = lambda src, dst, sm: not isinstance(sm.message, Commit)
    h.submit("r0", req(1))
    h.tick(2)
    assert all(h.replica(m).is_prepared(1) for m in h.members)
    assert h.heights() == {m: 0 for m in h.members}
    h.filter = lambda src, dst, sm: src != "r0" and dst != "r0" and not _commit0(sm)
    h.tick(30)
    vcs = [
        e.message.message
        for e in h.effects_of("r2", Broadcast)
        if isinstance(e.message.message, ViewChange)
    ]
    assert vcs and vcs[0].view == 1
    assert [p.seq for p in vcs[0].prepared] == [1]
    vc_msgs = [
        e.message
        for e in h.effects_of("r2", Broadcast)
        if isinstance(e.message.message, ViewChange)
    ]
    assert len(encode_message(vc_msgs[0])) < 2048
    # The prepared block is re-proposed in view 1 and executes.
    for m in ("r1", "r2", "r3"):
        assert [b.seq for b in h.nodes[m].executed] == [1]
        assert h.nodes[m].executed[0].requests == (req(1),)
        assert h.nodes[m].executed[0].view == 1


def test_new_view_fills_gaps_with_null_blocks() -> None:
    """Section 4.4: for a sequence number between min-s and max-s with no prepared certificate
    in V, the new primary proposes a null request."""
    h = Harness(batch_size_max=1, batch_timeout_ticks=0)
    h.tick(1)

    def votes_for_seq1(sm: SignedMessage) -> bool:
        m = sm.message
        return isinstance(m, Prepare | Commit) and m.seq == 1 and m.view == 0

    # seq 1 is pre-prepared but never prepared; seq 2 prepares everywhere but does not commit.
    h.filter = lambda src, dst, sm: not votes_for_seq1(sm) and not _commit0(sm)
    h.submit("r0", req(1))
    h.submit("r0", req(2))
    h.deliver()
    assert h.replica("r2").is_prepared(2) and not h.replica("r2").is_prepared(1)
    h.filter = lambda src, dst, sm: (
        src != "r0" and dst != "r0" and not votes_for_seq1(sm) and not _commit0(sm)
    )
    h.tick(30)
    executed = h.nodes["r2"].executed
    assert [b.seq for b in executed[:2]] == [1, 2]
    assert executed[0].block == null_block(1)
    assert executed[1].requests == (req(2),)
    # The client retries req(1) at a backup; it executes after the gap.
    h.submit("r2", req(1))
    h.tick(5)
    assert any(req(1) in b.requests for b in h.nodes["r3"].executed[2:])


def test_compute_new_view_order_picks_highest_view() -> None:
    """Section 4.4: for each n the O set uses the prepared certificate with the highest view."""
    h = Harness()
    b_old = Block(1, 5, (req(1),))
    b_new = Block(1, 6, (req(2),))

    def cert(view: int, block: Block) -> object:
        from ibledger.consensus import GENESIS_CHECKPOINT, PreparedCertificate

        return ViewChange(
            9, GENESIS_CHECKPOINT, (PreparedCertificate(view, 1, block.digest, b"", ()),)
        )

    checkpoint, order = compute_new_view_order([cert(1, b_old), cert(3, b_new), cert(2, b_old)])  # type: ignore[list-item]
    assert checkpoint.seq == 0
    assert order == [(1, b_new.digest)]
    assert h.config.quorum == 3


def test_backup_rejects_new_view_with_wrong_o_set() -> None:
    """Section 4.4: backups recompute O from V and reject a NEW-VIEW whose O differs, e.g. a
    primary that drops a prepared request or substitutes another."""
    h = Harness()
    h.tick(1)
    h.filter = lambda src, dst, sm: not isinstance(sm.message, Commit)
    h.submit("r0", req(1))
    h.tick(2)
    captured: list[SignedMessage] = []

    def capture(src: str, dst: str, sm: SignedMessage) -> bool:
        if isinstance(sm.message, NewView):
            captured.append(sm)
            return False
        return src != "r0" and dst != "r0" and not _commit0(sm)

    h.filter = capture
    h.tick(25)
    assert captured, "r1 should have built a NEW-VIEW"
    nv_sm = captured[0]
    nv = nv_sm.message
    assert isinstance(nv, NewView)
    # Forge: replace the re-proposed digest with a null block, re-signed by the real primary.
    forged_pp = signed_by("r1", PrePrepare(1, 1, null_block(1).digest))
    forged = signed_by("r1", replace(nv, pre_prepares=(forged_pp,)))
    r2 = h.replica("r2")
    r2.step(forged)
    assert r2.counters["drop-new-view-invalid"] == 1
    assert not r2.view_active
    # The genuine one is accepted.
    h.handle("r2", r2.step(nv_sm))
    assert r2.view == 1 and r2.view_active


def test_f_plus_one_view_changes_pull_a_replica_along() -> None:
    """Section 4.5.2: a replica that sees f+1 VIEW-CHANGEs for higher views joins the smallest,
    even before its own timer expires."""
    h = Harness()
    h.tick(1)
    r3 = h.replica("r3")
    for m in ("r1", "r2"):
        vc = ViewChange(1, r3.stable_checkpoint, ())
        h.handle("r3", r3.step(signed_by(m, vc)))
    assert r3.view == 1 and not r3.view_active
    h2 = Harness()
    h2.tick(1)
    r3b = h2.replica("r3")
    r3b.step(signed_by("r1", ViewChange(1, r3b.stable_checkpoint, ())))
    assert r3b.view == 0  # f = 1 message alone proves nothing


def test_view_change_timeouts_grow_exponentially() -> None:
    """Section 4.5.2: a replica starts its timer after collecting 2f+1 VIEW-CHANGEs; if the new
    view does not start within T it moves on and waits 2T, then 4T. An isolated replica cannot
    escalate alone."""
    lonely = Harness(view_change_timeout_ticks=10, view_change_timeout_max_ticks=1000)
    lonely.filter = lambda src, dst, sm: src in ("r2", "r3") and dst in ("r2", "r3")
    lonely.tick(1)
    lonely.submit("r2", req(1))
    lonely.tick(200)
    assert lonely.replica("r2").view == 1  # no quorum of VIEW-CHANGEs: no escalation

    # n = 7: the primaries of views 1 and 2 are down and r0 never gets a proposal through.
    h = Harness(n=7, view_change_timeout_ticks=10, view_change_timeout_max_ticks=1000)
    h.crash("r1")
    h.crash("r2")
    h.filter = lambda src, dst, sm: not (isinstance(sm.message, PrePrepare) and src == "r0")
    h.tick(1)
    for m in ("r0", "r3", "r4", "r5", "r6"):
        h.submit(m, req(1))
    changes: dict[int, int] = {}
    for t in range(300):
        h.tick(1)
        changes.setdefault(h.replica("r4").view, t)
    assert h.replica("r4").view == 3 and h.replica("r4").view_active
    first, second = changes[2] - changes[1], changes[3] - changes[2]
    assert second >= 2 * first - 2
    assert [len(b.requests) for b in h.nodes["r4"].executed] == [1]


def test_equivocating_primary_is_detected() -> None:
    """Section 4.2 (a backup accepts one digest per (v, n)) and docs/testing.md B1: two signed
    pre-prepares for the same (v, n) are evidence; the backup starts a view change."""
    h = Harness()
    h.tick(1, deliver=False)
    a = Block(1, h.now_ms, (req(1),))
    b = Block(1, h.now_ms, (req(2),))
    r1 = h.replica("r1")
    h.handle("r1", r1.step(signed_by("r0", PrePrepare(0, 1, a.digest, a))))
    out = h.handle("r1", r1.step(signed_by("r0", PrePrepare(0, 1, b.digest, b))))
    assert h.evidence("r1") and h.evidence("r1")[0].offender == "r0"
    assert any(isinstance(e, Broadcast) and isinstance(e.message.message, ViewChange) for e in out)
    assert r1.view == 1


def test_pending_requests_forwarded_to_new_primary() -> None:
    """Section 4.1/4.4: a backup holding requests forwards them to the primary of the new view."""
    h = Harness()
    _silence(h, "r0")
    h.tick(1)
    for i in range(3):
        h.submit("r3", req(i))
    h.tick(40)
    executed = [r for b in h.nodes["r2"].executed for r in b.requests]
    assert sorted(executed) == sorted(req(i) for i in range(3))


def test_commit_certificate_from_older_view_still_executes() -> None:
    """Section 4.4 safety argument: a commit certificate is a proof on its own, so COMMITs of a
    view the replica already left still complete the request."""
    h = Harness()
    h.tick(1)
    held: list[tuple[str, str, SignedMessage]] = []

    def hold_commits_to_r3(src: str, dst: str, sm: SignedMessage) -> bool:
        if isinstance(sm.message, Commit) and dst == "r3":
            held.append((src, dst, sm))
            return False
        return True

    h.filter = hold_commits_to_r3
    h.submit("r0", req(1))
    h.tick(1)
    r3 = h.replica("r3")
    for m in ("r1", "r2"):
        h.handle("r3", r3.step(signed_by(m, ViewChange(1, r3.stable_checkpoint, ()))))
    assert r3.view == 1
    h.filter = None
    h.queue.extend(held)
    h.deliver()
    assert [b.requests for b in h.nodes["r3"].executed] == [(req(1),)]


def _no_pre_prepare_to(target: str) -> Callable[[str, str, SignedMessage], bool]:
    """Drop every COMMIT and every view-0 PRE-PREPARE (also relayed ones) to `target`."""

    def keep(src: str, dst: str, sm: SignedMessage) -> bool:
        if _commit0(sm):
            return False
        m = sm.message
        return not (dst == target and isinstance(m, PrePrepare) and m.view == 0)

    return keep


def _without_r0(target: str) -> Callable[[str, str, SignedMessage], bool]:
    no_body = _no_pre_prepare_to(target)
    return lambda src, dst, sm: src != "r0" and dst != "r0" and (no_body(src, dst, sm))


def test_new_primary_fetches_a_prepared_body_it_never_saw() -> None:
    """VIEW-CHANGE carries digests only: a new primary that never received the body of a
    prepared block fetches it (BLOCK-REQUEST) from the replicas that prepared it, then sends
    NEW-VIEW, and the block executes in view 1 with its original requests."""
    h = Harness()
    h.tick(1)
    h.filter = _no_pre_prepare_to("r1")
    big = req(1, size=200_000)
    h.submit("r0", big)
    h.tick(2)
    assert h.replica("r2").is_prepared(1) and h.replica("r3").is_prepared(1)
    assert not h.replica("r1").is_prepared(1)
    h.filter = _without_r0("r1")
    h.tick(40)
    vcs = [sm for _s, _d, sm in h.sent if isinstance(sm.message, ViewChange) and sm.sender == "r2"]
    assert vcs and all(len(encode_message(sm)) < 2048 for sm in vcs)
    r1 = h.replica("r1")
    assert r1.counters["new-view-missing-body"] >= 1
    assert r1.counters["block-bodies-received"] == 1
    for m in ("r1", "r2", "r3"):
        assert [b.requests for b in h.nodes[m].executed] == [(big,)]
        assert h.nodes[m].executed[0].view == 1


def test_backup_fetches_new_view_bodies_from_the_new_primary() -> None:
    """A backup that lacks a body named in NEW-VIEW keeps the NEW-VIEW, fetches the body from the
    new primary and installs the view once it has it."""
    h = Harness()
    h.tick(1)
    h.filter = _no_pre_prepare_to("r3")
    h.submit("r0", req(1))
    h.tick(2)
    assert h.replica("r1").is_prepared(1) and not h.replica("r3").is_prepared(1)
    h.filter = _without_r0("r3")
    h.tick(40)
    r3 = h.replica("r3")
    assert r3.counters["new-view-awaiting-bodies"] >= 1
    assert r3.counters["block-bodies-received"] >= 1
    assert r3.view == 1 and r3.view_active
    assert [b.requests for b in h.nodes["r3"].executed] == [(req(1),)]


def test_block_bodies_are_checked_against_the_digest_asked_for() -> None:
    """A BLOCK-BODY nobody asked for, or one that does not hash to the requested digest, is
    dropped and counted; a BLOCK-REQUEST is answered with at most bodies_per_request_max
    bodies and only with bodies the replica holds."""
    h = Harness(bodies_per_request_max=2)
    h.tick(1)
    for i in range(3):
        h.submit("r0", req(i))
        h.tick(1)
    r2 = h.replica("r2")
    forged = Block(1, 1, (b"forged",))
    r2.step(signed_by("r1", BlockBody(forged.digest, forged)))
    assert r2.counters["drop-block-body-unwanted"] == 1
    digests = tuple(
        b.digest for b in (e.block for e in h.effects_of("r2", Execute)) if b is not None
    )
    out = r2.step(signed_by("r1", BlockRequest((*digests, bytes(32)))))
    bodies = [e for e in out if isinstance(e, Send) and isinstance(e.message.message, BlockBody)]
    assert 1 <= len(bodies) <= 2
    assert r2.counters["drop-block-request-too-long"] == 1
