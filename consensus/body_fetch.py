"""Fetching block bodies by digest: what a replica does when a certificate names a block it lacks.

Theory of operation
-------------------
VIEW-CHANGE and NEW-VIEW carry digests only (Castro and Liskov, TOCS 2002 section 4.4 lets a
replica fetch a request it misses from a peer), and a commit certificate can complete before
the body arrives. The replica records each body it needs here with the peers that vouched for
it (the replicas whose signatures put the digest into a certificate: each of them accepted the
body, and at most f of them lie). The fetcher asks one source at a time for a chunk of at most
`chunk_max` digests, so a response is bounded by `chunk_max` blocks; the next chunk goes out as
soon as the previous one is complete, and a chunk that is not complete after `retry_ticks` is
asked again of the next source. A body counts only if it hashes to the digest asked for at the
sequence number asked for, so a lying source costs time, never safety.

Purposes tag why a body is wanted, so that a finished or abandoned view change drops its wants
without touching the bodies a commit certificate still needs.

Serving is the other side: `BodyServer` picks which of a BLOCK-REQUEST's digests to answer (at
most `chunk_max`, each body we hold, none answered to the same peer within `repeat_ticks`, so a
repeated request costs the asker's retry and not our bandwidth) and remembers what it answered
in a table bounded by `memory_max`. The replica signs and sends the bodies it returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .messages import Block, BlockBody, BlockRequest

PURPOSE_VIEW_CHANGE = "view-change"
PURPOSE_COMMIT = "commit"


@dataclass(slots=True)
class _Want:
    seq: int
    sources: tuple[str, ...]
    purpose: str


class BodyFetcher:
    """Pure bookkeeping of wanted bodies; the replica turns its answers into messages."""

    def __init__(self, own_id: str, chunk_max: int, retry_ticks: int) -> None:
        self._own_id = own_id
        self._chunk_max = chunk_max
        self._retry_ticks = retry_ticks
        self._wanted: dict[bytes, _Want] = {}
        self._outstanding: set[bytes] = set()
        self._sent_tick = 0
        self._attempt = 0

    def __len__(self) -> int:
        return len(self._wanted)

    def __contains__(self, digest: object) -> bool:
        return digest in self._wanted

    def want(self, digest: bytes, seq: int, sources: tuple[str, ...], purpose: str) -> None:
        """Ask for `digest` at `seq` from `sources` (in preference order)."""
        usable = tuple(dict.fromkeys(s for s in sources if s != self._own_id))
        current = self._wanted.get(digest)
        if current is not None:
            merged = tuple(dict.fromkeys(current.sources + usable))
            # A body wanted for a commit outlives the view change that also wanted it.
            keep = PURPOSE_COMMIT if PURPOSE_COMMIT in (purpose, current.purpose) else purpose
            self._wanted[digest] = _Want(current.seq, merged, keep)
            return
        self._wanted[digest] = _Want(seq, usable, purpose)

    def received(self, digest: bytes, block: Block) -> bool:
        """True when `block` is a body we asked for (and it is forgotten as wanted)."""
        want = self._wanted.get(digest)
        if want is None or block.digest != digest or block.seq != want.seq:
            return False
        del self._wanted[digest]
        self._outstanding.discard(digest)
        return True

    def drop_purpose(self, purpose: str) -> None:
        for digest in [d for d, w in self._wanted.items() if w.purpose == purpose]:
            del self._wanted[digest]
            self._outstanding.discard(digest)

    def forget_through(self, seq: int) -> None:
        """Bodies at or below `seq` are no longer needed (executed or below a stable checkpoint)."""
        for digest in [d for d, w in self._wanted.items() if w.seq <= seq]:
            del self._wanted[digest]
            self._outstanding.discard(digest)

    def next_request(self, tick: int) -> tuple[str, BlockRequest] | None:
        """The request to send now, if any: a new chunk, or a retry of a late one elsewhere."""
        if not self._wanted:
            self._outstanding.clear()
            return None
        if self._outstanding:
            if tick - self._sent_tick < self._retry_ticks:
                return None
            self._attempt += 1
        order = sorted(self._wanted.items(), key=lambda item: (item[1].seq, item[0]))
        # Start from the lowest wanted body that has a source; rotate sources between attempts.
        for _digest, first in order:
            if first.sources:
                break
        else:
            self._outstanding.clear()
            return None
        source = first.sources[self._attempt % len(first.sources)]
        chunk = [d for d, w in order if source in w.sources][: self._chunk_max]
        self._outstanding = set(chunk)
        self._sent_tick = tick
        return source, BlockRequest(tuple(chunk))


class BodyServer:
    """Which requested bodies to answer; the replica signs and sends them."""

    def __init__(self, chunk_max: int, repeat_ticks: int, memory_max: int) -> None:
        self._chunk_max = chunk_max
        self._repeat_ticks = repeat_ticks
        self._memory_max = memory_max
        self._sent: dict[tuple[str, bytes], int] = {}  # (peer, digest) -> tick answered

    def answer(
        self, peer: str, digests: Sequence[bytes], tick: int, bodies: Mapping[bytes, Block]
    ) -> list[BlockBody]:
        """The bodies to send `peer` now for its request of `digests` (recorded as answered)."""
        out: list[BlockBody] = []
        for digest in digests[: self._chunk_max]:
            key = (peer, digest)
            last = self._sent.get(key)
            if last is not None and tick - last < self._repeat_ticks:
                continue
            block = bodies.get(digest)
            if block is None:
                continue
            if len(self._sent) >= self._memory_max:
                self._sent.pop(next(iter(self._sent)))
            self._sent[key] = tick
            out.append(BlockBody(digest, block))
        return out

    def forget_old(self, tick: int) -> None:
        """Forget answers older than `repeat_ticks` (called when the window moves)."""
        recent = self._repeat_ticks
        self._sent = {k: t for k, t in self._sent.items() if tick - t < recent}
