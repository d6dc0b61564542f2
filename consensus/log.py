"""The message log and the normal-case predicates (Castro and Liskov, OSDI'99 section 4.2).

Theory of operation
-------------------
The primary of view v (members[v mod n]) cuts a block from its pending requests when
`batch_size_max` are waiting or the oldest has waited `batch_timeout_ticks`, and sends
PRE-PREPARE(v, n, d) with the block attached, for any n inside the watermark window (h, h+L]
(pipelining). A backup accepts it if it is in view v and active, n is in the window, the body
hashes to d, it has accepted no other digest for (v, n), and the timestamp is above the agreed
time of block n-1 and within `timestamp_skew_ms` of its own clock (a pre-prepare whose
predecessor is unknown waits in a bounded stash). Accepting means persisting it, then
broadcasting PREPARE.

prepared(m, v, n, i) holds with the pre-prepare plus quorum-1 matching PREPAREs from distinct
backups; the replica then persists the prepared certificate (an entry of the paper's P set) and
broadcasts COMMIT. A quorum of matching COMMITs (any view, one per sender) forms a commit
certificate; committed-local holds once the body is in hand too, and blocks execute strictly in
sequence order. Commit certificates are proofs on their own, so a replica may execute a block
from one it was sent (retransmission, state transfer) without having prepared it.

The log is one `Slot` per sequence number; the functions here read slots and return
certificates, reasons or an `Admission` (what to do with a pre-prepare), and the replica
stores, signs and sends.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .certificates import sorted_signatures
from .config import ReplicaConfig
from .messages import (
    Block,
    Commit,
    CommitCertificate,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    SignedMessage,
    agreed_timestamp,
)


def pre_prepare_of(sm: SignedMessage) -> PrePrepare:
    m = sm.message
    assert isinstance(m, PrePrepare)
    return m


def vote_of(sm: SignedMessage) -> Prepare | Commit:
    m = sm.message
    assert isinstance(m, Prepare | Commit)
    return m


@dataclass(slots=True)
class Slot:
    """Log entry for one sequence number (the paper's message log, per n)."""

    seq: int
    pre_prepare: SignedMessage | None = None  # accepted in the current view, block attached
    block: Block | None = None
    from_new_view: bool = False
    eff_ts: int | None = None  # agreed-time chain value of the accepted block
    accepted_tick: int = 0
    prepares: dict[str, SignedMessage] = field(default_factory=dict)  # current view only
    own_prepare: SignedMessage | None = None
    prepared: bool = False
    own_commit: SignedMessage | None = None
    commits: dict[str, SignedMessage] = field(default_factory=dict)  # latest view per sender
    commit_cert: CommitCertificate | None = None
    committed_block: Block | None = None

    def reset_view(self) -> None:
        self.pre_prepare = None
        self.block = None
        self.from_new_view = False
        self.eff_ts = None
        self.prepares.clear()
        self.own_prepare = None
        self.prepared = False
        self.own_commit = None


@dataclass(slots=True)
class ExecutedChain:
    """The tip of the executed chain: the last block applied, its digest and its agreed time.
    Only the normal case (`replica_normal`) writes it, when a block executes."""

    seq: int
    digest: bytes
    timestamp_ms: int


@dataclass(slots=True)
class MessageLog:
    """The message log of section 4.2: the slots in (h, H], the prepared certificates (P) with
    their blocks, the bodies by digest, and the pre-prepares waiting for their predecessor's
    time. Only `replica_normal` writes it; a stable checkpoint, a view change and recovery
    change it through that module's methods, so the log has one writer."""

    next_seq: int  # the sequence number the primary assigns next
    max_accepted: int  # the highest sequence number with an accepted pre-prepare this view
    slots: dict[int, Slot] = field(default_factory=dict)
    prepared: dict[int, tuple[PreparedCertificate, Block]] = field(default_factory=dict)
    bodies: dict[bytes, Block] = field(default_factory=dict)
    waiting: dict[int, SignedMessage] = field(default_factory=dict)
    end_seq: int | None = None  # the last sequence number of this validator set, once scheduled


# Verdicts on an incoming vote or pre-prepare: None accepts it for the next checks, BUFFER
# keeps it for later (a higher view, or the next window), IGNORE discards it without counting,
# any other string is a drop reason the replica counts.
BUFFER = "buffer"
IGNORE = ""


class FutureBuffer:
    """Messages refused with BUFFER, kept until the view or the window moves: at most `quota`
    per sender, so one peer cannot fill it."""

    def __init__(self, quota: int) -> None:
        self._quota = quota
        self._messages: list[SignedMessage] = []
        self._counts: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._messages)

    def add(self, sm: SignedMessage) -> bool:
        """Keep `sm`; False if its sender's quota is used up."""
        if self._counts[sm.sender] >= self._quota:
            return False
        self._counts[sm.sender] += 1
        self._messages.append(sm)
        return True

    def take(self) -> list[SignedMessage]:
        """Everything kept, in arrival order, to be dispatched again (and emptied)."""
        messages, self._messages = self._messages, []
        self._counts.clear()
        return messages


def window_verdict(seq: int, high: int, window: int) -> str | None:
    """Inside (.., H]: None; within one more window above H: BUFFER; further: a drop."""
    if seq <= high:
        return None
    return BUFFER if seq <= high + window else "beyond-window"


def pre_prepare_verdict(
    pp: PrePrepare,
    sender: str,
    *,
    view: int,
    view_active: bool,
    primary: str,
    floor: int,
    high: int,
    window: int,
) -> str | None:
    """A PRE-PREPARE must be from the primary of our active view, for n in (floor, H]; floor is
    the higher of the last executed block and h."""
    if pp.view > view:
        return BUFFER
    if pp.view < view:
        return "stale-view"
    if not view_active:
        return "inactive-view"
    if sender != primary:
        return "pre-prepare-not-primary"
    if pp.seq <= floor:
        return "old-seq"
    return window_verdict(pp.seq, high, window)


def prepare_verdict(
    p: Prepare,
    sender: str,
    *,
    view: int,
    view_active: bool,
    primary: str,
    floor: int,
    high: int,
    window: int,
) -> str | None:
    """A PREPARE counts only in our active view, from a backup, for n in (floor, H]."""
    if p.view > view:
        return BUFFER
    if p.view < view or not view_active:
        return "stale-view"
    if sender == primary:
        return "prepare-from-primary"
    if p.seq <= floor:
        return IGNORE
    return window_verdict(p.seq, high, window)


def commit_verdict(
    c: Commit, *, last_executed: int, stable_seq: int, in_log: bool, high: int, window: int
) -> str | None:
    """A COMMIT of any view counts for an unexecuted n up to H; at or below h only while the
    slot is still kept (a late COMMIT can still finish a kept, unexecuted slot)."""
    if c.seq <= last_executed:
        return IGNORE
    if c.seq <= stable_seq and not in_log:
        return IGNORE
    return window_verdict(c.seq, high, window)


def chain_timestamp(
    slots: Mapping[int, Slot], seq: int, last_executed: int, last_ts: int
) -> int | None:
    """Agreed time at seq along the executed chain and the accepted log, if known (cached in
    the slots: each accepted block's agreed time depends only on its predecessors)."""
    if seq == last_executed:
        return last_ts
    if seq < last_executed:
        return None
    slot = slots.get(seq)
    if slot is None or slot.block is None:
        return None
    if slot.eff_ts is None:
        previous = chain_timestamp(slots, seq - 1, last_executed, last_ts)
        if previous is None:
            return None
        slot.eff_ts = agreed_timestamp(previous, slot.block)
    return slot.eff_ts


def check_proposal(
    pp: PrePrepare,
    block: Block,
    cfg: ReplicaConfig,
    validator: Callable[[bytes], bool] | None,
    end_seq: int | None = None,
) -> str | None:
    """Why a proposed block is unacceptable (a drop reason), or None. A block without requests
    is proposed only to carry a validator set to its scheduled end (`end_seq`)."""
    if block.seq != pp.seq:
        return "block-seq-mismatch"
    if block.digest != pp.digest:
        return "digest-mismatch"
    if not block.requests and (end_seq is None or block.seq > end_seq):
        return "empty-block"
    if len(block.requests) > cfg.batch_size_max:
        return "batch-too-large"
    size = 0
    for request in block.requests:
        if not 0 < len(request) <= cfg.request_bytes_max:
            return "request-size"
        size += len(request)
    if size > cfg.batch_bytes_max:
        return "batch-too-large"
    if len(set(block.request_ids)) != len(block.request_ids):
        return "duplicate-request"
    if validator is not None and not all(validator(r) for r in block.requests):
        return "invalid-request"
    return None


# What `admit_pre_prepare` tells the replica to do with a pre-prepare inside the window.
ACCEPT = "accept"
STASH = "stash"  # keep it until the agreed time of block n-1 is known
EQUIVOCATION = "equivocation"
DROP = "drop"


@dataclass(frozen=True, slots=True)
class Admission:
    action: str  # ACCEPT, STASH, EQUIVOCATION, DROP, or IGNORE (a repeat, or the stash is full)
    reason: str = ""  # the drop reason
    block: Block | None = None  # the body to accept
    first: SignedMessage | None = None  # the pre-prepare the new one contradicts
    settled: bool = False  # the predecessor's time is known: the stash entry for n is done


def admit_pre_prepare(
    pp: PrePrepare,
    *,
    slots: Mapping[int, Slot],
    stash: Mapping[int, SignedMessage],
    catching_up: bool,
    bodies: Mapping[bytes, Block],
    cfg: ReplicaConfig,
    validator: Callable[[bytes], bool] | None,
    last_executed: int,
    last_ts: int,
    now_ms: int,
    end_seq: int | None = None,
) -> Admission:
    """Whether a backup accepts a PRE-PREPARE that passed `pre_prepare_verdict` (section 4.2):
    one digest per (v, n), a valid body, and a timestamp above the agreed time of block n-1
    (`chain_timestamp` from the executed tip) and within `timestamp_skew_ms` of `now_ms`."""
    seq = pp.seq
    slot = slots.get(seq)
    if slot is not None and slot.pre_prepare is not None:
        if pre_prepare_of(slot.pre_prepare).digest != pp.digest:
            return Admission(EQUIVOCATION, first=slot.pre_prepare)
        return Admission(IGNORE)
    waiting = stash.get(seq)
    if waiting is not None and pre_prepare_of(waiting).digest != pp.digest:
        return Admission(EQUIVOCATION, first=waiting)
    if catching_up:
        return Admission(DROP, "catching-up")
    block = pp.block if pp.block is not None else bodies.get(pp.digest)
    if block is None:
        return Admission(DROP, "pre-prepare-without-body")
    reason = check_proposal(pp, block, cfg, validator, end_seq)
    if reason is not None:
        return Admission(DROP, reason)
    previous = chain_timestamp(slots, seq - 1, last_executed, last_ts)
    if previous is None:
        if seq not in stash and len(stash) < cfg.watermark_window:
            return Admission(STASH)
        return Admission(IGNORE)
    skew = cfg.timestamp_skew_ms
    if block.timestamp_ms <= previous or abs(block.timestamp_ms - now_ms) > skew:
        return Admission(DROP, "pre-prepare-timestamp", settled=True)
    return Admission(ACCEPT, block=block, settled=True)


def prepared_certificate(
    slot: Slot, view: int, quorum: int, member_index: Mapping[str, int]
) -> PreparedCertificate | None:
    """prepared(m, v, n, i): the accepted pre-prepare and quorum-1 matching PREPAREs."""
    assert slot.pre_prepare is not None
    pp = pre_prepare_of(slot.pre_prepare)
    matching = [
        (s, m.signature) for s, m in slot.prepares.items() if vote_of(m).digest == pp.digest
    ]
    if len(matching) < quorum - 1:
        return None
    return PreparedCertificate(
        view,
        slot.seq,
        pp.digest,
        slot.pre_prepare.signature,
        sorted_signatures(matching, member_index),
    )


def commit_certificate(
    slot: Slot, c: Commit, quorum: int, member_index: Mapping[str, int]
) -> CommitCertificate | None:
    """A quorum of COMMITs matching c's (v, n, d), one per sender."""
    sigs = [
        (s, m.signature)
        for s, m in slot.commits.items()
        if vote_of(m).view == c.view and vote_of(m).digest == c.digest
    ]
    if len(sigs) < quorum:
        return None
    return CommitCertificate(c.view, slot.seq, c.digest, sorted_signatures(sigs, member_index))
