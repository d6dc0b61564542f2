"""What every part of the replica shares: identity, the fields and who writes them, and the
plumbing that turns decisions into effects.

`Replica` is assembled from one class per sub-protocol, each in its own module and readable
against one section of Castro and Liskov (OSDI'99; TOCS 2002):

- `replica_normal`: pre-prepare, prepare, commit and execution (4.2);
- `replica_requests`: admitting and forwarding requests, and the request timer (4.1, 4.5.2);
- `replica_checkpoints`: CHECKPOINT votes, stable checkpoints and garbage collection (4.3);
- `replica_transfer`: state transfer, block bodies and STATUS replies (4.3, TOCS 6);
- `replica_view_change`: VIEW-CHANGE and NEW-VIEW (4.4, 4.5.2);
- `replica`: the entry points, the tick, dispatch and recovery.

The classes stack in that order (core, normal case, requests, checkpoints, transfer, view
change, `Replica`); each tick runs every part's timers in one fixed order (`Replica.tick`).

Each piece of consensus state is one small class with one writer. `ExecutedChain` and
`MessageLog` (in `log`) are written only by `replica_normal`, `CheckpointState` (in
`checkpoints`) only by `replica_checkpoints`, `CatchUp` (in `catch_up`) only by
`replica_transfer`, and `ViewState` (in `view_change`) only by `replica_view_change`; another
sub-protocol that needs one changed calls a method of its writer (a stable checkpoint asks the
normal case to collect the log, a view change asks it to reset the view's slots).
`tests/consensus/test_replica_ownership.py` checks this. Every sub-protocol may read every
field. The abstract methods below are the calls one sub-protocol makes into another that
comes later in the class order; everything is still one object, one owner and one effect list.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from typing import Any

from .body_fetch import BodyFetcher, BodyServer
from .catch_up import CatchUp
from .certificates import VerifyFn
from .checkpoints import CheckpointState
from .codec import signing_bytes
from .config import ReplicaConfig
from .crypto import Signer
from .effects import Broadcast, Effect, Persist, Send
from .log import BUFFER, IGNORE, ExecutedChain, FutureBuffer, MessageLog
from .messages import Block, Message, NewView, SignedMessage
from .requests import RequestQueue, RequestValidator
from .state import Record
from .timers import Timers
from .view_change import ViewState


def discard_through(by_seq: dict[int, Any], seq: int) -> None:
    for key in [k for k in by_seq if k <= seq]:
        del by_seq[key]


class ReplicaCore(ABC):
    """The fields of one replica and the plumbing every sub-protocol uses."""

    # Identity and configuration, fixed at construction.
    _config: ReplicaConfig
    _id: str
    _members: frozenset[str]
    _member_index: dict[str, int]
    _signer: Signer
    _verify: VerifyFn
    _request_validator: RequestValidator | None
    counters: Counter[str]
    # Consensus state, one writer each (see the module documentation).
    _chain: ExecutedChain
    _log: MessageLog
    _cp: CheckpointState
    _vs: ViewState
    _catch_up: CatchUp
    # Components with their own methods, each with a declared set of writers that
    # tests/consensus/test_replica_ownership.py checks (SHARED_WRITERS): the request queue
    # (requests, normal case), the body fetcher and server (state transfer, view change,
    # normal case, checkpoints), the timers (each timeout is started and stopped by the
    # sub-protocol it times; the view change also stops the request timer), the future
    # buffer and the reply rate limits.
    _requests: RequestQueue
    _fetcher: BodyFetcher
    _body_server: BodyServer
    _timers: Timers
    _future: FutureBuffer
    _status_replied: dict[str, int]
    # The logical clock, and the records to persist before the next message leaves.
    _tick: int
    _now_ms: int
    _started: bool
    _dirty: dict[bytes, bytes | None]

    # ------------------------------------------------------------------ shared reads

    @property
    def primary(self) -> str:
        return self._config.primary(self._vs.view)

    @property
    def is_primary(self) -> bool:
        return self.primary == self._id

    @property
    def catching_up(self) -> bool:
        return self._catch_up.behind(self._chain.seq)

    @property
    def below_vote_floor(self) -> bool:
        """Votes this replica may have signed before it lost its records lie ahead (B14)."""
        return self._chain.seq < self._config.vote_floor

    def _can_vote(self) -> bool:
        return self._vs.active and not self.catching_up and not self.below_vote_floor

    def _high(self) -> int:
        high = self._cp.stable.seq + self._config.watermark_window
        end = self._log.end_seq
        return high if end is None else min(high, end)

    def _waiting_for_execution(self) -> bool:
        # A scheduled end still ahead is progress owed too: a primary that does not fill the
        # gap is replaced like one that sits on requests.
        end = self._log.end_seq
        return (
            bool(self._requests)
            or self._log.max_accepted > self._chain.seq
            or (end is not None and self._chain.seq < end)
        )

    # ------------------------------------------------------------------ plumbing

    def _finish(self, out: list[Effect]) -> list[Effect]:
        self._flush(out)
        self._report_stable(out)
        return out

    def _flush(self, out: list[Effect]) -> None:
        if self._dirty:
            out.append(Persist(tuple(self._dirty.items())))
            self._dirty = {}

    def _broadcast(self, out: list[Effect], sm: SignedMessage) -> None:
        self._flush(out)
        out.append(Broadcast(sm))

    def _send(self, out: list[Effect], to: str, sm: SignedMessage) -> None:
        self._flush(out)
        out.append(Send(to, sm))

    def _sign(self, message: Message) -> SignedMessage:
        data = signing_bytes(message, self._id)
        return SignedMessage(message, self._id, self._signer.sign(data))

    def _drop(self, reason: str) -> None:
        self.counters["drop-" + reason] += 1

    def _put(self, record: Record) -> None:
        self._dirty[record[0]] = record[1]

    def _delete(self, key: bytes) -> None:
        self._dirty[key] = None

    def _refuse(self, sm: SignedMessage, verdict: str) -> None:
        if verdict == BUFFER:
            if not self._future.add(sm):
                self._drop("future-buffer-full")
        elif verdict != IGNORE:
            self._drop(verdict)

    def _replay_future(self, out: list[Effect]) -> None:
        for sm in self._future.take():
            self._dispatch(sm, out)

    # ------------------------------------------------ calls across sub-protocols

    @abstractmethod
    def _dispatch(self, sm: SignedMessage, out: list[Effect]) -> None:
        """Handle an authenticated message (`replica`)."""

    @abstractmethod
    def _await_root(self, block: Block) -> None:
        """An executed block whose state root a checkpoint needs (`replica_checkpoints`)."""

    @abstractmethod
    def _report_stable(self, out: list[Effect]) -> None:
        """Hand out a new stable checkpoint once its block executed (`replica_checkpoints`)."""

    @abstractmethod
    def _note_behind(self, seq: int, hint: tuple[str, ...]) -> None:
        """f+1 CHECKPOINTs or STATUS claims above our progress: fetch unless it closes
        (`replica_transfer`)."""

    @abstractmethod
    def _catch_up_finished(self) -> bool:
        """True once, when a catch-up has executed to its target (`replica_transfer`)."""

    @abstractmethod
    def _begin_catch_up(self, target: int, hint: tuple[str, ...], out: list[Effect]) -> None:
        """Start state transfer towards `target` (`replica_transfer`)."""

    @abstractmethod
    def _request_bodies(self, out: list[Effect]) -> None:
        """Ask for the next block bodies we lack (`replica_transfer`)."""

    @abstractmethod
    def _start_view_change(
        self, new_view: int, out: list[Effect], timeout: bool, cause: str
    ) -> None:
        """Leave the current view for `new_view` (`replica_view_change`)."""

    @abstractmethod
    def _on_new_view(self, sm: SignedMessage, nv: NewView, out: list[Effect]) -> None:
        """Admit a NEW-VIEW (`replica_view_change`)."""

    @abstractmethod
    def _check_view_change_quorum(self, out: list[Effect]) -> None:
        """A quorum of VIEW-CHANGEs starts the new-view timer (`replica_view_change`)."""
