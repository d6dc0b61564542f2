"""The statistics of a load run, as pure functions over recorded times (no clock, no I/O).

Every time is in seconds on one monotonic clock shared by the client processes of a run; the
measured window is ``[start, end)``.  A transaction counts towards the window when it was
submitted inside it; its latency is commit notification minus submission.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
# The offered load may fall this far short of the requested rate before a run is invalid.
OFFERED_TOLERANCE = 0.05
# Saturation: the highest rate at which the network still committed this share of the offer.
SATURATION_SHARE = 0.98
# Fault recovery: throughput is back once a second reaches this share of the pre-fault level.
RECOVERY_SHARE = 0.90


@dataclass(frozen=True, slots=True)
class TxRecord:
    """One transaction as the client saw it: when it was due (open loop), when it was sent,
    when its commit was notified (NaN if never), the admission code ("" when admitted) and
    the execution result ("OK", a contract error code, or "" when not seen)."""

    due: float
    submitted: float
    committed: float
    code: str = ""
    result: str = ""

    @property
    def admitted(self) -> bool:
        return self.code == ""

    @property
    def is_committed(self) -> bool:
        return not math.isnan(self.committed)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100): the smallest value with at least
    q % of the values at or below it.  NaN for no values."""
    if not values:
        return math.nan
    if not 0 < q <= 100:
        raise ValueError(f"percentile {q} is not in (0, 100]")
    ordered = sorted(values)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[max(0, min(len(ordered), rank) - 1)]


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    """count, mean, p50/p90/p99/p99.9 and max of latencies in milliseconds."""
    out: dict[str, float] = {"count": float(len(latencies_ms))}
    out["mean_ms"] = sum(latencies_ms) / len(latencies_ms) if latencies_ms else math.nan
    for q in PERCENTILES:
        out[f"p{q:g}_ms"] = percentile(latencies_ms, q)
    out["max_ms"] = max(latencies_ms) if latencies_ms else math.nan
    return out


def in_window(records: Sequence[TxRecord], start: float, end: float) -> list[TxRecord]:
    return [r for r in records if start <= r.submitted < end]


def latencies_ms(records: Sequence[TxRecord]) -> list[float]:
    return [(r.committed - r.submitted) * 1000 for r in records if r.is_committed]


def rates(records: Sequence[TxRecord], start: float, end: float) -> dict[str, float]:
    """Offered, admitted and committed tx/s over the window, and what was lost: offered and
    admitted count submissions in the window, committed counts commit notifications in it."""
    seconds = end - start
    if seconds <= 0:
        raise ValueError("the window is empty")
    window = in_window(records, start, end)
    admitted = [r for r in window if r.admitted]
    committed = sum(1 for r in records if r.is_committed and start <= r.committed < end)
    return {
        "offered_tx_per_s": len(window) / seconds,
        "admitted_tx_per_s": len(admitted) / seconds,
        "committed_tx_per_s": committed / seconds,
        "submitted": float(len(window)),
        "rejected": float(len(window) - len(admitted)),
        "uncommitted": float(sum(1 for r in admitted if not r.is_committed)),
    }


def per_second(records: Sequence[TxRecord], start: float, end: float) -> list[dict[str, float]]:
    """One row per whole second of the window: offered and committed counts, and the p50/p99
    latency (ms) of the transactions whose commit was notified in that second."""
    seconds = max(0, math.ceil(end - start - 1e-9))
    offered = [0] * seconds
    committed = [0] * seconds
    lat: list[list[float]] = [[] for _ in range(seconds)]
    for r in records:
        if start <= r.submitted < end:
            offered[int(r.submitted - start)] += 1
        if r.is_committed and start <= r.committed < end:
            second = int(r.committed - start)
            committed[second] += 1
            lat[second].append((r.committed - r.submitted) * 1000)
    return [
        {
            "second": float(s),
            "offered": float(offered[s]),
            "committed": float(committed[s]),
            "p50_ms": percentile(lat[s], 50),
            "p99_ms": percentile(lat[s], 99),
        }
        for s in range(seconds)
    ]


def offered_validity(
    requested_tx_per_s: float | None, offered_tx_per_s: float, tolerance: float = OFFERED_TOLERANCE
) -> tuple[bool, str]:
    """Whether the clients offered what was asked: a run that fell short by more than
    ``tolerance`` measured the load generator, not the network.  Closed loop (no rate) is
    valid when anything was offered at all."""
    if requested_tx_per_s is None:
        if offered_tx_per_s > 0:
            return True, "closed loop"
        return False, "closed loop: nothing was submitted"
    if requested_tx_per_s <= 0:
        raise ValueError("the requested rate must be positive")
    floor = (1 - tolerance) * requested_tx_per_s
    if offered_tx_per_s + 1e-9 >= floor:
        return True, f"offered {offered_tx_per_s:.1f} of {requested_tx_per_s:.1f} tx/s due"
    return False, (
        f"INVALID: offered only {offered_tx_per_s:.1f} of {requested_tx_per_s:.1f} tx/s due "
        f"(more than {tolerance:.0%} short): the clients could not offer the load; "
        "add --processes or lower --rate"
    )


@dataclass(frozen=True, slots=True)
class SweepPoint:
    requested_tx_per_s: float
    offered_tx_per_s: float
    committed_tx_per_s: float
    valid: bool
    p99_ms: float = math.nan


def saturation(points: Sequence[SweepPoint], share: float = SATURATION_SHARE) -> float | None:
    """The highest requested rate of a valid point whose committed rate kept up with
    ``share`` of its offered rate; None when none did."""
    kept_up = [
        p.requested_tx_per_s
        for p in points
        if p.valid and p.offered_tx_per_s > 0 and p.committed_tx_per_s >= share * p.offered_tx_per_s
    ]
    return max(kept_up) if kept_up else None


def parse_rates(text: str) -> list[float]:
    """``R1,R2,...`` or ``start:stop:step`` (stop included when the steps reach it)."""
    text = text.strip()
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(f"{text!r}: write start:stop:step")
        start, stop, step = (float(p) for p in parts)
        if step <= 0 or start <= 0 or stop < start:
            raise ValueError(f"{text!r}: need 0 < start <= stop and a positive step")
        count = math.floor((stop - start) / step + 1e-9) + 1
        return [round(start + i * step, 6) for i in range(count)]
    values = [float(p) for p in text.split(",") if p.strip()]
    if not values or any(v <= 0 for v in values):
        raise ValueError(f"{text!r}: rates must be positive numbers")
    return values


def pre_fault_level(
    counts: Sequence[float], fault_at: float, lookback: int = 10, since: float = 0.0
) -> float:
    """Mean commits per second over the whole seconds before the fault (at most ``lookback``,
    none starting before ``since``: after an earlier fault, from its recovery on)."""
    whole = min(len(counts), math.floor(fault_at))
    first = max(0, whole - lookback, math.ceil(since))
    before = counts[first:whole]
    return sum(before) / len(before) if before else math.nan


def recovery_seconds(
    counts: Sequence[float],
    fault_at: float,
    share: float = RECOVERY_SHARE,
    hold: int = 2,
    lookback: int = 10,
    since: float = 0.0,
) -> float | None:
    """Seconds from a fault until throughput is back to ``share`` of its pre-fault level.

    ``counts[s]`` is the commits in second ``[s, s+1)`` of the window and ``fault_at`` when
    the fault struck, in the same seconds.  The dip is the first second from the one holding
    the fault whose count is below the threshold; recovery is the start of the first later
    second that begins ``hold`` seconds at or above it (fewer at the end of the window).  No
    dip means the fault did not show: 0.  None: it never recovered, or there was no pre-fault
    level to recover to."""
    level = pre_fault_level(counts, fault_at, lookback, since)
    if math.isnan(level) or level <= 0:
        return None
    threshold = share * level
    first = math.floor(fault_at)
    dip = next((s for s in range(first, len(counts)) if counts[s] < threshold), None)
    if dip is None:
        return 0.0
    for s in range(dip + 1, len(counts)):
        run = counts[s : s + hold]
        if run and all(c >= threshold for c in run):
            return max(0.0, s - fault_at)
    return None
