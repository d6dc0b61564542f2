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
- Other effects (`FetchBlocks`, `ViewChanged`, `Evidence`, `RequestRejected`) are advisory.
"""

from __future__ import annotations

from dataclasses import dataclass

from .messages import CommittedBlock, SignedMessage


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
    Send | Broadcast | Persist | Execute | FetchBlocks | ViewChanged | Evidence | RequestRejected
)
