"""Timeouts in logical ticks: the replica's only notion of time passing.

Theory of operation (Castro and Liskov, OSDI'99 sections 4.4 and 4.5.2; TOCS 2002 section 4.5)
------------------------------------------------------------------------------------------------
A backup starts the request timer when it is waiting for a request to execute and stops it when
it is no longer waiting; expiry starts a view change to v+1. After a quorum of VIEW-CHANGEs for
its view it starts the new-view timer; expiry moves on to v+2. Both use the same duration T,
which doubles (up to a cap) with every view that fails to execute a request and returns to the
base once a non-null block executes in an active view (4.5.2's liveness condition: eventually T
outlasts the network delay). The other timers are periodic duties: STATUS, VIEW-CHANGE
retransmission, re-forwarding pending requests, and retrying a state-transfer fetch.

Time is a tick counter the node advances; nothing here reads a clock. These are plain values
owned by the replica: they answer "has this expired?" and never act.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import ReplicaConfig

_EXPONENT_MAX = 30


@dataclass(slots=True)
class Timeout:
    """A one-shot timeout: stopped (None) or started at a tick."""

    started: int | None = None

    @property
    def running(self) -> bool:
        return self.started is not None

    def start(self, tick: int) -> None:
        self.started = tick

    def start_if_stopped(self, tick: int) -> None:
        if self.started is None:
            self.started = tick

    def stop(self) -> None:
        self.started = None

    def restart_if(self, condition: bool, tick: int) -> None:
        """Running from `tick` if `condition` holds, stopped otherwise."""
        self.started = tick if condition else None

    def expired(self, tick: int, duration: int) -> bool:
        return self.started is not None and tick - self.started >= duration


@dataclass(slots=True)
class Interval:
    """A duty done at most once every `every` ticks; `last` is when it was last done."""

    every: int
    last: int = 0

    def due(self, tick: int) -> bool:
        return tick - self.last >= self.every

    def mark(self, tick: int) -> None:
        self.last = tick


@dataclass(slots=True)
class Backoff:
    """The view-change timeout T: base << exponent, capped (section 4.5.2)."""

    base: int
    cap: int
    exponent: int = 0

    def duration(self) -> int:
        return min(self.base << min(self.exponent, _EXPONENT_MAX), self.cap)

    def grow(self) -> None:
        self.exponent += 1

    def reset(self) -> None:
        self.exponent = 0


@dataclass(slots=True)
class Timers:
    """Every timer of one replica, so that `Replica.tick` reads them in one place."""

    request: Timeout = field(default_factory=Timeout)  # waiting for an execution (view change)
    new_view: Timeout = field(default_factory=Timeout)  # quorum of VIEW-CHANGEs, no NEW-VIEW yet
    lag: Timeout = field(default_factory=Timeout)  # f+1 CHECKPOINTs above us: fetch if it lasts
    backoff: Backoff = field(default_factory=lambda: Backoff(1, 1))
    status: Interval = field(default_factory=lambda: Interval(1))
    view_change_resend: Interval = field(default_factory=lambda: Interval(1))
    forward: Interval = field(default_factory=lambda: Interval(1))
    fetch: Interval = field(default_factory=lambda: Interval(1))

    @classmethod
    def for_config(cls, cfg: ReplicaConfig) -> Timers:
        return cls(
            backoff=Backoff(cfg.view_change_timeout_ticks, cfg.view_change_timeout_max_ticks),
            # The first STATUS goes out on the first tick.
            status=Interval(cfg.status_interval_ticks, last=-(10**9)),
            view_change_resend=Interval(cfg.retransmit_ticks),
            forward=Interval(cfg.retransmit_ticks),
            fetch=Interval(cfg.fetch_retry_ticks),
        )
