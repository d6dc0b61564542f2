"""Catch-up by state transfer (Castro and Liskov, OSDI'99 4.3; TOCS 2002 section 6).

Theory of operation
-------------------
A replica learns that it is behind in four ways: a stable checkpoint above its last executed
block (a quorum certificate), f+1 matching CHECKPOINTs above it that normal progress does not
close within `fetch_retry_ticks` (a weak certificate: one correct replica executed that far),
f+1 STATUS messages claiming executed heights above it, under the same timer (one of the f+1
is correct, so the blocks exist; this covers a replica one block short of a checkpoint whose
peers restarted and no longer hold that block's certificate to retransmit), or a commit proof
above a gap (the gap is committed too). It then fetches the missing blocks
with their commit certificates (`FetchBlocks`), accepts only blocks whose certificate checks, and
does not vote until it has executed up to the target. Unlike the paper's partition tree of
state pages, blocks are replayed through the executor: the ledger is the state, and a commit
certificate per block is the proof.

The fetch asks the replicas that vouched for the target first, then the others; each retry
rotates the list so one silent peer cannot stall it. `CatchUp` is plain data the replica owns;
the replica emits the fetch. `transfer_run` picks, from the blocks a fetch returned, the run
that extends the executed chain; the replica executes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .effects import FetchBlocks
from .messages import Block, CommitCertificate, CommittedBlock


def fetch_order(hint: Sequence[str], own_id: str, members: Sequence[str]) -> tuple[str, ...]:
    """The hinted peers first (members only, never ourselves), then every other member."""
    peers = tuple(p for p in hint if p != own_id and p in members)
    others = tuple(m for m in members if m != own_id and m not in peers)
    return peers + others


@dataclass(slots=True)
class CatchUp:
    """Where state transfer is heading and whom to ask; target 0 means not catching up."""

    target: int = 0
    sources: tuple[str, ...] = ()
    attempt: int = 0
    lag_target: int = 0  # the highest f+1 CHECKPOINT or STATUS claim seen above our progress
    lag_hint: tuple[str, ...] = ()
    # The executed height each member's latest STATUS claimed: one entry per member.
    claimed: dict[str, int] = field(default_factory=dict)

    def behind(self, last_executed: int) -> bool:
        return self.target > last_executed

    def begin(self, target: int, sources: tuple[str, ...]) -> None:
        self.target = target
        self.sources = sources

    def finished(self, last_executed: int) -> bool:
        """True once, when a catch-up in progress has reached its target."""
        if self.target and last_executed >= self.target:
            self.target = 0
            self.attempt = 0
            return True
        return False

    def next_fetch(self, last_executed: int) -> FetchBlocks | None:
        """The next fetch, starting one source further along than the previous one."""
        if not self.behind(last_executed) or not self.sources:
            return None
        k = self.attempt % len(self.sources)
        self.attempt += 1
        hint = self.sources[k:] + self.sources[:k]
        return FetchBlocks(last_executed + 1, self.target, hint)


def weak_claim(claimed: Mapping[str, int], f: int) -> tuple[int, tuple[str, ...]]:
    """The highest height that at least f+1 members claim to have executed (so at least one
    correct replica has), and the members claiming it or more; (0, ()) with f or fewer claims."""
    ordered = sorted(claimed.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(ordered) <= f:
        return 0, ()
    target = ordered[f][1]
    return target, tuple(member for member, height in ordered if height >= target)


def transfer_run(
    blocks: Iterable[CommittedBlock],
    last_executed: int,
    limit: int,
    valid: Callable[[Block, CommitCertificate], bool],
) -> tuple[list[CommittedBlock], str | None]:
    """Of the first `limit` fetched blocks by sequence number, the consecutive ones right
    after `last_executed` whose commit proof is `valid` (only the block and its certificate
    are trusted), and the counter naming why the run stopped early (a gap, a bad proof)."""
    run: list[CommittedBlock] = []
    expected = last_executed + 1
    for cb in sorted(blocks, key=lambda b: b.block.seq)[:limit]:
        if cb.block.seq < expected:
            continue
        if cb.block.seq != expected:
            return run, "state-transfer-gap"
        if not valid(cb.block, cb.certificate):
            return run, "state-transfer-invalid"
        run.append(cb)
        expected += 1
    return run, None
