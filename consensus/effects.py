"""Effects: everything the replica wants done, returned in the order it must be done.

Theory of operation
-------------------
The replica is a pure state machine in the style of etcd/raft's Ready: each entry point returns a
list of effects and the node drains the list in order. Ordering rules the node must keep:

- `Persist` is emitted before any `Send`/`Broadcast` whose content it backs (Castro-Liskov
  TOCS 2002 section 6: a replica that recovers must not contradict messages it sent). The node
  applies all updates of one `Persist` atomically (one WriteBatch) and syncs before sending.
- `Execute` effects come strictly in sequence order (section 4.2: a request executes once it is
  committed-local and every lower sequence number has executed). The executor reports each
  state root back through `Replica.on_executed`.
- Other effects (`FetchBlocks`, `StableCheckpoint`, `ViewChanged`, `Evidence`,
  `RequestRejected`) are advisory.

`EffectDrain` is the one way to drain: the node's runtime, the simulator, the test harness and
the consensus benchmark all iterate one, each with its own handlers, so the order above and the
feedback of `Execute` (the effects of `on_executed` join the queue behind what is already there)
are written once. A caller that takes the next effect before reporting an `Execute` (or saying
it `handed_off` the block to an executor that reports later) gets an error rather than a replica
that silently never checkpoints.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from .messages import CheckpointCertificate, CommittedBlock, SignedMessage


@dataclass(frozen=True, slots=True)
class Send:
    to: str
    message: SignedMessage


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send to every member except the replica itself."""

    message: SignedMessage


@dataclass(frozen=True, slots=True)
class Persist:
    """Key/value updates for the consensus namespace; a value of None deletes the key."""

    updates: tuple[tuple[bytes, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class Execute:
    block: CommittedBlock


@dataclass(frozen=True, slots=True)
class FetchBlocks:
    """Fetch committed blocks [from_seq, to_seq] with their commit certificates from peers and
    hand them to `Replica.on_state_transfer`. Peers in `peers_hint` are the likeliest to have
    them (the signers of the proof that revealed the gap); try them in order."""

    from_seq: int
    to_seq: int
    peers_hint: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StableCheckpoint:
    """A stable checkpoint whose block this replica has executed: store its certificate beside
    the block (receipts prove results with it). Emitted once per certificate, in increasing
    order, after the block at ``certificate.seq`` executed; a restarted replica emits its
    restored one again, since storing it may not have outlived the crash."""

    certificate: CheckpointCertificate


@dataclass(frozen=True, slots=True)
class ViewChanged:
    """The replica entered ``view``. ``cause`` says why this replica left the previous view:
    ``request-timeout`` (a request or accepted block waited past the timer), ``new-view-timeout``
    (the view change itself stalled), ``equivocation`` (the primary signed two proposals),
    ``joined-peers`` (f+1 replicas had already moved on), or ``new-view-received`` (it adopted
    a NEW-VIEW without a view change of its own, e.g. after a restart)."""

    view: int
    primary: str
    cause: str = "new-view-received"


@dataclass(frozen=True, slots=True)
class Evidence:
    """Signed proof of misbehaviour (or of a local divergence) for the audit log."""

    kind: str
    offender: str
    messages: tuple[SignedMessage, ...]


@dataclass(frozen=True, slots=True)
class RequestRejected:
    request_id: bytes
    reason: str


Effect = (
    Send
    | Broadcast
    | Persist
    | Execute
    | FetchBlocks
    | StableCheckpoint
    | ViewChanged
    | Evidence
    | RequestRejected
)


class ExecutionFeedback(Protocol):
    """What a drain reports an executed block to: ``Replica.on_executed``."""

    def on_executed(self, seq: int, state_root: bytes) -> list[Effect]: ...


class EffectDrain:
    """The effects of one replica entry point, in order, with the executor's feedback.

    Iterate it; for each `Execute`, apply the block and call ``executed`` with its state root
    before taking the next effect. ``taken`` counts the effects handed out so far."""

    __slots__ = ("_pending", "_queue", "_replica", "taken")

    def __init__(self, replica: ExecutionFeedback, effects: Iterable[Effect]) -> None:
        self._replica = replica
        self._queue: deque[Effect] = deque(effects)
        self._pending: Execute | None = None
        self.taken = 0

    def __iter__(self) -> Iterator[Effect]:
        while self._queue:
            if self._pending is not None:
                raise RuntimeError(
                    f"block {self._pending.block.seq} was executed but its state root was "
                    "never reported: call executed() before taking the next effect"
                )
            effect = self._queue.popleft()
            self.taken += 1
            if isinstance(effect, Execute):
                self._pending = effect
            yield effect

    def handed_off(self, effect: Execute) -> None:
        """``effect``'s block went to an executor that reports its state root later, through
        the replica's ``on_executed``, in sequence order; the drain goes on meanwhile.

        The replica needs a root only to sign a checkpoint, and takes a late one as it comes;
        the executor must apply blocks in order and hand out each `StableCheckpoint` only after
        the block it names."""
        if effect is not self._pending:
            raise RuntimeError(f"block {effect.block.seq} is not the block being executed")
        self._pending = None

    def executed(self, effect: Execute, state_root: bytes) -> list[Effect]:
        """Report ``effect``'s state root; the replica's answer joins the queue and is returned."""
        if effect is not self._pending:
            raise RuntimeError(f"block {effect.block.seq} is not the block being executed")
        self._pending = None
        more = self._replica.on_executed(effect.block.seq, state_root)
        self._queue.extend(more)
        return more


def report_late_root(replica: ExecutionFeedback, seq: int, state_root: bytes) -> list[Effect]:
    """The state root of a block a drain `handed_off`, from its executor, in sequence order; the
    replica's answer is a fresh list of effects to drain."""
    return replica.on_executed(seq, state_root)
