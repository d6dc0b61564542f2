"""Reproducibility: the same seed gives the same trace digest; another seed gives another."""

from __future__ import annotations

from .runner import run_seed


def test_same_seed_same_trace() -> None:
    for seed, n in ((11, 4), (12, 7)):
        first = run_seed(seed, n)
        second = run_seed(seed, n)
        assert first.trace_digest == second.trace_digest
        assert first.events == second.events
        assert first.stats == second.stats


def test_different_seeds_differ() -> None:
    assert run_seed(21, 4).trace_digest != run_seed(22, 4).trace_digest


def test_same_seed_same_trace_with_the_real_ledger() -> None:
    """The node's ledger, contracts and signed client transactions replay exactly too (one
    verifier worker, fixed client keys, nonces and expiries), storage faults included."""
    for seed, n in ((11, 4), (12, 7)):
        first = run_seed(seed, n, real_ledger=True, storage_faults=True)
        second = run_seed(seed, n, real_ledger=True, storage_faults=True)
        assert first.ok, first.report()
        assert first.trace_digest == second.trace_digest
        assert first.events == second.events
        assert first.stats == second.stats
        assert first.trace_digest != run_seed(seed, n).trace_digest
