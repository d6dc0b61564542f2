"""Simulated network: delay distributions, loss, duplication, reordering, partitions, clogging.

Reordering is a consequence of per-message delay jitter. Partitions are sets of blocked directed
links, so symmetric splits, one-way (asymmetric) partitions and an isolated node are the same
mechanism. Clogging adds a large delay to chosen links for a while (FoundationDB's
"swizzle-clogging" clogs links one by one and releases them in another order).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NetworkProfile:
    distribution: str  # "zero", "uniform", "exponential", "bimodal"
    mean_ms: float
    loss: float
    duplicate: float

    def describe(self) -> str:
        return (
            f"{self.distribution}(mean={self.mean_ms:.0f}ms) loss={self.loss:.2f} "
            f"dup={self.duplicate:.2f}"
        )


class Network:
    def __init__(self, rng: random.Random, profile: NetworkProfile) -> None:
        self._rng = rng
        self.profile = profile
        self.blocked: Counter[tuple[str, str]] = Counter()
        self.clogged: dict[tuple[str, str], int] = {}
        self.healed = False
        self.sent = 0
        self.dropped = 0
        self.duplicated = 0

    def _delay(self) -> int:
        p = self.profile
        rng = self._rng
        if p.distribution == "zero":
            return 0
        if p.distribution == "uniform":
            return int(rng.uniform(0, 2 * p.mean_ms))
        if p.distribution == "exponential":
            return int(rng.expovariate(1.0 / max(p.mean_ms, 0.1)))
        # bimodal: mostly fast, sometimes very slow (a congested path)
        if rng.random() < 0.1:
            return int(rng.uniform(3 * p.mean_ms, 8 * p.mean_ms))
        return int(rng.uniform(0, p.mean_ms))

    def delays(self, src: str, dst: str) -> list[int]:
        """Delivery delays for one message on src->dst: [] = lost, two entries = duplicated."""
        self.sent += 1
        if self.blocked[(src, dst)] > 0:
            self.dropped += 1
            return []
        if not self.healed and self._rng.random() < self.profile.loss:
            self.dropped += 1
            return []
        extra = self.clogged.get((src, dst), 0)
        out = [self._delay() + extra]
        if not self.healed and self._rng.random() < self.profile.duplicate:
            self.duplicated += 1
            out.append(self._delay() + extra)
        return out

    def block(self, links: list[tuple[str, str]]) -> None:
        for link in links:
            self.blocked[link] += 1

    def unblock(self, links: list[tuple[str, str]]) -> None:
        for link in links:
            if self.blocked[link] > 0:
                self.blocked[link] -= 1

    def heal(self) -> None:
        self.healed = True
        self.blocked.clear()
        self.clogged.clear()
