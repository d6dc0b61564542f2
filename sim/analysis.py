"""The analytical PBFT latency the simulator's measurements are set beside.

Model: the client waits at the replica it submitted to (its entry replica), as an ibledger
client waits for the commit notification of the node it submitted to, so the reply is local and
costs nothing; local processing, signing and persistence are modelled as zero; no message is
lost. A request then goes through (Castro-Liskov OSDI'99 section 4.2):

    forward to the primary (entry is a backup)  D[e][p]
    batching wait at the primary                W
    PRE-PREPARE to every backup                 D[p][i]
    PREPARE: a replica is prepared with the pre-prepare and q-1 PREPAREs of distinct backups
             (its own included)
    COMMIT: committed-local with q COMMITs, its own included once it is prepared, or q from
            others (the body came with the pre-prepare); it executes at once

With one fixed one-way delay d every phase takes d, and averaging over entry replicas chosen
uniformly (1/n of them are the primary, which needs no forward):

    L = (1 - 1/n) d + W + 3d

For a region matrix the phases are not equal: the prepare and commit phases each wait for the
(q-1)-th (or, counting its own vote, (q-2)-th) fastest vote to arrive, which `critical_path`
computes exactly for fixed delays. For random delay models the same computation is done at the
mean delay of each link: an approximation (a quorum waits for an order statistic of several
random delays, not for their mean), shown as such.

Batching wait W. The primary proposes when `batch_size_max` requests wait or, on a tick, when
the oldest has waited `batch_timeout_ticks` ticks (T ticks of p ms: b = T p). A request arriving
at a uniform phase between ticks is proposed on the T-th tick after it, so the first request of
a batch waits tau, uniform on ((T-1)p, Tp]: E[tau] = b - p/2. With Poisson arrivals of rate
lambda, requests arriving while the first waits join its batch and wait on average half the
rest, so the mean over requests is

    W = (E[tau] + lambda E[tau^2] / 2) / (1 + lambda E[tau])

which is b - p/2 for a lone request and tends to E[tau^2] / (2 E[tau]) (about b/2) under load.
When the batch fills first (1 + lambda E[tau] > batch_size_max = S) the batch is cut by size and
W = (S - 1) / (2 lambda). With T = 0 a request is proposed as it arrives: W = 0.

Eager proposals (`eager_blocks` = k >= 1): the primary proposes at once while fewer than k of its
blocks are in flight, so a request waits only if it arrives while the pipeline is full, and then
until the next block finishes. Take the pipeline as one server whose block takes s = (the
primary's own agreement time) / k, arrivals Poisson: a busy period is a run of blocks, each
followed at once by the next when a request arrived during it (probability 1 - exp(-lambda s)),
so it lasts s exp(lambda s) on average, and an idle gap 1 / lambda. A request finds the pipeline
full with probability B = s exp(lambda s) / (s exp(lambda s) + 1 / lambda) and then waits the
rest of the running block, s / 2 on average, or the batch timeout if that is sooner:
W = B min(s / 2, b - p / 2). This is exact for k = 1 and fixed delays up to the size cap, and an
approximation otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ibledger.consensus import fault_tolerance, quorum_size


@dataclass(frozen=True, slots=True)
class Analysis:
    forward_ms: float  # mean over entry replicas of the forward to the primary
    batch_wait_ms: float
    agreement_ms: float  # mean over entry replicas: pre-prepare, prepare and commit phases
    exact: bool  # False when random delays were replaced by their means

    @property
    def latency_ms(self) -> float:
        return self.forward_ms + self.batch_wait_ms + self.agreement_ms

    def formula(self) -> str:
        return "L = forward + W + agreement (pre-prepare, prepare, commit); reply local"


def batch_wait_ms(
    tick_ms: float, timeout_ticks: int, batch_size_max: int, rate_tps: float
) -> float:
    """Mean wait of a request at the primary before it is proposed (module docstring)."""
    if timeout_ticks <= 0:
        return 0.0
    p = tick_ms
    first = (timeout_ticks - 1) * p
    mean_tau = first + p / 2
    mean_tau_sq = first * first + first * p + p * p / 3
    lam = rate_tps / 1000.0  # per ms
    if lam > 0 and 1 + lam * mean_tau > batch_size_max:
        return (batch_size_max - 1) / (2 * lam)
    return (mean_tau + lam * mean_tau_sq / 2) / (1 + lam * mean_tau)


def _kth_smallest(values: list[float], k: int) -> float:
    return sorted(values)[k - 1] if k > 0 else 0.0


def critical_path(delays_ms: list[list[float]], primary: int) -> list[float]:
    """Time from the primary's PRE-PREPARE to each replica's execution, for fixed delays
    `delays_ms[i][j]` (i -> j) and zero processing time."""
    n = len(delays_ms)
    q = quorum_size(n, fault_tolerance(n))
    backups = [i for i in range(n) if i != primary]
    t_pp = [0.0 if i == primary else delays_ms[primary][i] for i in range(n)]
    prepared = []
    for j in range(n):
        arrivals = [t_pp[i] + delays_ms[i][j] for i in backups if i != j]
        if j == primary:
            prepared.append(_kth_smallest(arrivals, q - 1))
        else:
            prepared.append(max(t_pp[j], _kth_smallest(arrivals, q - 2)))
    committed = []
    for k in range(n):
        arrivals = [prepared[j] + delays_ms[j][k] for j in range(n) if j != k]
        with_own = max(prepared[k], _kth_smallest(arrivals, q - 1))
        # q COMMITs from others form a certificate without the replica's own vote; the body
        # came with the pre-prepare.
        committed.append(max(t_pp[k], min(with_own, _kth_smallest(arrivals, q))))
    return committed


def analyse(
    delays_ms: list[list[float]],
    *,
    primary: int,
    tick_ms: float,
    batch_timeout_ticks: int,
    batch_size_max: int,
    rate_tps: float,
    exact: bool,
    eager_blocks: int = 0,
) -> Analysis:
    """The model for entry replicas chosen uniformly, `delays_ms` the (mean) one-way delays."""
    n = len(delays_ms)
    if n == 1:
        wait = batch_wait_ms(tick_ms, batch_timeout_ticks, batch_size_max, rate_tps)
        return Analysis(0.0, wait, 0.0, exact)
    path = critical_path(delays_ms, primary)
    forward = sum(delays_ms[e][primary] for e in range(n) if e != primary) / n
    wait = batch_wait_ms(tick_ms, batch_timeout_ticks, batch_size_max, rate_tps)
    if eager_blocks > 0:
        wait = eager_wait_ms(path[primary] / eager_blocks, wait, rate_tps)
        exact = exact and eager_blocks == 1
    return Analysis(forward, wait, sum(path) / n, exact)


def eager_wait_ms(block_ms: float, timeout_wait_ms: float, rate_tps: float) -> float:
    """Mean wait of a request for room in the pipeline (module docstring, eager proposals)."""
    lam = rate_tps / 1000.0  # per ms
    if lam <= 0 or block_ms <= 0:
        return 0.0
    load = lam * block_ms
    full = 1 / (1 + math.exp(-load) / load)  # B, rearranged so that no exp() overflows
    return full * min(block_ms / 2, timeout_wait_ms)


def fixed_delay_latency_ms(
    delay_ms: float,
    n: int,
    *,
    tick_ms: float = 10.0,
    batch_timeout_ticks: int = 0,
    batch_size_max: int = 64,
    rate_tps: float = 0.0,
) -> float:
    """The closed form for one fixed one-way delay d: (1 - 1/n) d + W + 3d."""
    wait = batch_wait_ms(tick_ms, batch_timeout_ticks, batch_size_max, rate_tps)
    return (1 - 1 / n) * delay_ms + wait + 3 * delay_ms
