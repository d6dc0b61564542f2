"""Per-phase timing of consensus, taken at the node boundary (the consensus core keeps no clock).

A transaction's life on one node is cut into five phases, each a Prometheus histogram
``ibledger_phase_<name>_seconds``:

* ``admitted_proposed`` — admitted here (a client's or a peer's relay) until this node accepted
  the block carrying it: the primary broadcasting its PRE-PREPARE, or a backup broadcasting its
  PREPARE (one observation per transaction, made once the block commits and its requests are
  known for certain);
* ``proposed_prepared`` — until this node broadcast its COMMIT (the block is prepared here);
* ``prepared_committed`` — until the core handed the block over for execution (committed-local,
  and every lower block executed);
* ``committed_executed`` — until the ledger had executed and written it;
* ``executed_notified`` — until waiting clients were woken (and governance audited).

The last four are observed once per block.  ``ibledger_commit_latency_seconds`` is the whole
path, admitted to notified, once per transaction admitted here.

The clock reads only this node's own effects: outgoing PRE-PREPARE, PREPARE and COMMIT
broadcasts and ``Execute``.  An incoming PRE-PREPARE is not read, because the core has not yet
checked it: a faulty validator could otherwise claim sequence numbers and requests and bend the
figures.  Every map is bounded: entries for
blocks that never complete here (a view change, a fetched block) are dropped oldest first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram

from ibledger.consensus import HashFn, request_id, sha256

from .metrics import SECONDS_BUCKETS

PHASES = (
    "admitted_proposed",
    "proposed_prepared",
    "prepared_committed",
    "committed_executed",
    "executed_notified",
)
ADMITTED_MAX = 200_000  # transactions awaiting a proposal (about a full mempool)
BLOCKS_MAX = 4096  # blocks between proposal and notification (many watermark windows)


def _bounded_put(table: OrderedDict[int, float], key: int, value: float) -> None:
    if key not in table:
        table[key] = value
        if len(table) > BLOCKS_MAX:
            table.popitem(last=False)


def _bounded_put_list(table: OrderedDict[int, list[float]], key: int, value: list[float]) -> None:
    table[key] = value
    if len(table) > BLOCKS_MAX:
        table.popitem(last=False)


@dataclass(frozen=True, slots=True)
class _Histograms:
    phase: dict[str, Histogram]
    commit: Histogram


class PhaseClock:
    """Timestamps of one node's blocks as they move through the phases."""

    def __init__(
        self,
        registry: CollectorRegistry,
        clock: Callable[[], float] = time.monotonic,
        hash_fn: HashFn = sha256,
    ) -> None:
        self._clock = clock
        # The chain hash: blocks name their requests by it (SM3 on an sm2-sm3 chain), so an
        # admission timed under another hash would never be found again.
        self._hash_fn = hash_fn
        self._h = _Histograms(
            {
                name: Histogram(
                    f"ibledger_phase_{name}_seconds",
                    f"Consensus phase {name.replace('_', ' to ')}, as this node saw it.",
                    registry=registry,
                    buckets=SECONDS_BUCKETS,
                )
                for name in PHASES
            },
            Histogram(
                "ibledger_commit_latency_seconds",
                "From admission at this node to waking the clients that wait for the "
                "transaction here (every phase together), per transaction.",
                registry=registry,
                buckets=SECONDS_BUCKETS,
            ),
        )
        self._admitted: OrderedDict[bytes, float] = OrderedDict()
        self._proposed: OrderedDict[int, float] = OrderedDict()
        self._prepared: OrderedDict[int, float] = OrderedDict()
        self._committed: OrderedDict[int, float] = OrderedDict()
        # Admission times of the transactions of each proposed block, for the whole-path figure.
        self._block_admitted: OrderedDict[int, list[float]] = OrderedDict()

    def admitted(self, envelopes: Iterable[bytes]) -> None:
        now = self._clock()
        table, hash_fn = self._admitted, self._hash_fn
        for envelope in envelopes:
            rid = request_id(envelope, hash_fn)
            if rid not in table:
                table[rid] = now
        while len(table) > ADMITTED_MAX:
            table.popitem(last=False)

    def proposed(self, seq: int) -> None:
        _bounded_put(self._proposed, seq, self._clock())

    def prepared(self, seq: int) -> None:
        if seq in self._prepared:
            return
        now = self._clock()
        _bounded_put(self._prepared, seq, now)
        began = self._proposed.get(seq)  # kept until commit: admitted_proposed reads it
        if began is not None:
            self._h.phase["proposed_prepared"].observe(now - began)

    def committed(self, seq: int, request_ids: Iterable[bytes]) -> float:
        now = self._clock()
        _bounded_put(self._committed, seq, now)
        began = self._prepared.pop(seq, None)
        if began is not None:
            self._h.phase["prepared_committed"].observe(now - began)
        accepted = self._proposed.get(seq)
        observe = self._h.phase["admitted_proposed"].observe
        times = []
        for rid in request_ids:
            at = self._admitted.pop(rid, None)
            if at is not None:
                if accepted is not None and accepted >= at:
                    observe(accepted - at)
                times.append(at)
        _bounded_put_list(self._block_admitted, seq, times)
        return now

    def executed(self, seq: int) -> float:
        now = self._clock()
        began = self._committed.pop(seq, None)
        if began is not None:
            self._h.phase["committed_executed"].observe(now - began)
        return now

    def notified(self, seq: int, executed_at: float) -> None:
        now = self._clock()
        self._h.phase["executed_notified"].observe(now - executed_at)
        self._proposed.pop(seq, None)  # a block committed without a vote of ours
        self._prepared.pop(seq, None)
        admitted = self._block_admitted.pop(seq, None)
        if admitted:
            observe = self._h.commit.observe
            for at in admitted:
                observe(now - at)
