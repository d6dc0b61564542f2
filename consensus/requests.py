"""The request queue: client requests waiting to be ordered (Castro and Liskov, OSDI'99 4.1).

Theory of operation
-------------------
A request is opaque bytes identified by its chain hash (`ReplicaConfig.hash_fn`). The queue
keeps, in arrival order:

- pending: every admitted request not yet executed, with the tick it arrived;
- proposable: the pending requests that no accepted pre-prepare of the current view carries
  (what the primary may still put in a block, and what a backup re-forwards);
- in flight: request id -> sequence number of the accepted pre-prepare that carries it;
- recently executed ids (bounded), so a late retransmission is not queued again.

It deduplicates its own content and never offers a request that is in flight. Blocks still may
repeat a request after view changes (a block reproposed from an older view next to a newer one),
so the executor must skip ids it has already applied against replicated state (the ledger's
transaction index), as PBFT does with its last-reply table. The queue decides; the replica
counts, rejects and sends.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

from .config import ReplicaConfig
from .messages import RequestForward, request_id

RequestValidator = Callable[[bytes], bool]

# Refusals from `admit`: "size" is a drop, "duplicate" is counted, the others reject.
REFUSED_SIZE = "size"
REFUSED_DUPLICATE = "duplicate"
REFUSED_FULL = "queue-full"
REFUSED_INVALID = "invalid"


class RequestQueue:
    """Pending, proposable, in-flight and recently executed request ids of one replica."""

    __slots__ = ("_in_flight", "_pending", "_proposable", "_recent")

    def __init__(self) -> None:
        self._pending: dict[bytes, tuple[bytes, int]] = {}
        self._proposable: dict[bytes, None] = {}
        self._in_flight: dict[bytes, int] = {}
        # An OrderedDict, not a dict: the oldest id goes for every one added, and a dict finds
        # its first live key by scanning every slot deleted before it (until its next resize):
        # at 200,000 ids that scan took a quarter of a loaded node's interpreter time.
        self._recent: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def has_proposable(self) -> bool:
        return bool(self._proposable)

    def request(self, rid: bytes) -> bytes:
        return self._pending[rid][0]

    def admit(
        self,
        request: bytes,
        tick: int,
        cfg: ReplicaConfig,
        validator: RequestValidator | None,
    ) -> tuple[bytes | None, str | None]:
        """(request id, None) when queued, else (request id or None, refusal)."""
        if not isinstance(request, bytes) or not 0 < len(request) <= cfg.request_bytes_max:
            return None, REFUSED_SIZE
        rid = request_id(request, cfg.hash_fn)
        if rid in self._pending or rid in self._recent:
            return rid, REFUSED_DUPLICATE
        if len(self._pending) >= cfg.pending_requests_max:
            return rid, REFUSED_FULL
        if validator is not None and not validator(request):
            return rid, REFUSED_INVALID
        self._pending[rid] = (request, tick)
        if rid not in self._in_flight:
            self._proposable[rid] = None
        return rid, None

    def ready_to_propose(self, tick: int, cfg: ReplicaConfig, blocks_in_flight: int) -> bool:
        """A full block is waiting, the oldest proposable request waited the batch timeout, or
        the pipeline has room for an eager proposal (``cfg.eager_blocks``)."""
        if blocks_in_flight < cfg.eager_blocks or len(self._proposable) >= cfg.batch_size_max:
            return True
        first = next(iter(self._proposable))
        return tick - self._pending[first][1] >= cfg.batch_timeout_ticks

    def next_batch(self, cfg: ReplicaConfig) -> tuple[bytes, ...]:
        """The oldest proposable requests that fit one block."""
        requests: list[bytes] = []
        size = 0
        for rid in self._proposable:
            request = self._pending[rid][0]
            if requests and size + len(request) > cfg.batch_bytes_max:
                break
            requests.append(request)
            size += len(request)
            if len(requests) >= cfg.batch_size_max:
                break
        return tuple(requests)

    def forward_batch(self, tick: int, min_age_ticks: int, cfg: ReplicaConfig) -> list[bytes]:
        """Proposable requests at least `min_age_ticks` old, at most one block's worth: the
        primary cannot propose more at once, and a forward of every pending request would grow
        with the backlog (large requests made it tens of MB)."""
        batch: list[bytes] = []
        size = 0
        for rid in self._proposable:
            request, arrived = self._pending[rid]
            if tick - arrived < min_age_ticks:
                break
            if batch and size + len(request) > cfg.batch_bytes_max:
                break
            batch.append(request)
            size += len(request)
            if len(batch) >= cfg.batch_size_max:
                break
        return batch

    def in_flight(self, rids: Iterable[bytes], seq: int) -> None:
        """An accepted pre-prepare at `seq` carries these requests."""
        for rid in rids:
            self._in_flight[rid] = seq
            self._proposable.pop(rid, None)

    def executed(self, rids: Iterable[bytes], keep_max: int) -> None:
        recent = self._recent
        for rid in rids:
            self._pending.pop(rid, None)
            self._proposable.pop(rid, None)
            self._in_flight.pop(rid, None)
            recent[rid] = None
        while len(recent) > keep_max:
            recent.popitem(last=False)

    def new_view(self) -> None:
        """A view change discards accepted pre-prepares: every pending request is proposable."""
        self._in_flight.clear()
        self._proposable = dict.fromkeys(self._pending)


def forward_too_large(m: RequestForward, cfg: ReplicaConfig) -> bool:
    # A forward holds at most one block's worth, as `RequestQueue.forward_batch` builds it.
    return len(m.requests) > cfg.batch_size_max or (
        sum(len(r) for r in m.requests) > cfg.batch_bytes_max
    )
