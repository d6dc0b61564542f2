"""Retransmission planning: answering a peer's STATUS with what it lacks.

Theory of operation
-------------------
The protocol assumes messages are retransmitted until delivered (OSDI'99 4.2); the
implementation in TOCS 2002 section 6 drives retransmission by status messages. Here every
replica broadcasts a small STATUS(v, active, last executed, stable n) every
`status_interval_ticks`, and a peer answers only with what the sender lacks, in this order: its
stable checkpoint proof, its own CHECKPOINTs above the sender's stable checkpoint, committed
blocks with certificates (at most `proofs_per_status_max`), the NEW-VIEW of a later view or its
own VIEW-CHANGE, or, in the same active view, the pre-prepare and its own votes for slots that
have been stuck for `retransmit_ticks`. Backups also re-forward pending client requests to the
primary (4.1's client retransmission, done by the replica the client reached; see `requests`).

`plan_status_reply` reads the replica's state and returns the messages; the replica signs the
commit proofs, rate-limits per peer and sends.
"""

from __future__ import annotations

from collections.abc import Mapping

from .checkpoints import stable_proof
from .config import ReplicaConfig
from .log import Slot
from .messages import CheckpointCertificate, CommittedProof, SignedMessage, Status


def plan_status_reply(
    st: Status,
    *,
    cfg: ReplicaConfig,
    tick: int,
    view: int,
    view_active: bool,
    last_executed: int,
    stable: CheckpointCertificate,
    own_checkpoints: Mapping[int, tuple[SignedMessage, int]],
    slots: Mapping[int, Slot],
    new_view: SignedMessage | None,
    own_view_change: SignedMessage | None,
) -> list[SignedMessage | CommittedProof]:
    """What to send a peer whose STATUS is `st`, in order (commit proofs still to be signed)."""
    out: list[SignedMessage | CommittedProof] = []
    if st.stable_seq < stable.seq:
        out.extend(stable_proof(stable))
    for seq, (vote, signed_tick) in sorted(own_checkpoints.items()):
        # Votes for checkpoints that are not yet stable: sent once at execution, they may have
        # been lost, and nothing else would ever resend them (the window stays full).
        if seq > st.stable_seq and tick - signed_tick >= cfg.retransmit_ticks:
            out.append(vote)
    if st.last_executed < last_executed:
        top = min(last_executed, st.last_executed + cfg.proofs_per_status_max)
        for seq in range(st.last_executed + 1, top + 1):
            slot = slots.get(seq)
            if slot is None or slot.commit_cert is None or slot.committed_block is None:
                continue  # the receiver fetches what a gap hides
            out.append(CommittedProof(slot.committed_block, slot.commit_cert))
    if st.view < view or (st.view == view and not st.view_active):
        if view_active and new_view is not None:
            out.append(new_view)
        elif not view_active and own_view_change is not None:
            out.append(own_view_change)
    elif st.view == view and st.view_active and view_active:
        floor = max(st.last_executed, last_executed)
        for seq in sorted(slots):
            if seq <= floor:
                continue
            slot = slots[seq]
            if slot.pre_prepare is None or slot.commit_cert is not None:
                continue
            if tick - slot.accepted_tick < cfg.retransmit_ticks:
                continue
            if not slot.from_new_view:
                out.append(slot.pre_prepare)
            if slot.own_prepare is not None:
                out.append(slot.own_prepare)
            if slot.own_commit is not None:
                out.append(slot.own_commit)
    return out
