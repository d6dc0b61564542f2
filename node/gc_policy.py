"""How a node process runs CPython's cyclic garbage collector, and what its pauses cost.

A full (generation 2) collection walks every tracked object the process holds, with the event
loop stopped: after start-up about 65,000, and under load another 30,000 to 120,000 that live
for seconds (the decoder alone keeps 25,000 decoded transactions), beside containers such as
the replica's 200,000 remembered request ids that each full collection also traverses.
At CPython's default thresholds (700, 10, 10) nearly every object that lives longer than a few
milliseconds reaches generation 2, so full collections come often and each one stops
consensus for as long as the whole heap takes to walk.

The policy:

* **Young collections are rarer** (``YOUNG_THRESHOLD`` allocations instead of 700): a
  transaction's short-lived objects die before they are ever promoted, so fewer reach the old
  generation and full collections come less often.  A young collection walks at most that many
  objects: milliseconds.
* **What start-up built is frozen** (``gc.freeze``): modules, configuration, keys, genesis and
  the state read at start live as long as the process, and no full collection walks them again.
* **Collection stays on**: cycles (exceptions holding their frames, cancelled tasks) are still
  reclaimed.

Only the node's own process sets this (``configure_process``, ``freeze_startup``), from its
entry point: a test or a program that embeds a ``Node`` keeps its own collector settings.

``GCPauses`` exports each collection's pause as ``ibledger_gc_pause_seconds{generation}`` and
the objects frozen at start-up as ``ibledger_gc_frozen_objects``, so an operator reads on any
node what the collector costs.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram

YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 10  # young collections per middle one: CPython's default
OLD_THRESHOLD = 10  # middle collections per full one (CPython's default; it also waits until
# the objects promoted since the last full collection are a quarter of the old generation)

PAUSE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def configure_process() -> None:
    """The node process's collector thresholds; call once, before start-up allocates."""
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


def freeze_startup() -> None:
    """Move everything alive once start-up is done out of the collector's reach for good."""
    gc.collect()
    gc.freeze()


class GCPauses:
    """Observes every collection of the process into ``ibledger_gc_pause_seconds``.

    The collector calls back on whichever thread triggered it and holds the interpreter lock
    from start to stop; collections never nest, so one start time is enough.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._histogram = Histogram(
            "ibledger_gc_pause_seconds",
            "Pauses of CPython's cyclic garbage collector, by generation collected.",
            ["generation"],
            buckets=PAUSE_BUCKETS,
            registry=registry,
        )
        frozen = Gauge(
            "ibledger_gc_frozen_objects",
            "Objects frozen at start-up, out of every collection's reach.",
            registry=registry,
        )
        frozen.set_function(gc.get_freeze_count)
        self._by_generation = [self._histogram.labels(generation=str(g)) for g in range(3)]
        self._started = 0.0
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            gc.callbacks.append(self._on_collection)
            self._installed = True

    def remove(self) -> None:
        if self._installed:
            gc.callbacks.remove(self._on_collection)
            self._installed = False

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._by_generation[info["generation"]].observe(time.perf_counter() - self._started)
