"""Ordered shutdown of a node's parts: each step runs even when an earlier one failed.

A node stops its listeners, then its runtime, then closes the audit log (with its signed closing
head) and the ledger. Before, the steps were guarded only against parts that never started, so any
other exception from one step skipped the rest: the process exited with the audit chain unsigned
at its tail and the store not closed cleanly. The steps' durations go into the "node stopped" log
line, so an operator (or a test) whose stop ran into the SIGKILL deadline can see which part was
slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Iterable

log = logging.getLogger("ibledger.node")


class ShutdownSteps:
    """Runs shutdown steps in order, logging (not raising) what fails, timing each."""

    def __init__(self) -> None:
        self.durations_ms: dict[str, int] = {}
        self.failed: list[str] = []

    async def run(self, name: str, step: Awaitable[object]) -> None:
        started = time.monotonic()
        try:
            await step
        except Exception:
            self.failed.append(name)
            log.exception("stop step failed", extra={"event": "stop-step", "step": name})
        finally:
            self.durations_ms[name] = round((time.monotonic() - started) * 1000)


async def stop_serving(steps: ShutdownSteps, node: object, grace: float) -> None:
    """The first steps of every node's stop: the public API (letting calls in flight finish
    within ``grace``), metrics, the admin socket (which cancels a backup in progress, so before
    the ledger closes) and state transfer. A part the node never started is skipped."""
    api = getattr(node, "api_server", None)
    if api is not None:
        await steps.run("api", api.stop(grace))
    for name, attribute in (
        ("metrics", "metrics_server"),
        ("admin", "admin"),
        ("state-transfer", "state_transfer"),
    ):
        part = getattr(node, attribute, None)
        if part is not None:
            await steps.run(name, part.stop())


async def cancel_tasks(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Cancel the node's background tasks and wait for each to finish."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
