"""The replica's deciding components on their own: timers, the request queue, the window
verdicts, checkpoint votes, catch-up, the record format and the view-change functions."""

from __future__ import annotations

from pbft_harness import KeyedSigner, KeyedVerifier

from ibledger.consensus import (
    GENESIS_CHECKPOINT,
    Block,
    Checkpoint,
    Commit,
    Message,
    NewView,
    PersistedState,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ReplicaConfig,
    SignedMessage,
    ViewChange,
    null_block,
    signing_bytes,
)
from ibledger.consensus.catch_up import CatchUp, fetch_order
from ibledger.consensus.checkpoints import CheckpointVotes, collect_log
from ibledger.consensus.log import (
    BUFFER,
    IGNORE,
    Slot,
    commit_verdict,
    prepare_verdict,
    window_verdict,
)
from ibledger.consensus.requests import REFUSED_DUPLICATE, REFUSED_FULL, RequestQueue
from ibledger.consensus.state import (
    load_records,
    pre_prepare_record,
    prepared_record,
    stable_record,
    view_record,
)
from ibledger.consensus.timers import Backoff, Interval, Timeout, Timers
from ibledger.consensus.view_change import (
    choose_view_changes,
    missing_bodies,
    validate_new_view,
    view_to_join,
)

MEMBERS = ("r0", "r1", "r2", "r3")


def _signed(message: Message, sender: str) -> SignedMessage:
    return SignedMessage(message, sender, KeyedSigner(sender).sign(signing_bytes(message, sender)))


def test_backoff_doubles_to_the_cap_and_resets() -> None:
    b = Backoff(100, 350)
    durations = []
    for _ in range(4):
        durations.append(b.duration())
        b.grow()
    assert durations == [100, 200, 350, 350]
    b.reset()
    assert b.duration() == 100


def test_timeout_and_interval() -> None:
    t = Timeout()
    assert not t.expired(10, 5)
    t.start(3)
    t.start_if_stopped(7)
    assert t.started == 3 and not t.expired(7, 5) and t.expired(8, 5)
    t.restart_if(False, 9)
    assert not t.running
    i = Interval(10)
    assert not i.due(9) and i.due(10)
    i.mark(10)
    assert not i.due(19)
    status = Timers.for_config(ReplicaConfig(MEMBERS)).status
    assert status.due(1)  # the first STATUS goes out on the first tick


def test_request_queue_dedupes_bounds_and_requeues_after_a_view_change() -> None:
    cfg = ReplicaConfig(MEMBERS, pending_requests_max=2, batch_size_max=2)
    q = RequestQueue()
    rid_a, refused = q.admit(b"a", 1, cfg, None)
    assert rid_a is not None and refused is None
    assert q.admit(b"a", 2, cfg, None) == (rid_a, REFUSED_DUPLICATE)
    rid_b, _ = q.admit(b"b", 2, cfg, None)
    assert q.admit(b"c", 2, cfg, None)[1] == REFUSED_FULL
    assert q.next_batch(cfg) == (b"a", b"b")
    assert rid_b is not None
    q.in_flight([rid_a], 5)
    assert q.next_batch(cfg) == (b"b",)
    assert q.forward_batch(3, 2, cfg) == []  # b arrived at tick 2: too young to re-forward
    q.new_view()
    assert q.next_batch(cfg) == (b"a", b"b")
    q.executed([rid_a], keep_max=10)
    assert len(q) == 1 and q.admit(b"a", 4, cfg, None)[1] == REFUSED_DUPLICATE


def test_window_verdicts() -> None:
    assert window_verdict(10, 10, 8) is None
    assert window_verdict(18, 10, 8) == BUFFER
    assert window_verdict(19, 10, 8) == "beyond-window"
    p = Prepare(1, 3, b"d" * 32)

    def verdict(p: Prepare, sender: str) -> str | None:
        return prepare_verdict(
            p, sender, view=1, view_active=True, primary="r1", floor=2, high=10, window=8
        )

    assert verdict(p, "r2") is None
    assert verdict(p, "r1") == "prepare-from-primary"
    assert verdict(Prepare(2, 3, p.digest), "r2") == BUFFER
    assert verdict(Prepare(1, 2, p.digest), "r2") == IGNORE
    old = Commit(0, 2, p.digest)
    kept = commit_verdict(old, last_executed=1, stable_seq=2, in_log=True, high=10, window=8)
    gone = commit_verdict(old, last_executed=1, stable_seq=2, in_log=False, high=10, window=8)
    assert kept is None and gone == IGNORE


def test_checkpoint_votes_match_and_evict_a_senders_oldest() -> None:
    votes = CheckpointVotes()
    c = Checkpoint(4, b"b" * 32, b"s" * 32)
    assert votes.add(_signed(c, "r1"), quota=2) == [("r1", _signed(c, "r1").signature)]
    assert votes.add(_signed(c, "r1"), quota=2) is None
    votes.add(_signed(Checkpoint(8, c.block_digest, c.state_root), "r1"), quota=2)
    votes.add(_signed(Checkpoint(12, c.block_digest, c.state_root), "r1"), quota=2)
    assert 4 not in votes and 8 in votes and 12 in votes
    votes.discard_through(8)
    assert votes.seqs() == [12]


def test_collect_log_keeps_unexecuted_bodies_near_the_checkpoint() -> None:
    slots = {s: Slot(s, block=Block(s, 1, (b"x%d" % s,))) for s in (1, 2, 3, 4, 5)}
    discard, keep = collect_log(slots, low=4, last_executed=2, window=3)
    assert discard == [1, 2]
    assert keep == {slots[3].block.digest, slots[4].block.digest}  # type: ignore[union-attr]


def test_catch_up_rotates_its_sources() -> None:
    assert fetch_order(("r2", "r0", "r9"), "r0", MEMBERS) == ("r2", "r1", "r3")
    cu = CatchUp()
    cu.begin(8, ("r2", "r1", "r3"))
    first, second = cu.next_fetch(3), cu.next_fetch(3)
    assert first is not None and second is not None
    assert (first.from_seq, first.to_seq, first.peers_hint[0], second.peers_hint[0]) == (
        4,
        8,
        "r2",
        "r1",
    )
    assert not cu.finished(7) and cu.finished(8) and cu.next_fetch(8) is None


def test_records_round_trip() -> None:
    block = Block(5, 1, (b"req",))
    pp = _signed(PrePrepare(2, 5, block.digest, block), "r2")
    cert = PreparedCertificate(2, 5, block.digest, pp.signature, (("r1", b"s"), ("r3", b"t")))
    stable = GENESIS_CHECKPOINT
    records = dict(
        [
            view_record(2, False),
            stable_record(stable),
            pre_prepare_record(5, True, pp),
            prepared_record(cert, block),
        ]
    )
    loaded = load_records(PersistedState(records))
    assert (loaded.view, loaded.view_active, loaded.stable) == (2, False, stable)
    assert loaded.pre_prepares == [(5, True, pp)]
    assert loaded.prepared == [(cert, block)]
    assert loaded.new_view is None


def _view_change(
    sender: str, view: int, prepared: tuple[PreparedCertificate, ...] = ()
) -> SignedMessage:
    return _signed(ViewChange(view, GENESIS_CHECKPOINT, prepared), sender)


def test_view_change_functions() -> None:
    cfg = ReplicaConfig(MEMBERS)
    members = frozenset(MEMBERS)
    verify = KeyedVerifier(MEMBERS).verify
    known = {m: _view_change(m, 1) for m in ("r0", "r1", "r2", "r3")}
    assert view_to_join([known["r0"], known["r2"]], 0, cfg.weak_quorum) == 1
    assert view_to_join([known["r0"]], 0, cfg.weak_quorum) is None
    chosen = choose_view_changes(known, MEMBERS, "r1", 1, cfg.quorum)
    assert [m.sender for m in chosen] == ["r1", "r0", "r2"]
    # Nothing prepared: O is empty, and a NEW-VIEW adding a pre-prepare is rejected.
    nv = NewView(1, tuple(chosen), ())
    validated = validate_new_view(nv, cfg, members, {}, verify)
    assert validated is not None and validated[0] == [] and validated[1] == GENESIS_CHECKPOINT
    extra = _signed(PrePrepare(1, 1, null_block(1).digest), "r1")
    assert validate_new_view(NewView(1, tuple(chosen), (extra,)), cfg, members, {}, verify) is None
    assert validate_new_view(NewView(1, tuple(chosen[:2]), ()), cfg, members, {}, verify) is None
    # A prepared digest whose body is unknown is missing, with its signers as sources.
    block = Block(1, 1, (b"r",))
    p = PreparedCertificate(0, 1, block.digest, b"", (("r1", b""), ("r2", b"")))
    vc = ViewChange(1, GENESIS_CHECKPOINT, (p,))
    assert missing_bodies([(1, block.digest)], [vc], 0, {}, cfg) == [
        (1, block.digest, ("r0", "r1", "r2"))
    ]
    assert missing_bodies([(1, block.digest)], [vc], 0, {block.digest: block}, cfg) == []
