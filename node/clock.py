"""The wall clock every ibledger process reads: nodes for block times and admission, clients
for transaction expiry.

``IBLEDGER_CLOCK_OFFSET_MS`` shifts this process's "now" by a fixed amount.  It exists for drills
and tests of date-driven rules (maturity, presentment windows, request time-outs) on a real
network: every node of the network and its clients must be given the same offset, as they would
share one real clock.  A command reads it on every call, so a test can change it between
commands; a node reads it once at start (``fix_offset``), since its environment cannot change
while it runs and a node asks the time several times per transaction.
"""

from __future__ import annotations

import os
import time

OFFSET_VARIABLE = "IBLEDGER_CLOCK_OFFSET_MS"

_fixed_offset_ms: int | None = None


def fix_offset() -> int:
    """Read the offset now and use that value for the rest of this process (a node's start)."""
    global _fixed_offset_ms
    _fixed_offset_ms = None
    _fixed_offset_ms = offset_ms()
    return _fixed_offset_ms


def offset_ms() -> int:
    if _fixed_offset_ms is not None:
        return _fixed_offset_ms
    raw = os.environ.get(OFFSET_VARIABLE, "")
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{OFFSET_VARIABLE} must be an integer number of milliseconds") from None


def now_ms() -> int:
    return time.time_ns() // 1_000_000 + offset_ms()
