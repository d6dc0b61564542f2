"""The simulated cluster over the node's real ledger: `Cluster` with `NodeLedger` executors.

Everything `Cluster` checks still holds; what changes is what a replica's storage is and what
its faults do, as on a node:

- a Persist effect is written into the replica's ledger store (`Ledger.persist_consensus`,
  synced) before the cluster's own record of it, and a restarting replica is restored from the
  records the store returns; they must equal every record whose write returned;
- each `StableCheckpoint` effect stores its certificate (unsynced, as the node does);
- a crash is the machine losing power: the store drops a random suffix of its unsynced
  writes (`MemoryStore.crash`), and the restart reopens the ledger over it, which must open,
  verify and have kept every executed block;
- a failed write (`fail-write`: `MemoryStore.fail_next_write`) stops the replica as it stops a
  node (the runtime ends on a ledger write error, and nothing the failed write backed leaves);
  the store keeps every write that returned (`MemoryStore.reopen`) and the replica restarts
  from it after the fault's duration;
- at the end of a run, `node_ledger.check_ledgers`: the same chain on every honest replica,
  each transaction executed exactly once, and every store reopened with full verification.

Storage faults draw from their own stream, so the network and the replicas see the same
random numbers as without them.
"""

from __future__ import annotations

import random

from ibledger.consensus import (
    CheckpointCertificate,
    CommitCertificate,
    CommittedBlock,
    Persist,
    PersistedState,
    StableCheckpoint,
    verify_checkpoint_certificate,
    verify_commit_certificate,
)
from ibledger.node.store import StoreIOError

from .cluster import EPOCH_MS, Cluster
from .ledger import Executor
from .node_ledger import LedgerError, NodeLedger, check_ledgers, genesis_document
from .scenario import Fault, Scenario

FAILED_WRITE_RESTART_MS_MIN = 100


class NodeCluster(Cluster):
    def __init__(self, scenario: Scenario) -> None:
        self.genesis = genesis_document(scenario.suite or "ed25519-sha256", EPOCH_MS)
        self.storage_rng = random.Random(f"storage:{scenario.seed}:{scenario.n}")
        self.node_ledgers: dict[str, NodeLedger] = {}
        self.restart_delay_ms: dict[str, int] = {}  # after a failed write, per armed replica
        self.exiting: set[str] = set()  # stopping on a failed write: no power loss
        super().__init__(scenario)

    def _new_executor(self, m: str) -> Executor:
        ledger = NodeLedger(self.genesis)
        self.node_ledgers[m] = ledger
        return ledger

    # ------------------------------------------------------------------ storage

    def _persist(self, m: str, e: Persist) -> None:
        self.node_ledgers[m].persist(e.updates)  # raises StoreIOError: nothing is recorded
        super()._persist(m, e)

    def _persisted_state(self, m: str) -> PersistedState:
        records = self.node_ledgers[m].consensus_records()
        if records != self.stores[m].records:
            self.violation(f"{m}: the store returned other consensus records than were written")
        return PersistedState(records)

    def _storage_failed(self, m: str, exc: StoreIOError) -> None:
        self.stats["write-failed"] += 1
        self._trace("write-failed", m)
        self.exiting.add(m)
        self._crash(m)
        self._push(
            self.now + self.restart_delay_ms.pop(m, FAILED_WRITE_RESTART_MS_MIN), "restart", m
        )

    def _stable_checkpoint(self, m: str, e: StableCheckpoint) -> None:
        super()._stable_checkpoint(m, e)
        # A StoreIOError reaches _drain, which stops the replica as a failed write stops a node.
        self.node_ledgers[m].store_checkpoint(e.certificate)

    # ------------------------------------------------------------------ crash and restart

    def _crash(self, m: str) -> None:
        was_up = m in self.up
        exiting = m in self.exiting
        self.exiting.discard(m)
        super()._crash(m)
        if not was_up:
            return
        ledger = self.node_ledgers[m]
        if exiting:
            ledger.process_exit()
            return
        unsynced = ledger.store.unsynced_writes
        keep = self.storage_rng.randint(0, unsynced)
        self.stats["unsynced-writes-lost"] += unsynced - keep
        ledger.power_loss(keep)

    def _restart(self, m: str) -> None:
        if m not in self.up and not self.node_ledgers[m].is_open:
            ledger = self.node_ledgers[m]
            height, applied = ledger.height, len(ledger.applied)
            try:
                ledger.open()
            except LedgerError as exc:
                self.violation(f"{m}: the ledger does not reopen after a crash: {exc}")
                return
            if ledger.height != height or len(ledger.applied) != applied:
                self.violation(
                    f"{m}: reopened at height {ledger.height} with {len(ledger.applied)} "
                    f"transactions, not {height} with {applied}"
                )
        super()._restart(m)

    # ------------------------------------------------------------------ faults and ticks

    def _fault(self, fault: Fault) -> None:
        if fault.kind != "fail-write":
            super()._fault(fault)
            return
        (x,) = fault.targets
        if self.healed or x not in self.honest or x not in self.up:
            return
        self.stats["fault-fail-write"] += 1
        self._trace("f", fault.kind, fault.targets)
        self.node_ledgers[x].store.fail_next_write("simulated storage failure")
        self.restart_delay_ms[x] = max(FAILED_WRITE_RESTART_MS_MIN, fault.duration_ms)

    def _execute(self, m: str, cb: CommittedBlock) -> bytes:
        try:
            return super()._execute(m, cb)
        except LedgerError as exc:
            self.violation(f"{m} seq {cb.seq}: the ledger refused the committed block: {exc}")
            return b""

    # ------------------------------------------------------------------ the end

    def run(self) -> None:
        super().run()
        if self.violations:
            return
        for text in check_ledgers(
            self.node_ledgers,
            self.honest,
            self.submitted,
            self._commit_ok,
            self._checkpoint_ok,
        ):
            self.violation(text)

    def _commit_ok(self, digest: bytes, cert: CommitCertificate) -> bool:
        return verify_commit_certificate(self.members, self.config.f, digest, cert, self.verifier)

    def _checkpoint_ok(self, cert: CheckpointCertificate) -> bool:
        return verify_checkpoint_certificate(self.config, cert, self.verifier)
