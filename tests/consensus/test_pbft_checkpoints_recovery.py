"""Checkpoints, stable checkpoints, garbage collection and watermarks; state transfer; recovery
from persisted state alone; retransmission of lost messages.

Section numbers refer to Castro and Liskov, OSDI'99 (4.3 garbage collection) and TOCS 2002
(section 6 recovery; 5.3 state transfer).
"""

from __future__ import annotations

from dataclasses import replace

from pbft_harness import Harness, KeyedSigner, req, signed_by

from ibledger.consensus import (
    Block,
    Broadcast,
    Checkpoint,
    Commit,
    CommitCertificate,
    CommittedBlock,
    Evidence,
    ExecutedTip,
    FetchBlocks,
    Prepare,
    PrePrepare,
    Replica,
    SignedMessage,
    ViewChange,
)


def _fill(h: Harness, count: int, at: str = "r0") -> None:
    for i in range(count):
        h.submit(at, req(i))
    h.tick(4)


def test_checkpoint_carries_executor_state_root_and_becomes_stable() -> None:
    """Section 4.3: after executing a multiple of K the replica multicasts CHECKPOINT with the
    state digest reported by the executor; 2f+1 matching ones make it stable."""
    h = Harness(batch_size_max=1, batch_timeout_ticks=0, checkpoint_interval=4)
    h.tick(1)
    _fill(h, 5)
    checkpoints = [
        e.message.message
        for e in h.effects_of("r1", Broadcast)
        if isinstance(e.message.message, Checkpoint)
    ]
    assert [c.seq for c in checkpoints] == [4]
    assert checkpoints[0].block_digest == h.nodes["r1"].executed[3].digest
    for m in h.members:
        stable = h.replica(m).stable_checkpoint
        assert stable.seq == 4 and stable.state_root == checkpoints[0].state_root
        assert len(stable.signatures) >= h.config.quorum


def test_stable_checkpoint_garbage_collects_and_moves_watermarks() -> None:
    """Section 4.3: the log at or below the stable checkpoint is discarded and the window
    becomes (h, h + L]."""
    h = Harness(batch_size_max=1, batch_timeout_ticks=0, checkpoint_interval=4, watermark_window=8)
    h.tick(1)
    _fill(h, 9)
    r2 = h.replica("r2")
    assert r2.watermark_low == 8 and r2.watermark_high == 16
    assert all(seq > 8 for seq in r2._log.slots)
    assert all(seq > 8 for seq in r2._log.prepared)
    keys = h.nodes["r2"].store.records
    assert all(int.from_bytes(k[2:], "big") > 8 for k in keys if k[:2] in (b"pp", b"pc"))


def test_primary_stalls_at_high_watermark_until_checkpoint() -> None:
    """Section 4.2/4.3: the primary never assigns a sequence number above h + L; the window
    moves only with a stable checkpoint (no executor report, no progress past the window)."""
    h = Harness(batch_size_max=1, batch_timeout_ticks=0, checkpoint_interval=4, watermark_window=8)
    h.tick(1)
    # Executors of r1..r3 never report roots: no checkpoint can become stable.
    for m in ("r1", "r2", "r3"):
        h.nodes[m].replica.on_executed = lambda seq, root: []  # type: ignore[method-assign]
    _fill(h, 12)
    assert h.heights()["r1"] == 8
    assert h.replica("r0")._log.next_seq == 9


def test_divergent_state_root_is_reported() -> None:
    """Section 4.3: a replica whose own checkpoint digest disagrees with the stable one has a
    divergent state; it reports it instead of voting on."""
    h = Harness(batch_size_max=1, batch_timeout_ticks=0, checkpoint_interval=4)
    h.tick(1)
    r3 = h.replica("r3")
    real = r3.on_executed
    r3.on_executed = lambda seq, root: real(seq, b"\xff" * 32)  # type: ignore[method-assign]
    _fill(h, 5)
    assert any(e.kind == "state-root-divergence" for e in h.evidence("r3"))


def test_lost_checkpoint_votes_are_retransmitted() -> None:
    """Section 4.3 with retransmission (Castro's thesis, status messages): the window moves only
    with a stable checkpoint, so CHECKPOINT votes lost on the network (here: all of them, as in a
    partition during the checkpoint round) are sent again in answer to STATUS until the peer has
    a stable checkpoint at or above them. Otherwise every replica sits at h + L for good, and view
    changes cannot help: each new view starts from the same stable checkpoint."""
    h = Harness(
        batch_size_max=1,
        batch_timeout_ticks=0,
        checkpoint_interval=4,
        watermark_window=8,
        view_change_timeout_ticks=60,
        view_change_timeout_max_ticks=480,
    )
    h.tick(1)
    h.filter = lambda src, dst, sm: not isinstance(sm.message, Checkpoint)
    _fill(h, 12)
    assert h.heights() == dict.fromkeys(h.members, 8)
    assert all(h.replica(m).stable_checkpoint.seq == 0 for m in h.members)
    h.tick(10)
    assert h.heights() == dict.fromkeys(h.members, 8)  # stalled at the high watermark
    h.filter = None
    h.tick(15)
    assert all(h.replica(m).stable_checkpoint.seq >= 8 for m in h.members)
    assert h.heights() == dict.fromkeys(h.members, 12)
    assert all(h.replica(m).view == 0 for m in h.members)


def test_restarted_replica_votes_for_its_executed_checkpoint() -> None:
    """TOCS section 6 with section 4.3: a replica that executed a checkpoint block and then
    restarted (its CHECKPOINT lost with the process) signs it again from the executor's tip
    (sequence number, block digest, state root). With one replica down for good, the restarted
    replica's vote is the third of the 2f+1 that make the window move."""
    h = Harness(batch_size_max=1, batch_timeout_ticks=0, checkpoint_interval=2, watermark_window=4)
    h.tick(1)
    h.crash("r2")
    # r3's CHECKPOINT exchange is lost both ways, then r3 restarts: it forgot its own vote.
    h.filter = lambda src, dst, sm: not (isinstance(sm.message, Checkpoint) and "r3" in (src, dst))
    _fill(h, 6)
    assert {m: h.heights()[m] for m in ("r0", "r1", "r3")} == dict.fromkeys(("r0", "r1", "r3"), 4)
    assert all(h.replica(m).stable_checkpoint.seq == 0 for m in ("r0", "r1", "r3"))
    h.filter = None
    node = h.nodes["r3"]
    last = node.executed[-1]
    tip = ExecutedTip(last.seq, last.digest, last.timestamp_ms, node.root)
    node.replica = Replica(h.config, "r3", KeyedSigner("r3"), h.verifier, node.store.copy(), tip)
    h.tick(15)
    for m in ("r0", "r1", "r3"):
        assert h.replica(m).stable_checkpoint.seq >= 4
        assert h.heights()[m] == 6


def test_lagging_replica_fetches_blocks_and_does_not_vote_meanwhile() -> None:
    """TOCS 5.3 / docs/design.md section 4: a replica that sees a stable checkpoint beyond its last
    executed block emits FetchBlocks, accepts blocks only with valid commit certificates,
    and sends no PREPARE/COMMIT until it has caught up."""
    h = Harness(batch_size_max=1, batch_timeout_ticks=0, checkpoint_interval=4, watermark_window=8)
    h.tick(1)
    h.crash("r3")
    _fill(h, 10)
    h.restart("r3")
    h.tick(2)
    fetches = [f for m, f in h.fetches if m == "r3"]
    assert fetches and fetches[0].from_seq == 1 and fetches[0].to_seq == 8
    r3 = h.replica("r3")
    assert r3.catching_up
    # While catching up, new proposals get no votes from r3.
    before = len(h.nodes["r3"].effects)
    _fill(h, 1)
    assert not any(
        isinstance(e, Broadcast) and isinstance(e.message.message, Prepare | Commit)
        for e in h.nodes["r3"].effects[before:]
    )
    source = h.nodes["r1"].executed
    # A forged certificate (one signer repeated) and a tampered body are rejected.
    first = source[0]
    dup = replace(
        first,
        certificate=replace(first.certificate, signatures=(first.certificate.signatures[0],) * 3),
    )
    tampered = replace(first, block=Block(1, first.block.timestamp_ms, (b"evil",)))
    h.handle("r3", r3.on_state_transfer([dup]))
    h.handle("r3", r3.on_state_transfer([tampered]))
    assert r3.counters["state-transfer-invalid"] == 2
    assert h.heights()["r3"] == 0
    h.handle("r3", r3.on_state_transfer(source[:8]))
    assert h.heights()["r3"] >= 8
    h.tick(15)
    assert not r3.catching_up
    assert [b.digest for b in h.nodes["r3"].executed] == [b.digest for b in source][
        : h.heights()["r3"]
    ]


def test_restart_never_signs_a_different_digest() -> None:
    """TOCS section 6: a replica restarted from its persisted state alone keeps its accepted
    pre-prepare for (v, n) and refuses a conflicting one from the same view."""
    h = Harness()
    h.tick(1)
    a = Block(1, h.now_ms, (req(1),))
    b = Block(1, h.now_ms, (req(2),))
    r1 = h.replica("r1")
    h.handle("r1", r1.step(signed_by("r0", PrePrepare(0, 1, a.digest, a))))
    h.restart("r1")
    r1 = h.replica("r1")
    out = h.handle("r1", r1.step(signed_by("r0", PrePrepare(0, 1, b.digest, b))))
    votes = [
        e.message.message
        for e in out
        if isinstance(e, Broadcast) and isinstance(e.message.message, Prepare)
    ]
    assert not votes
    assert any(isinstance(e, Evidence) for e in out)  # two signed digests: equivocation proof


def test_restart_in_view_change_keeps_the_view_and_prepared_certificates() -> None:
    """TOCS section 6 and OSDI 4.4: a replica that sent VIEW-CHANGE(v+1) restarts still in the
    view change (it never returns to view v) and re-sends the same P set."""
    h = Harness()
    h.tick(1)
    h.filter = lambda src, dst, sm: not isinstance(sm.message, Commit)
    h.submit("r0", req(1))
    h.tick(2)
    h.filter = lambda src, dst, sm: False
    h.tick(12)
    r2 = h.replica("r2")
    assert r2.view == 1 and not r2.view_active
    h.restart("r2")
    h.tick(1, deliver=False)
    r2 = h.replica("r2")
    assert r2.view == 1 and not r2.view_active
    vcs = [
        e.message.message
        for e in h.nodes["r2"].effects
        if isinstance(e, Broadcast) and isinstance(e.message.message, ViewChange)
    ]
    assert vcs[-1].view == 1 and [p.seq for p in vcs[-1].prepared] == [1]


def test_whole_cluster_restart_from_persisted_state() -> None:
    """TOCS section 6: all replicas restart from persisted state and ledger tip only, and keep
    ordering requests with the same chain."""
    h = Harness(batch_size_max=1, batch_timeout_ticks=0)
    h.tick(1)
    _fill(h, 3)
    before = {m: [b.digest for b in n.executed] for m, n in h.nodes.items()}
    for m in h.members:
        h.restart(m)
    # Ledger tips come back from the executor; the harness keeps executed blocks in memory.
    for m in h.members:
        node = h.nodes[m]
        from ibledger.consensus import ExecutedTip, Replica

        last = node.executed[-1]
        tip = ExecutedTip(last.seq, last.digest, last.timestamp_ms, node.root)
        node.replica = Replica(h.config, m, KeyedSigner(m), h.verifier, node.store.copy(), tip)
    h.tick(1)
    for i in range(3, 6):
        h.submit("r0", req(i))
    h.tick(6)
    for m in h.members:
        digests = [b.digest for b in h.nodes[m].executed]
        assert digests[:3] == before[m]
        assert len(digests) == 6


def test_lost_messages_are_retransmitted() -> None:
    """Retransmission (Castro's thesis, status messages): with every first copy of a PREPARE and
    COMMIT to r3 lost, periodic STATUS lets peers resend what r3 misses and it executes."""
    h = Harness()
    h.tick(1)
    seen: set[tuple[str, int, type]] = set()

    def lose_first_copy(src: str, dst: str, sm: SignedMessage) -> bool:
        if dst != "r3" or not isinstance(sm.message, Prepare | Commit):
            return True
        key = (src, sm.message.seq, type(sm.message))
        if key in seen:
            return True
        seen.add(key)
        return False

    h.filter = lose_first_copy
    h.submit("r0", req(1))
    h.tick(2)
    assert h.heights()["r3"] == 0
    h.tick(20)
    assert h.heights()["r3"] == 1


def test_committed_proof_lets_a_laggard_execute() -> None:
    """A replica that missed every COMMIT learns the block from a peer's commit certificate."""
    h = Harness()
    h.tick(1)
    h.filter = lambda src, dst, sm: not (dst == "r3" and isinstance(sm.message, Commit))
    h.submit("r0", req(1))
    h.tick(20)
    assert h.heights()["r3"] == 1
    assert h.nodes["r3"].executed[0].digest == h.nodes["r0"].executed[0].digest


def test_commit_certificate_with_duplicate_signers_is_rejected() -> None:
    """docs/testing.md B6: a pushed commit proof whose certificate repeats one signer is dropped."""
    h = Harness()
    h.tick(1)
    block = Block(1, h.now_ms, (req(1),))
    commit = signed_by("r1", Commit(0, 1, block.digest))
    cert = CommitCertificate(0, 1, block.digest, (("r1", commit.signature),) * 3)
    from ibledger.consensus import CommittedProof

    r3 = h.replica("r3")
    r3.step(signed_by("r1", CommittedProof(block, cert)))
    assert r3.counters["drop-invalid-commit-proof"] == 1
    assert h.heights()["r3"] == 0


def test_future_message_buffer_is_bounded() -> None:
    """docs/testing.md B7 bounded memory: messages from future views are buffered up to a per-sender
    quota; the rest are dropped and counted."""
    h = Harness(future_messages_max=8)
    h.tick(1)
    r1 = h.replica("r1")
    for i in range(20):
        block = Block(1, h.now_ms, (req(i),))
        r1.step(signed_by("r0", PrePrepare(5 + i, 1, block.digest, block)))
    assert len(r1._future) == 2  # quota = 8 // n
    assert r1.counters["drop-future-buffer-full"] == 18


def test_fetch_is_retried_with_rotated_peers() -> None:
    """State transfer keeps trying other peers until it completes (docs/testing.md B13)."""
    h = Harness(batch_size_max=1, batch_timeout_ticks=0, checkpoint_interval=4, watermark_window=8)
    h.tick(1)
    h.crash("r3")
    _fill(h, 10)
    h.restart("r3")
    h.tick(15)
    fetches = [f for m, f in h.fetches if m == "r3"]
    assert len(fetches) >= 2
    assert fetches[0].peers_hint != fetches[1].peers_hint
    assert isinstance(fetches[0], FetchBlocks)


def test_executed_blocks_carry_verifiable_certificates() -> None:
    """docs/design.md section 4: the commit certificate stored with each block verifies offline."""
    from ibledger.consensus import verify_commit_certificate

    h = Harness()
    h.tick(1)
    _fill(h, 3)
    for cb in h.nodes["r2"].executed:
        assert isinstance(cb, CommittedBlock)
        assert verify_commit_certificate(h.members, 1, cb.digest, cb.certificate, h.verifier)
