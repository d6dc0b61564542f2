"""View changes as pure functions over messages (Castro and Liskov, OSDI'99 4.4 and 4.5.2).

Theory of operation
-------------------
A replica that is waiting for a request (one it holds or one inside an accepted pre-prepare)
and sees no execution for the current timeout sends VIEW-CHANGE(v+1, n, C, P): its stable
checkpoint certificate C (sequence number n = h) and its prepared certificates P above it, and
stops taking part in view v. Seeing f+1 VIEW-CHANGEs for higher views, it joins the smallest of
them (4.5.2). After a quorum of VIEW-CHANGEs for its view it starts the new-view timer; if that
expires before a valid NEW-VIEW it moves on, and the timeout doubles (see `timers`).

The new primary picks a quorum V of VIEW-CHANGEs and computes min-s (the highest stable
checkpoint in V), max-s (the highest prepared sequence number in V) and O: for each n in
(min-s, max-s] a PRE-PREPARE of the prepared digest of the highest view, or of a null block.
NEW-VIEW(v+1, V, O) carries both; backups recompute O from V and reject a NEW-VIEW that differs.

VIEW-CHANGE and NEW-VIEW carry digests only (bounded by the window and n, whatever the block
size); a replica lacking a body named in O fetches it from the replicas that signed the digest
into a prepared certificate (`body_fetch`) before it installs the view, and the new primary does
the same before it sends NEW-VIEW.

Every function here reads messages and returns a decision (`view_change_verdict`,
`admit_new_view` and `plan_new_view` for the three steps a replica takes); the replica owns the
view, the VIEW-CHANGE set and the timers, and is the only one that acts on the answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .certificates import VerifyFn, check_checkpoint_certificate, check_prepared_certificate
from .codec import encode_message, signing_bytes
from .config import ReplicaConfig
from .messages import (
    GENESIS_CHECKPOINT,
    Block,
    CheckpointCertificate,
    HashFn,
    NewView,
    PreparedCertificate,
    PrePrepare,
    SignedMessage,
    ViewChange,
    null_block,
    sha256,
)

# (seq, digest, replicas that vouched for the digest) of a body a view change needs.
MissingBody = tuple[int, bytes, tuple[str, ...]]


@dataclass(slots=True)
class ViewState:
    """The view (v) and what the view change reads and writes. Only `replica_view_change`
    writes it: the safety of a view change depends on these fields and on the log and the
    stable checkpoint, each of which has its own single writer."""

    view: int = 0
    active: bool = True
    new_view: SignedMessage | None = None  # the NEW-VIEW that installed the current view
    waiting: SignedMessage | None = None  # a valid NEW-VIEW whose bodies are coming
    sent_for: int = -1  # the last view this replica sent a NEW-VIEW for
    own_view_change: SignedMessage | None = None
    view_changes: dict[str, SignedMessage] = field(default_factory=dict)
    cause: str = "new-view-received"  # why the last active view was left


def view_change_of(sm: SignedMessage) -> ViewChange:
    m = sm.message
    assert isinstance(m, ViewChange)
    return m


def new_view_of(sm: SignedMessage) -> NewView:
    m = sm.message
    assert isinstance(m, NewView)
    return m


def compute_new_view_order(
    view_changes: Sequence[ViewChange], hash_fn: HashFn = sha256
) -> tuple[CheckpointCertificate, list[tuple[int, bytes]]]:
    """min-s checkpoint and the O set's (seq, digest) list from a set V (section 4.4); gaps
    are filled with the null block's digest under the chain hash `hash_fn`."""
    checkpoint = GENESIS_CHECKPOINT
    for vc in view_changes:
        if vc.checkpoint.seq > checkpoint.seq:
            checkpoint = vc.checkpoint
    min_s = checkpoint.seq
    best: dict[int, PreparedCertificate] = {}
    for vc in view_changes:
        for p in vc.prepared:
            if p.seq <= min_s:
                continue
            current = best.get(p.seq)
            # Ties within one view cannot differ with at most f faults; order them anyway.
            if current is None or (p.view, p.digest) > (current.view, current.digest):
                best[p.seq] = p
    max_s = max(best, default=min_s)
    order = [
        (s, best[s].digest if s in best else null_block(s, hash_fn).digest)
        for s in range(min_s + 1, max_s + 1)
    ]
    return checkpoint, order


def valid_view_change(
    vc: ViewChange, cfg: ReplicaConfig, members: frozenset[str], verify: VerifyFn
) -> bool:
    """C is a valid checkpoint certificate and P holds valid prepared certificates, strictly
    increasing inside (h, h + L] and from views below the one being changed to."""
    if vc.view < 1 or len(vc.prepared) > cfg.watermark_window:
        return False
    if not check_checkpoint_certificate(cfg, members, vc.checkpoint, verify):
        return False
    base = vc.checkpoint.seq
    last = base
    for p in vc.prepared:
        if p.seq <= last or p.seq > base + cfg.watermark_window or p.view >= vc.view:
            return False
        last = p.seq
        if not check_prepared_certificate(cfg, members, p, verify):
            return False
    return True


def view_to_join(view_changes: Iterable[SignedMessage], view: int, weak_quorum: int) -> int | None:
    """The smallest view above ours that f+1 replicas moved to (section 4.5.2), if any."""
    higher = sorted(view_change_of(m).view for m in view_changes if view_change_of(m).view > view)
    return higher[0] if len(higher) >= weak_quorum else None


def count_for_view(view_changes: Iterable[SignedMessage], view: int) -> int:
    return sum(1 for m in view_changes if view_change_of(m).view == view)


def choose_view_changes(
    view_changes: Mapping[str, SignedMessage],
    members: Sequence[str],
    own_id: str,
    view: int,
    quorum: int,
) -> list[SignedMessage]:
    """V: a quorum of VIEW-CHANGEs for `view`, the primary's own first, then member order."""
    candidates = [
        view_changes[m]
        for m in members
        if m in view_changes and view_change_of(view_changes[m]).view == view
    ]
    candidates.sort(key=lambda m: m.sender != own_id)
    return candidates[:quorum]


def validate_new_view(
    nv: NewView,
    cfg: ReplicaConfig,
    members: frozenset[str],
    known: Mapping[str, SignedMessage],
    verify: VerifyFn,
) -> tuple[list[tuple[int, SignedMessage]], CheckpointCertificate, list[ViewChange]] | None:
    """O's (seq, PRE-PREPARE) entries, min-s and V if the NEW-VIEW is valid: V is a quorum of
    distinct members' valid VIEW-CHANGEs for its view (`known` ones are already checked) and O
    is exactly what `compute_new_view_order` derives from V, signed by the new primary."""
    if not cfg.quorum <= len(nv.view_changes) <= cfg.n:
        return None
    seen: set[str] = set()
    vcs: list[ViewChange] = []
    for m in nv.view_changes:
        vc = m.message
        if not isinstance(vc, ViewChange) or vc.view != nv.view:
            return None
        if m.sender in seen or m.sender not in members:
            return None
        seen.add(m.sender)
        previous = known.get(m.sender)
        if not (
            previous is not None and previous.message == vc and previous.signature == m.signature
        ):
            try:
                data = signing_bytes(vc, m.sender)
            except (TypeError, ValueError, OverflowError, AttributeError):
                return None
            if not verify(m.sender, data, m.signature):
                return None
            if not valid_view_change(vc, cfg, members, verify):
                return None
        vcs.append(vc)
    checkpoint, order = compute_new_view_order(vcs, cfg.hash_fn)
    if len(nv.pre_prepares) != len(order):
        return None
    primary = cfg.primary(nv.view)
    entries: list[tuple[int, SignedMessage]] = []
    for (seq, digest), pp_sm in zip(order, nv.pre_prepares, strict=True):
        pp = pp_sm.message
        if not isinstance(pp, PrePrepare) or pp_sm.sender != primary:
            return None
        if pp.view != nv.view or pp.seq != seq or pp.digest != digest:
            return None
        if not verify(primary, signing_bytes(pp, primary), pp_sm.signature):
            return None
        entries.append((seq, pp_sm))
    return entries, checkpoint, vcs


def missing_bodies(
    order: Sequence[tuple[int, bytes]],
    vcs: Sequence[ViewChange],
    floor: int,
    bodies: Mapping[bytes, Block],
    cfg: ReplicaConfig,
) -> list[MissingBody]:
    """The O entries above `floor` whose bodies are not in `bodies`, each with its sources:
    the replicas that signed the digest into a prepared certificate."""
    missing: list[MissingBody] = []
    for seq, digest in order:
        if seq <= floor or digest == null_block(seq, cfg.hash_fn).digest:
            continue
        body = bodies.get(digest)
        if body is not None and body.seq == seq:
            continue
        sources: list[str] = []
        for vc in vcs:
            for p in vc.prepared:
                if p.seq == seq and p.digest == digest:
                    sources.append(cfg.primary(p.view))
                    sources.extend(rid for rid, _ in p.prepares)
        missing.append((seq, digest, tuple(dict.fromkeys(sources))))
    return missing


def body_for(
    seq: int, digest: bytes, floor: int, bodies: Mapping[bytes, Block], hash_fn: HashFn
) -> Block:
    """The block an O entry installs (`missing_bodies` must have come back empty)."""
    nb = null_block(seq, hash_fn)
    if digest == nb.digest or seq <= floor:
        # At or below the floor the entry is executed or covered by a stable checkpoint:
        # installing the view skips it, so no body is needed (and none may be kept).
        return nb
    return bodies[digest]


# `view_change_verdict` for a VIEW-CHANGE from a replica in an older view, or in ours once it
# is active: the NEW-VIEW that ended its view change helps it.
LAGGARD = "laggard"


def oversized(sm: SignedMessage, cfg: ReplicaConfig) -> bool:
    # Digests only: an honest VIEW-CHANGE or NEW-VIEW is bounded by the window and n.
    return len(encode_message(sm)) > cfg.view_change_bytes_max


def view_change_verdict(
    sm: SignedMessage,
    vc: ViewChange,
    *,
    view: int,
    view_active: bool,
    known: Mapping[str, SignedMessage],
    cfg: ReplicaConfig,
    members: frozenset[str],
    verify: VerifyFn,
) -> str | None:
    """None to record the VIEW-CHANGE; LAGGARD; "" (ignore) when it is no newer than the
    sender's last one; otherwise a drop reason."""
    if vc.view < view or (vc.view == view and view_active):
        return LAGGARD
    previous = known.get(sm.sender)
    if previous is not None and view_change_of(previous).view >= vc.view:
        return ""
    if oversized(sm, cfg):
        return "view-change-too-large"
    if not valid_view_change(vc, cfg, members, verify):
        return "view-change-invalid"
    return None


@dataclass(frozen=True, slots=True)
class NewViewAdmission:
    """A drop `reason`, or the bodies still `missing`, or O's entries ready to install."""

    reason: str = ""
    missing: list[MissingBody] = field(default_factory=list)
    entries: list[tuple[int, SignedMessage, Block]] = field(default_factory=list)
    checkpoint: CheckpointCertificate = GENESIS_CHECKPOINT


def admit_new_view(
    sm: SignedMessage,
    nv: NewView,
    *,
    view: int,
    view_active: bool,
    size_checked: bool,
    cfg: ReplicaConfig,
    members: frozenset[str],
    known: Mapping[str, SignedMessage],
    verify: VerifyFn,
    floor: int,
    bodies: Mapping[bytes, Block],
) -> NewViewAdmission:
    """Whether to install a NEW-VIEW: from the primary of a view we may enter, valid
    (`validate_new_view`), and with every body O names above `floor` (the higher of the last
    executed block and h) in `bodies`. `size_checked` is for a NEW-VIEW kept while its bodies
    were coming, which passed the size bound already."""
    if nv.view < view or (nv.view == view and view_active):
        return NewViewAdmission("stale-new-view")
    if nv.view == 0 or sm.sender != cfg.primary(nv.view):
        return NewViewAdmission("new-view-not-primary")
    if not size_checked and oversized(sm, cfg):
        return NewViewAdmission("new-view-too-large")
    validated = validate_new_view(nv, cfg, members, known, verify)
    if validated is None:
        return NewViewAdmission("new-view-invalid")
    entries, checkpoint, vcs = validated
    floor = max(floor, checkpoint.seq)
    digests = [(seq, _pre_prepare_digest(pp)) for seq, pp in entries]
    missing = missing_bodies(digests, vcs, floor, bodies, cfg)
    if missing:
        return NewViewAdmission(missing=missing, checkpoint=checkpoint)
    complete = [
        (seq, pp, body_for(seq, d, floor, bodies, cfg.hash_fn))
        for (seq, pp), (_, d) in zip(entries, digests, strict=True)
    ]
    return NewViewAdmission(entries=complete, checkpoint=checkpoint)


@dataclass(frozen=True, slots=True)
class NewViewPlan:
    """The new primary's NEW-VIEW: V, min-s and O's (seq, digest, body), or the bodies missing."""

    chosen: list[SignedMessage]
    checkpoint: CheckpointCertificate
    order: list[tuple[int, bytes, Block]]
    missing: list[MissingBody]


def plan_new_view(
    view_changes: Mapping[str, SignedMessage],
    cfg: ReplicaConfig,
    own_id: str,
    view: int,
    floor: int,
    bodies: Mapping[bytes, Block],
) -> NewViewPlan:
    """V (`choose_view_changes`), then min-s and O from it; the bodies above `floor` that O
    names must all be in `bodies` before the NEW-VIEW can go out."""
    chosen = choose_view_changes(view_changes, cfg.members, own_id, view, cfg.quorum)
    vcs = [view_change_of(m) for m in chosen]
    checkpoint, order = compute_new_view_order(vcs, cfg.hash_fn)
    floor = max(floor, checkpoint.seq)
    missing = missing_bodies(order, vcs, floor, bodies, cfg)
    if missing:
        return NewViewPlan(chosen, checkpoint, [], missing)
    complete = [
        (seq, digest, body_for(seq, digest, floor, bodies, cfg.hash_fn)) for seq, digest in order
    ]
    return NewViewPlan(chosen, checkpoint, complete, [])


def _pre_prepare_digest(sm: SignedMessage) -> bytes:
    m = sm.message
    assert isinstance(m, PrePrepare)
    return m.digest
