"""Two duties the node used to do beside the core, now decided inside it so the simulator runs
them: handing out stable checkpoint certificates to store (`StableCheckpoint`), and catching up
when f+1 peers' STATUS messages claim executed heights above ours (the lag rule)."""

from __future__ import annotations

from pbft_harness import Harness, KeyedSigner, req

from ibledger.consensus import (
    Execute,
    ExecutedTip,
    FetchBlocks,
    Replica,
    SignedMessage,
    StableCheckpoint,
    Status,
    signing_bytes,
)


def _status(sender: str, last_executed: int) -> SignedMessage:
    message = Status(0, True, last_executed, 0)
    return SignedMessage(message, sender, KeyedSigner(sender).sign(signing_bytes(message, sender)))


def _loaded(requests: int, ticks_between: int, at_least: int) -> Harness:
    """Four replicas that committed ``requests`` requests submitted ``ticks_between`` apart."""
    h = Harness()
    for i in range(requests):
        h.submit("r0", req(i))
        h.tick(ticks_between)
    h.tick(30)
    assert min(h.heights().values()) >= at_least
    return h


def test_each_stable_checkpoint_is_handed_out_once_after_its_block_executed() -> None:
    h = _loaded(12, 2, at_least=8)
    for m in h.members:
        effects = h.nodes[m].effects
        stables = [e for e in effects if isinstance(e, StableCheckpoint)]
        seqs = [e.certificate.seq for e in stables]
        assert seqs == sorted(set(seqs)) and seqs, m
        assert seqs[-1] == h.replica(m).stable_checkpoint.seq
        assert stables[-1].certificate == h.replica(m).stable_checkpoint
        for stable in stables:
            executed_before = {
                e.block.seq for e in effects[: effects.index(stable)] if isinstance(e, Execute)
            }
            assert stable.certificate.seq in executed_before, (m, stable.certificate.seq)


def test_a_restarted_replica_hands_out_its_restored_stable_checkpoint_again() -> None:
    # Storing the certificate is unsynced, so it may not have outlived the crash.
    h = _loaded(8, 2, at_least=4)
    node = h.nodes["r3"]
    stable = node.replica.stable_checkpoint
    assert stable.seq >= 4
    last = node.executed[-1]
    tip = ExecutedTip(last.seq, last.digest, last.block.timestamp_ms, node.root)
    restarted = Replica(
        h.config,
        "r3",
        KeyedSigner("r3"),
        h.verifier,
        persisted=node.store.copy(),
        last_executed=tip,
    )
    effects = restarted.tick(h.now_ms + 10)
    assert [e.certificate for e in effects if isinstance(e, StableCheckpoint)] == [stable]
    assert not [e for e in restarted.tick(h.now_ms + 20) if isinstance(e, StableCheckpoint)]


def test_f_plus_1_status_claims_above_us_start_a_fetch_once_the_lag_timer_expires() -> None:
    h = Harness()
    r0 = h.replica("r0")
    h.handle("r0", r0.step(_status("r2", 7)))
    h.handle("r0", r0.step(_status("r1", 5)))
    h.tick(h.config.fetch_retry_ticks - 1, deliver=False, only=("r0",))
    assert h.fetches == []  # normal progress may still close the gap
    h.tick(2, deliver=False, only=("r0",))
    assert len(h.fetches) == 1
    fetcher, fetch = h.fetches[0]
    # The f+1-th highest claim: at least one correct replica executed that far.
    assert (fetcher, fetch.from_seq, fetch.to_seq) == ("r0", 1, 5)
    assert set(fetch.peers_hint[:2]) == {"r1", "r2"}
    assert r0.catching_up


def test_f_status_claims_never_start_a_fetch() -> None:
    h = Harness()
    r0 = h.replica("r0")
    h.handle("r0", r0.step(_status("r3", 1_000_000)))  # one liar (f = 1) claims any height
    h.handle("r0", r0.step(_status("r1", 0)))
    h.tick(4 * h.config.fetch_retry_ticks, deliver=False, only=("r0",))
    assert h.fetches == []
    assert not r0.catching_up


def test_a_replica_that_keeps_executing_does_not_fetch_on_claims() -> None:
    h = _loaded(40, 1, at_least=10)
    fetches: list[FetchBlocks] = [f for _, f in h.fetches]
    assert fetches == []
