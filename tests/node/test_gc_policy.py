"""The collector policy's pause metric observes collections only while installed."""

from __future__ import annotations

import gc

from prometheus_client import CollectorRegistry

from ibledger.node.gc_policy import GCPauses


def _count(registry: CollectorRegistry, generation: str) -> float:
    value = registry.get_sample_value("ibledger_gc_pause_seconds_count", {"generation": generation})
    assert value is not None
    return value


def test_full_collections_are_observed_while_installed_and_not_after() -> None:
    registry = CollectorRegistry()
    pauses = GCPauses(registry)
    assert _count(registry, "2") == 0
    pauses.install()
    pauses.install()  # a second install does not count twice
    try:
        gc.collect()
        gc.collect()
        assert _count(registry, "2") == 2
        total = registry.get_sample_value("ibledger_gc_pause_seconds_sum", {"generation": "2"})
        assert total is not None and total > 0
    finally:
        pauses.remove()
    gc.collect()
    assert _count(registry, "2") == 2
    assert pauses._on_collection not in gc.callbacks


def test_frozen_objects_are_read_from_the_collector() -> None:
    registry = CollectorRegistry()
    GCPauses(registry)
    assert registry.get_sample_value("ibledger_gc_frozen_objects") == gc.get_freeze_count()
