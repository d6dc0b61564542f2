"""Checkpoints and garbage collection (Castro and Liskov, OSDI'99 section 4.3).

Theory of operation
-------------------
After the executor reports the state root of a multiple of `checkpoint_interval` (K), the
replica broadcasts CHECKPOINT(n, block digest, root). A quorum of matching votes is a stable
checkpoint (the certificate C): the low watermark h moves to n, the high watermark H to h + L,
and the log at or below n is discarded. A stable checkpoint above the last executed block means
the replica is behind and catches up (see `catch_up`).

Two deviations from the paper. f+1 matching votes (a weak certificate: at least one correct
replica executed n) above our own progress already tell us we are behind; if normal progress
does not close the gap within `fetch_retry_ticks`, the replica fetches. And a replica keeps its
own votes for checkpoints that are not yet stable and resends them on STATUS: once every replica
has executed up to H only a stable checkpoint opens the window, and a view change cannot replace
it (every new view starts from the same min-s), so one lost vote must not stall the window.

The vote table here is bounded per sender; `plan_collection` returns what a new stable
checkpoint discards (slots, P entries, bodies) and the replica deletes it and its records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .certificates import sorted_signatures
from .config import ReplicaConfig
from .log import Slot
from .messages import (
    GENESIS_CHECKPOINT,
    Block,
    Checkpoint,
    CheckpointCertificate,
    PreparedCertificate,
    Signature,
    SignedMessage,
)


class CheckpointVotes:
    """CHECKPOINT votes by sequence number and sender, above the stable checkpoint."""

    __slots__ = ("_votes",)

    def __init__(self) -> None:
        self._votes: dict[int, dict[str, SignedMessage]] = {}

    def __contains__(self, seq: object) -> bool:
        return seq in self._votes

    def seqs(self) -> list[int]:
        return list(self._votes)

    def add(self, sm: SignedMessage, quota: int) -> list[Signature] | None:
        """Record the vote; the signatures that match it, or None if the sender voted already.
        A sender with `quota` votes loses its oldest one (the useful ones are recent)."""
        c = sm.message
        assert isinstance(c, Checkpoint)
        votes = self._votes.setdefault(c.seq, {})
        if sm.sender in votes:
            return None
        mine = [s for s, v in self._votes.items() if sm.sender in v]
        if len(mine) >= quota:
            oldest = min(mine)
            del self._votes[oldest][sm.sender]
            if not self._votes[oldest]:
                del self._votes[oldest]
            votes = self._votes.setdefault(c.seq, {})
        votes[sm.sender] = sm
        return [(s, m.signature) for s, m in votes.items() if m.message == c]

    def set_own(self, seq: int, own_id: str, vote: SignedMessage) -> None:
        self._votes[seq] = {own_id: vote}

    def discard_through(self, low: int) -> None:
        for seq in [s for s in self._votes if s <= low]:
            del self._votes[seq]


@dataclass(slots=True)
class CheckpointState:
    """The stable checkpoint (C, with h = its sequence number) and the votes towards the next
    ones. Only `replica_checkpoints` writes it."""

    stable: CheckpointCertificate = GENESIS_CHECKPOINT
    votes: CheckpointVotes = field(default_factory=CheckpointVotes)
    awaiting_root: dict[int, bytes] = field(default_factory=dict)  # executed, root not reported
    own_roots: dict[int, bytes] = field(default_factory=dict)
    own_checkpoints: dict[int, tuple[SignedMessage, int]] = field(default_factory=dict)  # tick
    reported: int = 0  # the highest stable checkpoint handed out as a `StableCheckpoint`


@dataclass(frozen=True, slots=True)
class Tally:
    """What one more CHECKPOINT vote tells the replica."""

    behind: tuple[str, ...] | None  # f+1 matching signers above our progress: we are behind
    stable: CheckpointCertificate | None  # a quorum: the new stable checkpoint C


def tally(
    c: Checkpoint,
    matching: list[Signature],
    cfg: ReplicaConfig,
    member_index: Mapping[str, int],
    progress: int,
) -> Tally:
    """f+1 votes matching `c` above `progress` (the higher of the last executed block and the
    lag target already known) include a correct replica that executed c.seq; a quorum of them
    is a stable checkpoint certificate."""
    behind = None
    if len(matching) >= cfg.weak_quorum and c.seq > progress:
        behind = tuple(s for s, _ in matching)
    stable = None
    if len(matching) >= cfg.quorum:
        sigs = sorted_signatures(matching, member_index)
        stable = CheckpointCertificate(c.seq, c.block_digest, c.state_root, sigs)
    return Tally(behind, stable)


def stable_proof(cert: CheckpointCertificate) -> list[SignedMessage]:
    """The certificate as the signed CHECKPOINT messages it is made of."""
    return [
        SignedMessage(Checkpoint(cert.seq, cert.block_digest, cert.state_root), rid, sig)
        for rid, sig in cert.signatures
    ]


def collect_log(
    slots: Mapping[int, Slot], low: int, last_executed: int, window: int
) -> tuple[list[int], set[bytes]]:
    """Slots at or below a new stable checkpoint `low` to discard, and the bodies to keep:
    a slot above `low - window` not yet executed here stays, so late COMMITs can finish it."""
    discard: list[int] = []
    keep_bodies: set[bytes] = set()
    floor = low - window
    for seq in sorted(slots):
        if seq > low:
            break
        slot = slots[seq]
        body = slot.committed_block or slot.block
        if floor < seq and seq > last_executed and body is not None:
            keep_bodies.add(body.digest)
            continue
        discard.append(seq)
    return discard, keep_bodies


@dataclass(frozen=True, slots=True)
class Collection:
    """What a new stable checkpoint discards, in the order the replica deletes it."""

    slots: list[int]  # slots to drop with their pre-prepare and prepared records
    prepared: list[int]  # P entries at or below h
    prepared_records: list[int]  # of those, the ones no kept slot still needs on disk
    bodies: list[bytes]


def plan_collection(
    slots: Mapping[int, Slot],
    prepared: Mapping[int, tuple[PreparedCertificate, Block]],
    bodies: Mapping[bytes, Block],
    low: int,
    last_executed: int,
    window: int,
) -> Collection:
    """The log, P entries and bodies at or below `low` to discard (`collect_log` keeps the
    slots late COMMITs may still finish, with their bodies and prepared records)."""
    discard, keep_bodies = collect_log(slots, low, last_executed, window)
    dropped = set(discard)
    old_prepared = [s for s in prepared if s <= low]
    records = [s for s in old_prepared if s in dropped or s not in slots]
    old_bodies = [d for d, b in bodies.items() if b.seq <= low and d not in keep_bodies]
    return Collection(discard, old_prepared, records, old_bodies)
