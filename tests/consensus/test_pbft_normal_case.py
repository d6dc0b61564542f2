"""Normal-case operation: batching, pre-prepare validation, prepared/committed predicates,
in-order execution, pipelining, persist-before-send, request dedupe, n = 1 and n != 3f+1.

Section numbers refer to Castro and Liskov, "Practical Byzantine Fault Tolerance", OSDI'99.
"""

from __future__ import annotations

import itertools

import pytest
from pbft_harness import EPOCH_MS, Harness, req, signed_by

from ibledger.consensus import (
    Block,
    Broadcast,
    Commit,
    Persist,
    Prepare,
    PrePrepare,
    RequestForward,
    Send,
    SignedMessage,
)
from ibledger.consensus.state import PREFIX_PRE_PREPARE, PREFIX_PREPARED, seq_key


def test_primary_cuts_a_block_when_batch_is_full() -> None:
    """Section 4.2 with batching (section 5.1): the primary multicasts a pre-prepare as soon as
    batch_size_max requests are pending."""
    h = Harness(batch_size_max=3, batch_timeout_ticks=100)
    for i in range(3):
        h.submit("r0", req(i))
    pps = [e for e in h.effects_of("r0", Broadcast) if isinstance(e.message.message, PrePrepare)]
    assert len(pps) == 1
    assert pps[0].message.message.block is not None
    assert len(pps[0].message.message.block.requests) == 3


def test_primary_cuts_a_partial_block_after_batch_timeout() -> None:
    """Section 5.1: a partial batch is proposed once the oldest request waited the timeout."""
    h = Harness(batch_size_max=10, batch_timeout_ticks=3)
    h.submit("r0", req(1))
    h.tick(2)
    assert h.heights()["r0"] == 0
    h.tick(3)
    assert all(height == 1 for height in h.heights().values())


def _pre_prepares(h: Harness) -> list[PrePrepare]:
    return [
        e.message.message
        for e in h.effects_of("r0", Broadcast)
        if isinstance(e.message.message, PrePrepare)
    ]


def test_an_idle_pipeline_proposes_at_once_and_load_fills_the_next_block() -> None:
    """With eager_blocks = 1 the primary proposes a lone request without waiting for the batch
    timeout; requests arriving while that block is in flight wait for it to execute and then
    go together in the next block (batching from load, not from a timer)."""
    h = Harness(batch_size_max=10, batch_timeout_ticks=100, eager_blocks=1)
    h.submit("r0", req(1))
    assert [len(pp.block.requests) for pp in _pre_prepares(h) if pp.block] == [1]
    for i in range(2, 5):
        h.submit("r0", req(i))  # block 1 is in flight: these wait
    assert len(_pre_prepares(h)) == 1
    h.tick(1)  # block 1 commits and executes everywhere; the pipeline has room again
    assert h.heights()["r0"] >= 1
    assert [len(pp.block.requests) for pp in _pre_prepares(h) if pp.block] == [1, 3]
    h.tick(1)
    assert all(height == 2 for height in h.heights().values())


def test_a_relayed_batch_is_proposed_together_not_its_first_request_alone() -> None:
    h = Harness(batch_size_max=10, batch_timeout_ticks=100, eager_blocks=1)
    h.handle("r0", h.replica("r0").submit_relayed([req(i) for i in range(5)], h.now_ms))
    assert [len(pp.block.requests) for pp in _pre_prepares(h) if pp.block] == [5]
    h.handle("r1", h.replica("r1").submit_relayed([req(9)], h.now_ms))  # a backup: no proposal
    assert not [
        e for e in h.effects_of("r1", Broadcast) if isinstance(e.message.message, PrePrepare)
    ]


def test_without_eager_blocks_a_lone_request_waits_for_the_timeout() -> None:
    h = Harness(batch_size_max=10, batch_timeout_ticks=3, eager_blocks=0)
    h.submit("r0", req(1))
    assert _pre_prepares(h) == []


def test_request_executes_on_every_replica_with_commit_certificate() -> None:
    """Section 4.2: pre-prepare, prepare, commit; execution once committed-local."""
    h = Harness()
    h.submit("r0", req(1))
    h.tick(3)
    for m in h.members:
        executed = h.nodes[m].executed
        assert len(executed) == 1
        cert = executed[0].certificate
        assert cert.digest == executed[0].digest
        assert len({rid for rid, _ in cert.signatures}) >= h.config.quorum


def test_backup_forwards_requests_to_primary() -> None:
    """Section 4.1: a replica that receives a request while not primary relays it."""
    h = Harness()
    effects = h.submit("r2", req(7))
    sends = [e for e in effects if isinstance(e, Send)]
    assert sends and sends[0].to == "r0"
    assert isinstance(sends[0].message.message, RequestForward)
    h.tick(3)
    assert all(height == 1 for height in h.heights().values())


def test_backup_that_relayed_a_request_itself_does_not_forward_it_again() -> None:
    """Section 4.1: when the node has already sent the request to every replica, the backup
    only queues it; should the primary never receive it, retransmission after
    `retransmit_ticks` still gets it to everyone."""
    h = Harness()
    effects = h.submit("r2", req(8), forward=False)
    assert not [e for e in effects if isinstance(e, Send | Broadcast)]
    assert h.heights() == {m: 0 for m in h.members}
    h.tick(h.config.retransmit_ticks + 3)
    assert all(height == 1 for height in h.heights().values())


def test_duplicate_requests_are_deduplicated() -> None:
    """Section 4.1 exactly-once: a pending or executed request is not queued again."""
    h = Harness()
    h.submit("r0", req(1))
    h.submit("r0", req(1))
    h.tick(3)
    assert [len(b.requests) for b in h.nodes["r1"].executed] == [1]
    h.submit("r0", req(1))
    h.tick(3)
    assert h.heights()["r1"] == 1
    assert h.replica("r0").counters["request-duplicate"] == 2


def test_pipelining_within_watermarks_and_in_order_execution() -> None:
    """Sections 4.2-4.3: several sequence numbers are in flight at once, never above h + L,
    and execution is strictly in sequence order even when a later one commits first."""
    h = Harness(batch_size_max=1, batch_timeout_ticks=0, watermark_window=8, checkpoint_interval=4)
    held: list[tuple[str, str, SignedMessage]] = []

    def hold_seq1(src: str, dst: str, sm: SignedMessage) -> bool:
        m = sm.message
        if isinstance(m, Commit) and m.seq == 1 and dst == "r3":
            held.append((src, dst, sm))
            return False
        return True

    h.filter = hold_seq1
    h.tick(1)
    for i in range(8):
        h.submit("r0", req(i))
    pps = [
        e.message.message
        for e in h.effects_of("r0", Broadcast)
        if isinstance(e.message.message, PrePrepare)
    ]
    assert [pp.seq for pp in pps] == list(range(1, 9))  # window h=0, L=8
    h.deliver()
    assert h.heights()["r3"] == 0  # seq 2..8 committed but 1 is missing
    assert h.replica("r3").is_committed_local(2)
    h.filter = None
    h.queue.extend(held)
    h.deliver()
    assert [b.seq for b in h.nodes["r3"].executed] == list(range(1, 9))
    for i in range(8, 12):
        h.submit("r0", req(i))
    h.tick(5)
    assert [b.seq for b in h.nodes["r3"].executed] == list(range(1, 13))


def test_prepared_needs_quorum_minus_one_matching_prepares() -> None:
    """Section 4.2: prepared(m, v, n, i) needs the pre-prepare and 2f matching prepares from
    distinct backups; only then is COMMIT sent."""
    h = Harness()
    h.filter = lambda src, dst, sm: not (isinstance(sm.message, Prepare) and src == "r2")
    h.submit("r0", req(1))
    h.tick(1)
    # r1 has its own prepare plus r3's: 2 = 2f, so it is prepared.
    assert h.replica("r1").is_prepared(1)
    h2 = Harness()
    h2.filter = lambda src, dst, sm: not (isinstance(sm.message, Prepare) and src in ("r2", "r3"))
    h2.submit("r0", req(1))
    h2.tick(1, deliver=True)
    assert not h2.replica("r1").is_prepared(1)
    assert not any(isinstance(e.message.message, Commit) for e in h2.effects_of("r1", Broadcast))


def test_persist_before_every_vote() -> None:
    """Section 4.2 and TOCS section 6: the record backing a PREPARE or COMMIT is in a Persist
    effect earlier in the same list than the vote."""
    h = Harness()
    h.submit("r0", req(1))
    h.tick(3)
    for m in h.members:
        effects = h.nodes[m].effects
        persisted: set[bytes] = set()
        for e in effects:
            if isinstance(e, Persist):
                persisted.update(k for k, v in e.updates if v is not None)
            if isinstance(e, Broadcast):
                msg = e.message.message
                if isinstance(msg, Prepare | PrePrepare):
                    assert seq_key(PREFIX_PRE_PREPARE, msg.seq) in persisted
                if isinstance(msg, Commit):
                    assert seq_key(PREFIX_PREPARED, msg.seq) in persisted


def _pre_prepare(h: Harness, block: Block, view: int = 0, sender: str = "r0") -> SignedMessage:
    return signed_by(sender, PrePrepare(view, block.seq, block.digest, block))


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda ts: (Block(1, ts, (req(1),)), "r2"), "pre-prepare-not-primary"),
        (lambda ts: (Block(1, ts, (req(1), req(1))), "r0"), "duplicate-request"),
        (lambda ts: (Block(1, ts, ()), "r0"), "empty-block"),
        (lambda ts: (Block(1, ts + 3_600_000, (req(1),)), "r0"), "pre-prepare-timestamp"),
        (lambda ts: (Block(1, 0, (req(1),)), "r0"), "pre-prepare-timestamp"),
        (lambda ts: (Block(1, ts, tuple(req(i) for i in range(5))), "r0"), "batch-too-large"),
    ],
)
def test_backup_rejects_invalid_pre_prepare(make: object, reason: str) -> None:
    """Section 4.2 acceptance rules (plus the agreed-time and batch rules): a backup only
    accepts a well-formed pre-prepare from the primary of its view; it votes for nothing else."""
    h = Harness()
    h.tick(1, deliver=False)
    block, sender = make(h.now_ms)  # type: ignore[operator]
    h.handle("r1", h.replica("r1").step(_pre_prepare(h, block, sender=sender)))
    assert h.replica("r1").counters["drop-" + reason] == 1
    assert not any(
        isinstance(e, Broadcast) and isinstance(e.message.message, Prepare)
        for e in h.nodes["r1"].effects
    )


def test_backup_rejects_body_that_does_not_match_digest() -> None:
    """Section 4.2: the pre-prepare's digest must be the digest of the request
    (docs/testing.md B3)."""
    h = Harness()
    h.tick(1, deliver=False)
    good = Block(1, h.now_ms, (req(1),))
    other = Block(1, h.now_ms, (req(2),))
    pp = signed_by("r0", PrePrepare(0, 1, good.digest, other))
    h.handle("r1", h.replica("r1").step(pp))
    assert h.replica("r1").counters["drop-digest-mismatch"] == 1


def test_pre_prepare_outside_watermarks_is_not_accepted() -> None:
    """Section 4.2: sequence numbers must lie between the low and high watermarks; messages
    just beyond the window are buffered (bounded), far beyond are dropped (docs/testing.md B7)."""
    h = Harness(watermark_window=8, checkpoint_interval=4)
    h.tick(1, deliver=False)
    near = Block(9, h.now_ms, (req(1),))
    far = Block(40, h.now_ms, (req(2),))
    r1 = h.replica("r1")
    h.handle("r1", r1.step(_pre_prepare(h, near)))
    h.handle("r1", r1.step(_pre_prepare(h, far)))
    assert r1.counters["drop-beyond-window"] == 1
    assert len(r1._future) == 1
    assert not any(isinstance(e, Broadcast) for e in r1.step(_pre_prepare(h, near)))


def test_agreed_timestamps_strictly_increase() -> None:
    """Agreed block time (docs/design.md section 4): proposed by the primary, above the parent's."""
    h = Harness(batch_size_max=1, batch_timeout_ticks=0)
    for i in range(6):
        h.submit("r0", req(i))  # all within the same millisecond
    h.tick(3)
    times = [b.timestamp_ms for b in h.nodes["r2"].executed]
    assert len(times) == 6
    assert all(a < b for a, b in itertools.pairwise(times))
    assert times[0] >= EPOCH_MS


def test_parent_digest_links_blocks() -> None:
    """Every executed block names the previous executed block's digest."""
    h = Harness(batch_size_max=1, batch_timeout_ticks=0)
    for i in range(3):
        h.submit("r0", req(i))
    h.tick(3)
    blocks = h.nodes["r3"].executed
    assert blocks[0].parent_digest == bytes(32)
    assert [b.parent_digest for b in blocks[1:]] == [b.digest for b in blocks[:-1]]


def test_single_node_dev_chain() -> None:
    """n = 1: f = 0 and the quorum is 1; the replica orders and checkpoints alone."""
    h = Harness(n=1, batch_size_max=2, batch_timeout_ticks=5)
    for i in range(10):
        h.submit("r0", req(i))
    h.tick(3)
    assert h.heights()["r0"] == 5
    assert h.replica("r0").stable_checkpoint.seq == 4


@pytest.mark.parametrize("n", [2, 3, 5, 6, 7])
def test_other_cluster_sizes(n: int) -> None:
    """n != 3f+1: quorums from config.quorum_size keep two quorums intersecting in a correct
    replica; the cluster still orders requests."""
    h = Harness(n=n)
    for i in range(5):
        h.submit("r1", req(i))
    h.tick(5)
    assert set(h.heights().values()) == {2}


def test_request_validator_rejects_block() -> None:
    """Section 4.2: backups check requests inside a pre-prepare (here through the injected
    validator the node supplies)."""
    h = Harness()
    r1 = h.replica("r1")
    object.__setattr__(r1, "_request_validator", lambda r: not r.startswith(b"bad"))
    h.tick(1, deliver=False)
    block = Block(1, h.now_ms, (b"bad-request",))
    h.handle("r1", r1.step(_pre_prepare(h, block)))
    assert r1.counters["drop-invalid-request"] == 1
