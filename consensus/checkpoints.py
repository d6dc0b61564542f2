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

The vote table here is bounded per sender; the functions return what to discard and the replica
deletes it and its records.
"""

from __future__ import annotations

from collections.abc import Mapping

from .log import Slot
from .messages import Checkpoint, CheckpointCertificate, Signature, SignedMessage


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
