"""One-way network delay models for research runs, their parsers and the region matrix format.

A model gives the one-way delay of one message from a replica in region `src` to a replica in
region `dst`, drawn from the run's seeded random stream (never from a global one), in integer
microseconds: research runs keep simulated time in microseconds so that LAN-scale delays of a
fraction of a millisecond are not rounded away.

Specs (the `--latency` option of `ibledger sim`):

- ``fixed:MS``: every message takes MS milliseconds.
- ``uniform:LO:HI``: uniform on [LO, HI] milliseconds.
- ``lognormal:MU:SIGMA``: exp(N(MU, SIGMA)) milliseconds, so the median is e^MU ms and the mean
  e^(MU + SIGMA^2 / 2) ms (MU = 1.6, SIGMA = 0.5: median 5 ms, mean 5.6 ms, a long right tail).
- ``matrix:FILE``: a region-to-region table of fixed one-way delays (format below), with replicas
  assigned to regions by `parse_regions`.

Matrix text format: ``#`` starts a comment; blank lines are ignored; the first line lists the
region names; each further line is a region name followed by one delay in milliseconds per
column, in the header's order: the delay from the row's region to the column's region. The
table must be square, name every region once as a row, and hold non-negative numbers; the
diagonal is the delay between two replicas of the same region. It need not be symmetric::

    # one-way delay in ms, row region -> column region
            us-east  eu-west  ap-south
    us-east     0.5       38       95
    eu-west      38      0.5       60
    ap-south     95       60      0.5
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

US_PER_MS = 1_000


class LatencyError(ValueError):
    """A latency or region spec that cannot be parsed (the message says what is wrong)."""


@dataclass(frozen=True, slots=True)
class Fixed:
    delay_ms: float

    def sample_us(self, rng: random.Random, src: int, dst: int) -> int:
        return round(self.delay_ms * US_PER_MS)

    def mean_ms(self, src: int, dst: int) -> float:
        return self.delay_ms

    def describe(self) -> str:
        return f"fixed:{self.delay_ms:g}"


@dataclass(frozen=True, slots=True)
class Uniform:
    low_ms: float
    high_ms: float

    def sample_us(self, rng: random.Random, src: int, dst: int) -> int:
        return round(rng.uniform(self.low_ms, self.high_ms) * US_PER_MS)

    def mean_ms(self, src: int, dst: int) -> float:
        return (self.low_ms + self.high_ms) / 2

    def describe(self) -> str:
        return f"uniform:{self.low_ms:g}:{self.high_ms:g}"


@dataclass(frozen=True, slots=True)
class LogNormal:
    mu: float
    sigma: float

    def sample_us(self, rng: random.Random, src: int, dst: int) -> int:
        return round(rng.lognormvariate(self.mu, self.sigma) * US_PER_MS)

    def mean_ms(self, src: int, dst: int) -> float:
        return math.exp(self.mu + self.sigma**2 / 2)

    def describe(self) -> str:
        return f"lognormal:{self.mu:g}:{self.sigma:g}"


@dataclass(frozen=True, slots=True)
class Matrix:
    """Fixed delays between regions; `src` and `dst` are region indices."""

    regions: tuple[str, ...]
    delays_ms: tuple[tuple[float, ...], ...]
    source: str = "matrix"

    def sample_us(self, rng: random.Random, src: int, dst: int) -> int:
        return round(self.delays_ms[src][dst] * US_PER_MS)

    def mean_ms(self, src: int, dst: int) -> float:
        return self.delays_ms[src][dst]

    def describe(self) -> str:
        return f"matrix:{self.source} ({len(self.regions)} regions)"


LatencyModel = Fixed | Uniform | LogNormal | Matrix


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise LatencyError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise LatencyError(f"{what}: {text!r} must be a finite number >= 0")
    return value


def parse_matrix(text: str, source: str = "matrix") -> Matrix:
    """A region matrix from its text (the format is in the module docstring)."""
    rows = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            rows.append(line.split())
    if not rows:
        raise LatencyError(f"{source}: no header line with region names")
    header = tuple(rows[0])
    if len(set(header)) != len(header):
        raise LatencyError(f"{source}: a region is named twice in the header")
    table: dict[str, tuple[float, ...]] = {}
    for number, row in enumerate(rows[1:], start=2):
        name, values = row[0], row[1:]
        if name not in header:
            raise LatencyError(f"{source}: row {number}: region {name!r} is not in the header")
        if name in table:
            raise LatencyError(f"{source}: row {number}: region {name!r} appears twice")
        if len(values) != len(header):
            raise LatencyError(
                f"{source}: row {name!r} has {len(values)} delays, the header {len(header)}"
            )
        table[name] = tuple(_number(v, f"{source}: row {name!r}") for v in values)
    missing = [r for r in header if r not in table]
    if missing:
        raise LatencyError(f"{source}: no row for region(s) {', '.join(missing)}")
    return Matrix(header, tuple(table[r] for r in header), source)


def parse_latency(spec: str, matrix_text: str | None = None) -> LatencyModel:
    """`fixed:MS`, `uniform:LO:HI`, `lognormal:MU:SIGMA` or `matrix:FILE` (whose text the caller
    reads and passes as `matrix_text`: this package does no I/O)."""
    kind, _, rest = spec.partition(":")
    args = rest.split(":") if rest else []
    if kind == "fixed" and len(args) == 1:
        return Fixed(_number(args[0], "fixed delay"))
    if kind == "uniform" and len(args) == 2:
        low, high = (_number(a, "uniform bound") for a in args)
        if high < low:
            raise LatencyError(f"uniform:{rest}: HI must be >= LO")
        return Uniform(low, high)
    if kind == "lognormal" and len(args) == 2:
        try:
            mu, sigma = float(args[0]), float(args[1])
        except ValueError:
            raise LatencyError(f"lognormal:{rest}: MU and SIGMA must be numbers") from None
        if not (math.isfinite(mu) and math.isfinite(sigma)) or sigma < 0 or mu > 20:
            raise LatencyError(f"lognormal:{rest}: need SIGMA >= 0 and MU <= 20")
        return LogNormal(mu, sigma)
    if kind == "matrix" and rest:
        if matrix_text is None:
            raise LatencyError("matrix: the matrix file's text is needed")
        return parse_matrix(matrix_text, rest)
    raise LatencyError(
        f"unknown latency spec {spec!r}: use fixed:MS, uniform:LO:HI, lognormal:MU:SIGMA "
        "or matrix:FILE"
    )


def parse_regions(spec: str | None, n: int, regions: tuple[str, ...]) -> tuple[int, ...]:
    """Region index of each replica. `None` or ``round-robin``: replica i in region i mod R;
    ``NAME:COUNT,NAME:COUNT,...``: that many replicas per region, in replica order (the counts
    must add up to n); ``NAME,NAME,...`` with n names: one region per replica."""
    if not regions:
        return (0,) * n
    if spec is None or spec == "round-robin":
        return tuple(i % len(regions) for i in range(n))
    index = {name: i for i, name in enumerate(regions)}
    out: list[int] = []
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    counted = all(":" in p for p in parts)
    for part in parts:
        name, _, count = part.partition(":")
        if name not in index:
            raise LatencyError(f"--regions: {name!r} is not a region of the matrix")
        if counted:
            if not count.isdigit():
                raise LatencyError(f"--regions: {part!r}: COUNT must be a number")
            out.extend([index[name]] * int(count))
        elif count:
            raise LatencyError("--regions: give NAME:COUNT for every region, or one NAME per node")
        else:
            out.append(index[name])
    if len(out) != n:
        raise LatencyError(f"--regions assigns {len(out)} replicas, but there are {n}")
    return tuple(out)
