"""Fault schedules for research runs: `--fault` specs and their parser.

Times are simulated seconds from the start of the run (a trailing ``s`` is allowed). Replicas are
named by index (``3``) or id (``r3``). A fault without an end lasts until the end of the run.

- ``crash:NODE@T`` or ``crash:NODE@T1-T2``: the replica stops at T1 (losing everything that is
  not persisted) and restarts from its persisted state at T2.
- ``partition:A,B|C,D@T1-T2``: links between replicas of different groups are cut (both ways);
  a replica in no group keeps all its links.
- ``isolate-primary@T`` or ``isolate-primary@T1-T2``: whoever is primary at T1 (the highest view
  among running honest replicas) loses every link.
- ``isolate:NODE@T1-T2``: one chosen replica loses every link.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("crash", "partition", "isolate-primary", "isolate")


class FaultError(ValueError):
    """A fault spec that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class ScheduledFault:
    kind: str
    start_us: int
    end_us: int | None  # None: until the end of the run
    groups: tuple[tuple[int, ...], ...] = ()  # replica indices; one group for crash/isolate

    def describe(self) -> str:
        def sec(us: int) -> str:
            return f"{us / 1e6:g}"

        when = sec(self.start_us) + ("" if self.end_us is None else "-" + sec(self.end_us))
        names = "|".join(",".join(f"r{i}" for i in g) for g in self.groups)
        return f"{self.kind}{':' + names if names else ''}@{when}"


def _seconds_us(text: str, spec: str) -> int:
    value = text.strip().removesuffix("s")
    try:
        seconds = float(value)
    except ValueError:
        raise FaultError(f"{spec}: {text!r} is not a time in seconds") from None
    if not 0 <= seconds < 1e7:
        raise FaultError(f"{spec}: time {text!r} out of range")
    return round(seconds * 1_000_000)


def _node(text: str, n: int, spec: str) -> int:
    name = text.strip()
    digits = name[1:] if name.startswith("r") else name
    if not digits.isdigit() or not 0 <= int(digits) < n:
        raise FaultError(f"{spec}: {name!r} is not a replica (0..{n - 1} or r0..r{n - 1})")
    return int(digits)


def parse_fault(spec: str, n: int) -> ScheduledFault:
    head, at, when = spec.partition("@")
    if not at or not when:
        raise FaultError(f"{spec}: missing @TIME")
    kind, _, target = head.partition(":")
    start_text, dash, end_text = when.partition("-")
    start = _seconds_us(start_text, spec)
    end = _seconds_us(end_text, spec) if dash else None
    if end is not None and end <= start:
        raise FaultError(f"{spec}: the end must come after the start")
    if kind == "isolate-primary":
        if target:
            raise FaultError(f"{spec}: isolate-primary takes no replica")
        return ScheduledFault(kind, start, end)
    if kind in ("crash", "isolate"):
        return ScheduledFault(kind, start, end, ((_node(target, n, spec),),))
    if kind == "partition":
        groups = tuple(
            tuple(sorted({_node(x, n, spec) for x in group.split(",") if x.strip()}))
            for group in target.split("|")
        )
        if len(groups) < 2 or not all(groups):
            raise FaultError(f"{spec}: a partition needs two or more non-empty groups A,B|C,D")
        seen = [i for g in groups for i in g]
        if len(seen) != len(set(seen)):
            raise FaultError(f"{spec}: a replica is in two groups")
        return ScheduledFault(kind, start, end, groups)
    raise FaultError(f"{spec}: unknown fault {kind!r}: use one of {', '.join(KINDS)}")
