"""The phase clock: each phase measured between this node's own steps, whole path per tx."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from ibledger.consensus import request_id
from ibledger.node.crypto import SM2_SM3, get_suite
from ibledger.node.phases import PHASES, PhaseClock


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _sample(registry: CollectorRegistry, name: str, suffix: str) -> float:
    value = registry.get_sample_value(name + suffix)
    assert value is not None, name
    return value


def test_each_phase_is_the_time_between_its_steps() -> None:
    registry = CollectorRegistry()
    clock = FakeClock()
    phases = PhaseClock(registry, clock)
    envelopes = [b"tx-1", b"tx-2", b"tx-3"]
    phases.admitted(envelopes)
    steps = {"proposed": 1.0, "prepared": 3.0, "committed": 6.0, "executed": 10.0}
    clock.now = steps["proposed"]
    phases.proposed(7)
    clock.now = steps["prepared"]
    phases.prepared(7)
    clock.now = steps["committed"]
    phases.committed(7, [request_id(e) for e in envelopes])
    clock.now = steps["executed"]
    executed_at = phases.executed(7)
    clock.now = 15.0
    phases.notified(7, executed_at)

    expected = dict(zip(PHASES, (1.0, 2.0, 3.0, 4.0, 5.0), strict=True))
    for name, seconds in expected.items():
        metric = f"ibledger_phase_{name}_seconds"
        count = 3.0 if name == "admitted_proposed" else 1.0
        assert _sample(registry, metric, "_count") == count
        assert _sample(registry, metric, "_sum") == seconds * count
    assert _sample(registry, "ibledger_commit_latency_seconds", "_count") == 3.0
    assert _sample(registry, "ibledger_commit_latency_seconds", "_sum") == 45.0


def test_a_block_committed_without_local_votes_counts_only_what_was_seen() -> None:
    registry = CollectorRegistry()
    clock = FakeClock()
    phases = PhaseClock(registry, clock)
    phases.admitted([b"tx"])
    clock.now = 2.0
    # Fetched by state transfer: no proposal or vote of ours, so no admitted/proposed figure.
    phases.committed(9, [request_id(b"tx")])
    clock.now = 3.0
    phases.notified(9, phases.executed(9))
    assert _sample(registry, "ibledger_phase_admitted_proposed_seconds", "_count") == 0.0
    assert _sample(registry, "ibledger_phase_proposed_prepared_seconds", "_count") == 0.0
    assert _sample(registry, "ibledger_commit_latency_seconds", "_sum") == 3.0


def test_admissions_are_matched_by_the_chain_hash() -> None:
    # On an sm2-sm3 chain blocks name their requests by SM3: an admission timed under SHA-256
    # was never matched, and the admitted and whole-path figures stayed empty.
    registry = CollectorRegistry()
    clock = FakeClock()
    sm3 = get_suite(SM2_SM3).hash
    phases = PhaseClock(registry, clock, hash_fn=sm3)
    phases.admitted([b"tx"])
    clock.now = 1.0
    phases.proposed(4)
    clock.now = 2.0
    phases.committed(4, [request_id(b"tx", sm3)])
    phases.notified(4, phases.executed(4))
    assert _sample(registry, "ibledger_phase_admitted_proposed_seconds", "_count") == 1.0
    assert _sample(registry, "ibledger_commit_latency_seconds", "_sum") == 2.0
