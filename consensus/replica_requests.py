"""Request handling (Castro and Liskov, OSDI'99 section 4.1) and the request timer (4.5.2).

The queue is `requests`; this part of the replica admits requests, forwards them to the primary
(and to everyone when the primary has sat on them), and runs the request timer whose expiry
starts a view change. The primary's proposals are the normal case's (`_maybe_propose`).
"""

from __future__ import annotations

from collections.abc import Iterable

from .effects import Effect, RequestRejected
from .messages import RequestForward, SignedMessage
from .replica_normal import NormalCase
from .requests import REFUSED_DUPLICATE, REFUSED_SIZE, forward_too_large


class RequestHandling(NormalCase):
    """Client requests in, forwarding, and the timer that suspects a silent primary."""

    def submit(self, request: bytes, now_ms: int, *, forward: bool = True) -> list[Effect]:
        """Queue an opaque client request (id = chain hash of the bytes); backups forward it.

        ``forward=False`` is for a node that has already relayed the request to every replica
        itself (the primary included): the backup only queues it and starts its timers; if the
        primary still has not proposed it after ``retransmit_ticks``, the usual retransmission
        sends it to everyone (section 4.1's client retransmission)."""
        out: list[Effect] = []
        self._now_ms = now_ms
        rid = self._add_request(request, out)
        if rid is not None:
            if self._vs.active and self.is_primary:
                self._maybe_propose(out)
            elif self._vs.active and forward:
                forwarded = RequestForward((self._requests.request(rid),))
                self._send(out, self.primary, self._sign(forwarded))
        return self._finish(out)

    def submit_relayed(self, requests: Iterable[bytes], now_ms: int) -> list[Effect]:
        """Queue requests that the node has already relayed to every replica (``submit`` with
        ``forward=False``), all before any proposal, so that a batch arriving together is
        proposed together rather than its first request alone."""
        out: list[Effect] = []
        self._now_ms = now_ms
        queued = False
        for request in requests:
            queued = self._add_request(request, out) is not None or queued
        if queued and self._vs.active and self.is_primary:
            self._maybe_propose(out)
        return self._finish(out)

    def _add_request(self, request: bytes, out: list[Effect]) -> bytes | None:
        rid, refused = self._requests.admit(
            request, self._tick, self._config, self._request_validator
        )
        if refused == REFUSED_SIZE:
            self._drop("request-size")
        elif refused is not None:
            self.counters["request-" + refused] += 1
            if refused != REFUSED_DUPLICATE:
                assert rid is not None
                out.append(RequestRejected(rid, refused))
        return None if refused is not None else rid

    def _on_request_forward(self, sm: SignedMessage, m: RequestForward, out: list[Effect]) -> None:
        if forward_too_large(m, self._config):
            self._drop("forward-too-large")
            return
        for request in m.requests:
            self._add_request(request, out)
        if self._vs.active and self.is_primary:
            self._maybe_propose(out)

    def _forward_pending(
        self, out: list[Effect], min_age_ticks: int, everyone: bool = False
    ) -> None:
        self._timers.forward.mark(self._tick)
        batch = self._requests.forward_batch(self._tick, min_age_ticks, self._config)
        if batch:
            forward = self._sign(RequestForward(tuple(batch)))
            if everyone:
                self._broadcast(out, forward)
            else:
                self._send(out, self.primary, forward)

    def _tick_requests(self, out: list[Effect]) -> None:
        """One tick in an active view: propose, run the request timer, re-forward."""
        self._maybe_propose(out)
        waiting = self._waiting_for_execution() and not self.catching_up
        if not waiting:
            self._timers.request.stop()
        elif not self._timers.request.running:
            self._timers.request.start(self._tick)
        elif self._timers.request.expired(self._tick, self._timers.backoff.duration()):
            self.counters["view-change-timeout"] += 1
            self._start_view_change(self._vs.view + 1, out, timeout=True, cause="request-timeout")
        if self._vs.active and not self.is_primary and self._timers.forward.due(self._tick):
            # A request the primary has not proposed in time goes to every replica, so
            # that all backups start their view-change timers (a silent primary, B9).
            self._forward_pending(out, min_age_ticks=self._config.retransmit_ticks, everyone=True)
