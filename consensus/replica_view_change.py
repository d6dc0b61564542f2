"""View changes (Castro and Liskov, OSDI'99 sections 4.4 and 4.5.2): VIEW-CHANGE, NEW-VIEW and
installing a new view.

V, min-s, max-s, O and the validation of both messages are pure functions in `view_change`; this
part of the replica signs, sends and installs. It is the only writer of `ViewState`; the view's
slots are reset by the normal case (`_reset_view_log`), and a NEW-VIEW's checkpoint is installed
by `replica_checkpoints`.
"""

from __future__ import annotations

from . import state, view_change
from .body_fetch import PURPOSE_VIEW_CHANGE
from .effects import Effect, ViewChanged
from .log import Slot
from .messages import (
    Block,
    CheckpointCertificate,
    NewView,
    PrePrepare,
    SignedMessage,
    ViewChange,
)
from .replica_transfer import StateTransfer
from .state import Restored


class ViewChanging(StateTransfer):
    """Leaving a view, electing the next primary's NEW-VIEW, and installing it."""

    def _build_view_change(self) -> SignedMessage:
        prepared = [
            self._log.prepared[s][0] for s in sorted(self._log.prepared) if s > self._cp.stable.seq
        ]
        sm = self._sign(ViewChange(self._vs.view, self._cp.stable, tuple(prepared)))
        self._vs.own_view_change = sm
        self._vs.view_changes[self._id] = sm
        self._timers.view_change_resend.mark(self._tick)
        return sm

    def _start_view_change(
        self, new_view: int, out: list[Effect], timeout: bool, cause: str
    ) -> None:
        if new_view < self._vs.view or (new_view == self._vs.view and not self._vs.active):
            return
        if self.below_vote_floor and cause != "joined-peers":
            # Below its vote floor it only follows f+1 others into a view (B14): it could not
            # vote in a view it started anyway.
            return
        if self._vs.active:
            # Why the last active view was left; a stalled view change keeps the first cause.
            self._vs.cause = cause
        if timeout:
            self._timers.backoff.grow()
        self.counters["view-change"] += 1
        self._vs.view = new_view
        self._vs.active = False
        self._vs.new_view = None
        self._vs.waiting = None
        self._fetcher.drop_purpose(PURPOSE_VIEW_CHANGE)
        self._reset_view_log()
        self._put(state.view_record(self._vs.view, self._vs.active))
        self._delete(state.KEY_NEW_VIEW)
        self._timers.request.stop()
        self._timers.new_view.stop()
        if self.below_vote_floor:
            # It follows the others into the view but votes in none of it (B14): a VIEW-CHANGE
            # without the prepared certificates it forgot could help drop a committed block.
            self.counters["view-change-below-vote-floor"] += 1
            self._vs.own_view_change = None
            return
        self._broadcast(out, self._build_view_change())
        self._check_view_change_quorum(out)

    def _on_view_change(self, sm: SignedMessage, vc: ViewChange, out: list[Effect]) -> None:
        verdict = view_change.view_change_verdict(
            sm,
            vc,
            view=self._vs.view,
            view_active=self._vs.active,
            known=self._vs.view_changes,
            cfg=self._config,
            members=self._members,
            verify=self._verify,
        )
        if verdict == view_change.LAGGARD:
            self._help_laggard(sm.sender, out)
            return
        if verdict is not None:
            self._refuse(sm, verdict)
            return
        self._vs.view_changes[sm.sender] = sm
        join = view_change.view_to_join(
            self._vs.view_changes.values(), self._vs.view, self._config.weak_quorum
        )
        if join is not None:
            self._start_view_change(join, out, timeout=False, cause="joined-peers")
        if not self._vs.active:
            self._check_view_change_quorum(out)

    def _help_laggard(self, peer: str, out: list[Effect]) -> None:
        last = self._status_replied.get("nv:" + peer)
        if last is not None and self._tick - last < self._config.retransmit_ticks:
            return
        if self._vs.active and self._vs.new_view is not None:
            self._status_replied["nv:" + peer] = self._tick
            self._send(out, peer, self._vs.new_view)

    def _check_view_change_quorum(self, out: list[Effect]) -> None:
        if self._vs.active:
            return
        if (
            view_change.count_for_view(self._vs.view_changes.values(), self._vs.view)
            < self._config.quorum
        ):
            return
        self._timers.new_view.start_if_stopped(self._tick)
        if self.is_primary and self._vs.sent_for < self._vs.view and not self.below_vote_floor:
            self._send_new_view(out)

    def _send_new_view(self, out: list[Effect]) -> None:
        view = self._vs.view
        floor = max(self._chain.seq, self._cp.stable.seq)
        plan = view_change.plan_new_view(
            self._vs.view_changes, self._config, self._id, view, floor, self._log.bodies
        )
        if plan.missing:
            # Digests only in V: fetch the bodies from replicas that prepared them, then retry
            # (the body's arrival calls back here through _check_view_change_quorum).
            self.counters["new-view-missing-body"] += 1
            self._want_bodies(plan.missing, (), out)
            return
        entries = [(s, self._sign(PrePrepare(view, s, d)), b) for s, d, b in plan.order]
        nv = self._sign(NewView(view, tuple(plan.chosen), tuple(pp for _, pp, _ in entries)))
        self._vs.sent_for = view
        self._install_new_view(nv, entries, plan.checkpoint, out, announce=True)

    def _on_new_view(self, sm: SignedMessage, nv: NewView, out: list[Effect]) -> None:
        admission = view_change.admit_new_view(
            sm,
            nv,
            view=self._vs.view,
            view_active=self._vs.active,
            size_checked=self._vs.waiting is sm,
            cfg=self._config,
            members=self._members,
            known=self._vs.view_changes,
            verify=self._verify,
            floor=max(self._chain.seq, self._cp.stable.seq),
            bodies=self._log.bodies,
        )
        if admission.reason:
            self._drop(admission.reason)
        elif admission.missing:
            # Valid but incomplete here: keep it and fetch the bodies, the new primary first.
            self.counters["new-view-awaiting-bodies"] += 1
            self._vs.waiting = sm
            self._want_bodies(admission.missing, (sm.sender,), out)
        else:
            self._vs.waiting = None
            self._install_new_view(sm, admission.entries, admission.checkpoint, out, False)

    def _install_new_view(
        self,
        sm: SignedMessage,
        entries: list[tuple[int, SignedMessage, Block]],
        checkpoint: CheckpointCertificate,
        out: list[Effect],
        announce: bool,
    ) -> None:
        view = view_change.new_view_of(sm).view
        self._vs.view = view
        self._vs.active = True
        self._vs.new_view = sm
        self._vs.own_view_change = None
        self._vs.waiting = None
        self._fetcher.drop_purpose(PURPOSE_VIEW_CHANGE)
        self._reset_view_log()
        self._put(state.view_record(self._vs.view, self._vs.active))
        self._put(state.new_view_record(sm))
        self._timers.request.stop()
        self._timers.new_view.stop()
        for sender in [
            s
            for s, m in self._vs.view_changes.items()
            if view_change.view_change_of(m).view <= view
        ]:
            del self._vs.view_changes[sender]
        if checkpoint.seq > self._cp.stable.seq:
            self._install_stable(checkpoint, out, quiet=True)
        if announce:
            self._broadcast(out, sm)
        accepted: list[Slot] = []
        for seq, pp, block in entries:
            if seq <= self._chain.seq or seq <= self._cp.stable.seq:
                continue
            slot = self._slot(seq)
            self._accept(slot, pp, block, from_new_view=True)
            accepted.append(slot)
        if self.is_primary:
            top = entries[-1][0] if entries else checkpoint.seq
            self._number_after(top)
        self.counters["new-view"] += 1
        out.append(ViewChanged(view, self.primary, self._vs.cause))
        self._vs.cause = "new-view-received"
        for slot in accepted:
            self._vote_prepare(slot, out)
            self._check_prepared(slot, out)
        if not self.is_primary and self._requests.has_proposable:
            self._forward_pending(out, min_age_ticks=0)
        self._replay_future(out)
        self._try_execute(out)
        self._maybe_propose(out)

    def _tick_view_change(self, out: list[Effect]) -> None:
        """One tick between views: the new-view timer, VIEW-CHANGE retransmission."""
        if self._timers.new_view.expired(self._tick, self._timers.backoff.duration()):
            self.counters["new-view-timeout"] += 1
            self._start_view_change(self._vs.view + 1, out, timeout=True, cause="new-view-timeout")
        elif self._timers.view_change_resend.due(self._tick) and self._vs.own_view_change:
            self._timers.view_change_resend.mark(self._tick)
            self._broadcast(out, self._vs.own_view_change)
        if not self._vs.active:
            self._check_view_change_quorum(out)

    def _restore_view(self, restored: Restored) -> None:
        self._vs.view, self._vs.active = restored.view, restored.view_active
        self._vs.new_view = restored.new_view
