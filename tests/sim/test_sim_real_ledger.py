"""The seeded swarm over the node's real ledger and contracts (docs/testing.md M4, "Real ledger"):
every replica executes signed transactions into its own `Ledger` over a `MemoryStore`, crashes
lose the unsynced writes, a storage write fails, and at the end every honest ledger holds the
same chain, every transaction once, and reopens from its store with full verification.

The blocks are small (a real-ledger seed costs a few tenths of a second); they check outcomes
in simulated time only, so a slow machine takes longer but sees the same runs.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from ibledger.node import storage_keys as keys
from ibledger.node.crypto import SUITE_NAMES
from ibledger.node.ledger import Ledger
from ibledger.node.store import StoreIOError
from ibledger.sim.node_cluster import NodeCluster
from ibledger.sim.node_ledger import (
    NodeLedger,
    check_ledgers,
    client_request,
    genesis_document,
)
from ibledger.sim.scenario import EPOCH_MS, make_scenario

from .runner import SimResult, run_seed

REAL_LEDGER_SEEDS = {4: range(1, 17)}
STORAGE_FAULT_SEEDS = {4: range(1, 17), 7: range(1, 4)}


def _check(results: list[SimResult]) -> None:
    failures = [r for r in results if not r.ok]
    assert not failures, "\n\n".join(r.report() for r in failures)


def _total(results: list[SimResult]) -> Counter[str]:
    total: Counter[str] = Counter()
    for r in results:
        total.update(r.stats)
    return total


def test_ci_seeds_on_the_real_ledger() -> None:
    """The swarm's own faults (network, crashes, Byzantine replicas) over the real ledger."""
    results = [
        run_seed(seed, n, real_ledger=True)
        for n, seeds in REAL_LEDGER_SEEDS.items()
        for seed in seeds
    ]
    _check(results)
    total = _total(results)
    assert total["crash"] > 0 and total["view-changed"] > 0 and total["fetch"] > 0, total


@pytest.mark.parametrize("n", sorted(STORAGE_FAULT_SEEDS))
def test_ci_seeds_with_storage_faults(n: int) -> None:
    """Power-loss crashes and one failed write per seed: a replica whose write fails stops and
    restarts from its store, and safety and the end-of-run checks still hold."""
    results = [
        run_seed(seed, n, real_ledger=True, storage_faults=True) for seed in STORAGE_FAULT_SEEDS[n]
    ]
    _check(results)
    total = _total(results)
    # Most armed failures fire (a replica that crashes first gets a fresh handle).
    assert total["write-failed"] >= len(results) // 2, total
    assert total["restart"] >= total["write-failed"], total
    if n == 4:
        assert total["unsynced-writes-lost"] > 0, total  # a checkpoint certificate lost


@pytest.mark.parametrize("suite", SUITE_NAMES)
def test_real_ledger_seeds_on_each_crypto_suite(suite: str) -> None:
    """A chain of each suite: its genesis, client keys and transaction ids, and the replicas
    signing and hashing with that suite (one seed: SM2 signing is the slow part)."""
    _check([run_seed(2, 4, real_ledger=True, storage_faults=True, suite=suite)])


@pytest.mark.parametrize(("seed", "n", "storage_faults"), [(36, 4, False), (4, 7, True)])
def test_a_block_committed_in_two_views_gets_one_state_root(
    seed: int, n: int, storage_faults: bool
) -> None:
    """Seeds where a block prepared in view v commits at some replicas in v and at others in
    v+1. Their certificates differ in view; the block hash and state root must not (the header
    once carried the certificate's view, and these seeds found the divergence)."""
    _check([run_seed(seed, n, real_ledger=True, storage_faults=storage_faults)])


def test_a_real_ledger_run_starts_no_thread() -> None:
    before = threading.active_count()
    names: set[str] = set()
    original = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        names.add(thread.name)
        original(thread)

    threading.Thread.start = start  # type: ignore[method-assign]
    try:
        _check([run_seed(3, 4, real_ledger=True, storage_faults=True)])
    finally:
        threading.Thread.start = original  # type: ignore[method-assign]
    assert not names
    assert threading.active_count() == before


def test_the_cluster_runs_every_replica_on_its_own_node_ledger() -> None:
    cluster = NodeCluster(make_scenario(5, 4, real_ledger=True))
    cluster.run()
    assert not cluster.violations
    ledgers = cluster.node_ledgers
    assert len({id(ledger.store) for ledger in ledgers.values()}) == 4
    # After the end-of-run checks every store has been reopened and closed again.
    assert not any(ledger.is_open for ledger in ledgers.values())


def _committed_cluster() -> NodeCluster:
    """A clean real-ledger run, stopped before its end-of-run checks."""
    scenario = make_scenario(2, 4, real_ledger=True, faults=False)
    cluster = NodeCluster(scenario)
    super(NodeCluster, cluster).run()  # the cluster's run without NodeCluster's final checks
    assert not cluster.violations
    return cluster


def test_the_end_of_run_checks_fail_on_a_missing_or_unsubmitted_transaction() -> None:
    cluster = _committed_cluster()
    honest = cluster.honest
    extra = client_request("ed25519-sha256", 0, 999, EPOCH_MS)
    submitted = dict(cluster.submitted)
    submitted[b"never-executed"] = extra
    problems = check_ledgers(
        cluster.node_ledgers, honest, submitted, cluster._commit_ok, cluster._checkpoint_ok
    )
    assert any("executed 0 times" in p for p in problems), problems
    cluster = _committed_cluster()
    fewer = dict(list(cluster.submitted.items())[1:])
    problems = check_ledgers(
        cluster.node_ledgers, cluster.honest, fewer, cluster._commit_ok, cluster._checkpoint_ok
    )
    assert any("never submitted" in p for p in problems), problems


def test_the_end_of_run_checks_fail_on_a_store_that_does_not_verify() -> None:
    cluster = _committed_cluster()
    victim = cluster.node_ledgers[cluster.honest[1]]
    # A state value no block wrote: block verification passes, the derived records do not.
    victim.store.write([(keys.state_key(b"id/forged"), b"\x01")], sync=True)
    problems = check_ledgers(
        cluster.node_ledgers,
        cluster.honest,
        cluster.submitted,
        cluster._commit_ok,
        cluster._checkpoint_ok,
    )
    assert problems and all(cluster.honest[1] in p for p in problems), problems


def test_the_end_of_run_checks_fail_on_forged_commit_certificates() -> None:
    cluster = _committed_cluster()
    problems = check_ledgers(
        cluster.node_ledgers,
        cluster.honest,
        cluster.submitted,
        lambda digest, cert: False,
        cluster._checkpoint_ok,
    )
    assert len(problems) == len(cluster.honest)
    assert all("does not open" in p for p in problems), problems


def test_power_loss_drops_an_unsynced_checkpoint_and_process_exit_keeps_it() -> None:
    cluster = _committed_cluster()
    node = cluster.node_ledgers[cluster.honest[0]]
    first, second = node.height + 1, node.height + 2  # no checkpoint of the run is there
    node.ledger.store_checkpoint(first, b"certificate")
    assert node.store.unsynced_writes == 1
    node.process_exit()
    node.open()
    assert _has_checkpoint(node, first)
    node.ledger.store_checkpoint(second, b"certificate")
    node.power_loss(0)
    node.open()
    assert _has_checkpoint(node, first) and not _has_checkpoint(node, second)


def _has_checkpoint(node: NodeLedger, seq: int) -> bool:
    return node.store.get(keys.checkpoint_key(seq)) is not None


def test_a_failed_write_stops_the_replica_and_it_restarts_from_its_store() -> None:
    scenario = make_scenario(1, 4, real_ledger=True, storage_faults=True)
    cluster = NodeCluster(scenario)
    failed: list[str] = []
    heights: list[int] = []
    original = cluster._storage_failed

    def storage_failed(m: str, exc: StoreIOError) -> None:
        failed.append(m)
        heights.append(cluster.node_ledgers[m].height)
        original(m, exc)

    cluster._storage_failed = storage_failed  # type: ignore[method-assign]
    cluster.run()
    assert not cluster.violations, cluster.violations
    assert len(failed) == 1
    assert cluster.stats["restart"] >= 1
    assert cluster.node_ledgers[failed[0]].height > heights[0]


def test_the_genesis_and_requests_are_what_the_node_ledger_accepts() -> None:
    genesis = genesis_document("ed25519-sha256", EPOCH_MS)
    node = NodeLedger(genesis)
    assert node.height == 0 and node.tip().timestamp_ms == genesis["genesis_time_ms"]
    good = client_request("ed25519-sha256", 1, 0, EPOCH_MS)
    refused = client_request("ed25519-sha256", 1, 7, EPOCH_MS)
    assert node.valid_request(good) and node.valid_request(refused)
    assert not node.valid_request(good[:-1] + bytes([good[-1] ^ 1]))
    assert not node.valid_request(b"tx:0:0:|0000")
    assert client_request("ed25519-sha256", 1, 0, EPOCH_MS) == good  # deterministic
    assert isinstance(node.ledger, Ledger)
