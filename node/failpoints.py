"""Named failpoints: crash, fail or stall a node at one of its durability steps, for fault tests.

Theory of operation
-------------------
* **Off unless armed at start.**  A node arms failpoints only from the ``IBLEDGER_FAILPOINTS``
  environment variable, read once when ``node start`` runs (``arm_from_environment``).  No
  configuration file, API call or peer message reaches this module, so a deployed network
  cannot have a failpoint switched on from outside.  Unarmed, ``hit`` is one truthiness test
  of an empty dictionary.
* **Spec.**  ``NAME=ACTION[@N][;NAME=ACTION[@N]...]``.  ``ACTION`` is ``crash`` (the process
  ends at once with status 137, as ``kill -9`` would end it: no buffers flushed, no cleanup),
  ``error`` (an ``OSError`` with ``EIO`` is raised where the storage would raise one) or
  ``delay:MS`` (the calling thread sleeps).  ``@N`` fires on the N-th time the point is reached
  (1 when absent); ``@N+`` on the N-th and every later time.  An unknown name or a malformed
  action is refused when the node starts, so a typo cannot make a test pass that never
  injected anything.
* **Points** (``POINTS``) sit where a crash matters for durability: around the block write
  batch and the checkpoint certificate write in the ledger, around persisting consensus
  records (which precede the votes they record), between a block's execution and waking the
  clients waiting for its receipts, when blocks from a state transfer are handed to the replica,
  and when a governance event is handed to the audit log.
* **Seen from outside.**  A failpoint that fires logs one JSON line (event ``failpoint``, with
  its name and action) and flushes the log before acting, so a test can tell that the crash it
  observed is the one it asked for.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

ENVIRONMENT_VARIABLE = "IBLEDGER_FAILPOINTS"
CRASH_EXIT_STATUS = 137  # what a shell reports for a process killed by SIGKILL

POINTS: Mapping[str, str] = {
    "ledger.before-block-write": "a committed block is executed; its write batch is not written",
    "ledger.after-block-write": "a block's write batch is written; the in-memory tip has not moved",
    "ledger.before-checkpoint-write": "a stable checkpoint certificate is about to be stored",
    "ledger.after-checkpoint-write": "a stable checkpoint certificate is stored",
    "consensus.before-persist": "consensus records (votes, view state) are about to be persisted",
    "consensus.after-persist": "consensus records are persisted; the votes are not yet sent",
    "execute.before-reply": "a block is durable; clients waiting for its receipts are not woken",
    "state-transfer.apply": "blocks fetched from a peer are about to be handed to the replica",
    "audit.before-write": "a governance event is about to be handed to the audit log",
}

ACTIONS = ("crash", "error", "delay")
DELAY_MS_MAX = 60_000

log = logging.getLogger("ibledger.failpoints")


class FailpointSpecError(ValueError):
    """An ``IBLEDGER_FAILPOINTS`` value that does not parse, or names an unknown point."""


class FailpointIOError(OSError):
    """The I/O error an ``error`` failpoint raises."""


@dataclass(frozen=True)
class Failpoint:
    name: str
    action: str
    on_hit: int  # fire on this hit (1-based)
    and_later: bool  # ... and on every later one
    delay_ms: int = 0


_SPEC = re.compile(r"^(?P<action>crash|error|delay:(?P<ms>\d+))(?:@(?P<n>\d+)(?P<later>\+)?)?$")

_armed: dict[str, Failpoint] = {}
_hits: dict[str, int] = {}
_lock = threading.Lock()


def parse(spec: str) -> dict[str, Failpoint]:
    """The failpoints a spec names; raises ``FailpointSpecError`` saying what is wrong."""
    points: dict[str, Failpoint] = {}
    for item in spec.split(";"):
        item = item.strip()
        if not item:
            continue
        name, sep, action = item.partition("=")
        name, action = name.strip(), action.strip()
        if not sep:
            raise FailpointSpecError(f"failpoint {item!r} is not NAME=ACTION")
        if name not in POINTS:
            known = ", ".join(sorted(POINTS))
            raise FailpointSpecError(f"unknown failpoint {name!r} (known: {known})")
        if name in points:
            raise FailpointSpecError(f"failpoint {name!r} is given twice")
        match = _SPEC.match(action)
        if match is None:
            raise FailpointSpecError(
                f"failpoint {name!r}: action {action!r} is not crash, error or delay:MS, "
                "optionally followed by @N or @N+"
            )
        on_hit = int(match["n"]) if match["n"] is not None else 1
        if on_hit < 1:
            raise FailpointSpecError(f"failpoint {name!r}: @N counts from 1")
        delay_ms = int(match["ms"]) if match["ms"] is not None else 0
        if delay_ms > DELAY_MS_MAX:
            raise FailpointSpecError(f"failpoint {name!r}: a delay is at most {DELAY_MS_MAX} ms")
        points[name] = Failpoint(
            name=name,
            action=match["action"].split(":")[0],
            on_hit=on_hit,
            and_later=match["later"] is not None,
            delay_ms=delay_ms,
        )
    return points


def arm(points: Mapping[str, Failpoint]) -> None:
    """Replace the armed failpoints (and forget how often each was reached)."""
    with _lock:
        _armed.clear()
        _armed.update(points)
        _hits.clear()


def arm_from_environment() -> dict[str, Failpoint]:
    """Arm what ``IBLEDGER_FAILPOINTS`` names (nothing when it is unset or empty)."""
    points = parse(os.environ.get(ENVIRONMENT_VARIABLE, ""))
    arm(points)
    return points


def hit(name: str) -> None:
    """The node reached failpoint ``name``: act if it is armed and this is its hit."""
    if _armed:  # unarmed (every deployed node): nothing but this test
        _reached(name)


def _reached(name: str) -> None:
    point = _armed.get(name)
    if point is None:
        return
    with _lock:
        count = _hits.get(name, 0) + 1
        _hits[name] = count
    if count < point.on_hit or (count > point.on_hit and not point.and_later):
        return
    log.warning(
        "failpoint %s reached: %s",
        name,
        point.action,
        extra={"event": "failpoint", "failpoint": name, "action": point.action, "hit": count},
    )
    _flush_logs()
    if point.action == "crash":
        os._exit(CRASH_EXIT_STATUS)
    if point.action == "error":
        raise FailpointIOError(errno.EIO, f"failpoint {name}: injected I/O error")
    time.sleep(point.delay_ms / 1000)


def _flush_logs() -> None:
    for logger in (log, logging.getLogger()):
        for handler in logger.handlers:
            handler.flush()
