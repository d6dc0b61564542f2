"""The normal case (Castro and Liskov, OSDI'99 section 4.2): PRE-PREPARE, PREPARE, COMMIT and
execution in sequence order.

The predicates and certificates are in `log`, the request queue in `requests`; this part of the
replica applies them. It is the only writer of the executed chain (`ExecutedChain`), the message
log (`MessageLog`) and the request queue; the methods at the end are how a stable checkpoint, a
view change, a commit proof and recovery change the log.
"""

from __future__ import annotations

from dataclasses import replace

from . import state
from .body_fetch import PURPOSE_COMMIT
from .checkpoints import Collection
from .effects import Effect, Evidence, Execute
from .log import (
    ACCEPT,
    EQUIVOCATION,
    STASH,
    Slot,
    admit_pre_prepare,
    chain_timestamp,
    commit_certificate,
    commit_verdict,
    pre_prepare_of,
    pre_prepare_verdict,
    prepare_verdict,
    prepared_certificate,
    vote_of,
)
from .messages import (
    Block,
    Commit,
    CommitCertificate,
    CommittedBlock,
    Prepare,
    PrePrepare,
    SignedMessage,
    agreed_timestamp,
)
from .replica_core import ReplicaCore, discard_through
from .state import Restored


class NormalCase(ReplicaCore):
    """Requests, the three-phase protocol and execution."""

    # ------------------------------------------------ the primary proposes (4.1, 4.2)

    def _maybe_propose(self, out: list[Effect]) -> None:
        if not (self._can_vote() and self.is_primary):
            return
        cfg = self._config
        if self._log.next_seq <= self._chain.seq:
            self._log.next_seq = self._chain.seq + 1
        while self._requests.has_proposable or self._filling_to_end():
            seq = self._log.next_seq
            in_flight = seq - 1 - self._chain.seq
            if self._requests.has_proposable and not self._requests.ready_to_propose(
                self._tick, cfg, in_flight
            ):
                return
            if seq > self._high():
                return
            previous = self._chain_ts(seq - 1)
            if previous is None:
                self.counters["propose-no-predecessor"] += 1
                return
            timestamp = max(self._now_ms, previous + 1)
            if timestamp > self._now_ms + cfg.timestamp_skew_ms:
                return  # wait until the clock catches up with the parent's time
            block = Block(seq, timestamp, self._requests.next_batch(cfg), cfg.hash_fn)
            pp = self._sign(PrePrepare(self._vs.view, seq, block.digest, block))
            slot = self._slot(seq)
            self._accept(slot, pp, block, from_new_view=False)
            self._log.next_seq = seq + 1
            self._broadcast(out, pp)
            self._check_prepared(slot, out)

    def _filling_to_end(self) -> bool:
        # Empty blocks carry a set to its scheduled end without load, one at a time.
        end = self._log.end_seq
        return (
            end is not None
            and self._log.next_seq <= end
            and self._log.next_seq == (self._chain.seq + 1)
        )

    def _close_at(self, seq: int) -> None:
        if self._log.end_seq is None or seq < self._log.end_seq:
            self._log.end_seq = max(seq, self._chain.seq)

    # ------------------------------------------------ pre-prepare, prepare, commit (4.2)

    def _slot(self, seq: int) -> Slot:
        slot = self._log.slots.get(seq)
        if slot is None:
            slot = self._log.slots[seq] = Slot(seq)
        return slot

    def _chain_ts(self, seq: int) -> int | None:
        return chain_timestamp(self._log.slots, seq, self._chain.seq, self._chain.timestamp_ms)

    def _store_body(self, block: Block) -> None:
        if block.digest not in self._log.bodies:
            # Bodies are only stored for blocks inside the window, which bounds this map.
            self._log.bodies[block.digest] = block

    def _accept(self, slot: Slot, pp: SignedMessage, block: Block, from_new_view: bool) -> None:
        message = pre_prepare_of(pp)
        if message.block is not block:
            pp = replace(pp, message=replace(message, block=block))
        slot.pre_prepare = pp
        slot.block = block
        slot.from_new_view = from_new_view
        slot.accepted_tick = self._tick
        slot.eff_ts = None
        self._chain_ts(slot.seq)
        self._store_body(block)
        if slot.seq > self._log.max_accepted:
            self._log.max_accepted = slot.seq
        self._requests.in_flight(block.request_ids, slot.seq)
        self._put(state.pre_prepare_record(slot.seq, from_new_view, pp))

    def _on_pre_prepare(self, sm: SignedMessage, pp: PrePrepare, out: list[Effect]) -> None:
        verdict = pre_prepare_verdict(
            pp,
            sm.sender,
            view=self._vs.view,
            view_active=self._vs.active,
            primary=self.primary,
            floor=max(self._chain.seq, self._cp.stable.seq),
            high=self._high(),
            window=self._config.watermark_window,
        )
        if verdict is not None:
            self._refuse(sm, verdict)
            return
        seq = pp.seq
        admission = admit_pre_prepare(
            pp,
            slots=self._log.slots,
            stash=self._log.waiting,
            catching_up=self.catching_up,
            bodies=self._log.bodies,
            cfg=self._config,
            validator=self._request_validator,
            last_executed=self._chain.seq,
            last_ts=self._chain.timestamp_ms,
            now_ms=self._now_ms,
            end_seq=self._log.end_seq,
        )
        if admission.settled:
            self._log.waiting.pop(seq, None)
        if admission.action == EQUIVOCATION:
            assert admission.first is not None
            self._equivocation(admission.first, sm, out)
            return
        if admission.action == STASH:
            self._log.waiting[seq] = sm
        if admission.action != ACCEPT or admission.block is None:
            self._refuse(sm, admission.reason)
            return
        slot = self._slot(seq)
        self._accept(slot, sm, admission.block, from_new_view=False)
        self._vote_prepare(slot, out)
        self._check_prepared(slot, out)
        self._accept_waiting(seq + 1, out)

    def _accept_waiting(self, seq: int, out: list[Effect]) -> None:
        """A stashed pre-prepare at `seq` whose predecessor's time is now known."""
        successor = self._log.waiting.pop(seq, None)
        if successor is not None:
            self._on_pre_prepare(successor, pre_prepare_of(successor), out)

    def _equivocation(self, first: SignedMessage, second: SignedMessage, out: list[Effect]) -> None:
        self.counters["equivocation"] += 1
        out.append(Evidence("equivocating-primary", second.sender, (first, second)))
        if pre_prepare_of(second).view == self._vs.view and self._vs.active:
            self._start_view_change(self._vs.view + 1, out, timeout=False, cause="equivocation")

    def _vote_prepare(self, slot: Slot, out: list[Effect]) -> None:
        if slot.pre_prepare is None or slot.own_prepare is not None or not self._can_vote():
            return
        if self.is_primary:
            return
        prepare = self._sign(
            Prepare(self._vs.view, slot.seq, pre_prepare_of(slot.pre_prepare).digest)
        )
        slot.own_prepare = prepare
        slot.prepares[self._id] = prepare
        self._broadcast(out, prepare)

    def _on_prepare(self, sm: SignedMessage, p: Prepare, out: list[Effect]) -> None:
        verdict = prepare_verdict(
            p,
            sm.sender,
            view=self._vs.view,
            view_active=self._vs.active,
            primary=self.primary,
            floor=max(self._chain.seq, self._cp.stable.seq),
            high=self._high(),
            window=self._config.watermark_window,
        )
        if verdict is not None:
            self._refuse(sm, verdict)
            return
        slot = self._slot(p.seq)
        if sm.sender in slot.prepares:
            return
        slot.prepares[sm.sender] = sm
        self._check_prepared(slot, out)

    def _check_prepared(self, slot: Slot, out: list[Effect]) -> None:
        if slot.prepared or slot.pre_prepare is None or not self._can_vote():
            return
        cert = prepared_certificate(slot, self._vs.view, self._config.quorum, self._member_index)
        if cert is None:
            return
        assert slot.block is not None
        slot.prepared = True
        self._log.prepared[slot.seq] = (cert, slot.block)
        self._put(state.prepared_record(cert, slot.block))
        commit = Commit(self._vs.view, slot.seq, cert.digest)
        slot.own_commit = self._sign(commit)
        slot.commits[self._id] = slot.own_commit
        self._broadcast(out, slot.own_commit)
        self._check_committed(slot, commit, out)

    def _on_commit(self, sm: SignedMessage, c: Commit, out: list[Effect]) -> None:
        verdict = commit_verdict(
            c,
            last_executed=self._chain.seq,
            stable_seq=self._cp.stable.seq,
            in_log=c.seq in self._log.slots,
            high=self._high(),
            window=self._config.watermark_window,
        )
        if verdict is not None:
            self._refuse(sm, verdict)
            return
        slot = self._slot(c.seq)
        previous = slot.commits.get(sm.sender)
        if previous is not None and vote_of(previous).view >= c.view:
            return
        slot.commits[sm.sender] = sm
        self._check_committed(slot, c, out)

    def _check_committed(self, slot: Slot, c: Commit, out: list[Effect]) -> None:
        if slot.commit_cert is not None:
            return
        cert = commit_certificate(slot, c, self._config.quorum, self._member_index)
        if cert is None:
            return
        slot.commit_cert = cert
        body = self._log.bodies.get(c.digest)
        if body is not None and body.seq == slot.seq:
            slot.committed_block = body
        else:
            self.counters["committed-without-body"] += 1
            signers = tuple(rid for rid, _ in cert.signatures)
            self._fetcher.want(c.digest, slot.seq, signers, PURPOSE_COMMIT)
            self._request_bodies(out)
        self._try_execute(out)

    def _try_execute(self, out: list[Effect]) -> None:
        executed = False
        while True:
            slot = self._log.slots.get(self._chain.seq + 1)
            if slot is None or slot.commit_cert is None:
                break
            block = slot.committed_block
            if block is None:
                body = self._log.bodies.get(slot.commit_cert.digest)
                if body is None or body.seq != slot.seq:
                    break
                block = slot.committed_block = body
            self._execute(block, slot.commit_cert, out)
            executed = True
        if executed:
            self._after_progress(out)

    def _execute(self, block: Block, cert: CommitCertificate, out: list[Effect]) -> None:
        if self._cp.stable.seq < block.seq <= self._high():
            # Keep the proof until the next stable checkpoint so laggards can be served.
            slot = self._slot(block.seq)
            slot.commit_cert, slot.committed_block = cert, block
        timestamp = agreed_timestamp(self._chain.timestamp_ms, block)
        out.append(Execute(CommittedBlock(block, cert, self._chain.digest, timestamp)))
        self._chain.seq = block.seq
        self._chain.digest = block.digest
        self._chain.timestamp_ms = timestamp
        if len(self._fetcher):
            self._fetcher.forget_through(block.seq)
        self._requests.executed(block.request_ids, self._config.executed_ids_max)
        self._await_root(block)
        if not block.is_null and self._vs.active:
            self._timers.backoff.reset()

    def _after_progress(self, out: list[Effect]) -> None:
        self._timers.request.restart_if(self._waiting_for_execution(), self._tick)
        self._timers.lag.restart_if(self._catch_up.lag_target > self._chain.seq, self._tick)
        if self._catch_up_finished():
            self.counters["caught-up"] += 1
            self._resume_voting(out)
            self._replay_future(out)
        self._accept_waiting(self._chain.seq + 1, out)
        self._maybe_propose(out)

    def _resume_voting(self, out: list[Effect]) -> None:
        for seq in sorted(self._log.slots):
            if seq <= self._chain.seq:
                continue
            slot = self._log.slots[seq]
            self._vote_prepare(slot, out)
            self._check_prepared(slot, out)

    # ------------------------------------------------ the log's other writers

    def _collect_log(self, gc: Collection, low: int) -> None:
        """A new stable checkpoint at `low`: drop what it collects, with its records."""
        for seq in gc.slots:
            self._delete(state.pre_prepare_key(seq))
            self._delete(state.prepared_key(seq))
            del self._log.slots[seq]
        for seq in gc.prepared:
            del self._log.prepared[seq]
        for seq in gc.prepared_records:  # a kept slot keeps the record behind its COMMIT
            self._delete(state.prepared_key(seq))
        for digest in gc.bodies:
            del self._log.bodies[digest]
        discard_through(self._log.waiting, low)
        if self._log.next_seq <= low:
            self._log.next_seq = low + 1

    def _reset_view_log(self) -> None:
        for seq, slot in self._log.slots.items():
            if seq > self._chain.seq:
                if slot.pre_prepare is not None:
                    self._delete(state.pre_prepare_key(seq))
                slot.reset_view()
        self._log.waiting.clear()
        self._log.max_accepted = self._chain.seq
        self._requests.new_view()

    def _number_after(self, top: int) -> None:
        """A new primary continues after O, the stable checkpoint and what it executed."""
        self._log.next_seq = max(top, self._chain.seq, self._cp.stable.seq) + 1

    def _learn_commit_proof(self, seq: int, block: Block, cert: CommitCertificate) -> None:
        slot = self._slot(seq)
        if slot.commit_cert is None or slot.committed_block is None:
            slot.commit_cert, slot.committed_block = cert, block
            self._store_body(block)

    def _restore_log(self, restored: Restored) -> None:
        """Recovery: the slots and P that still apply, after the stable checkpoint is back."""
        self._log.prepared = restored.prepared
        top = max(self._chain.seq, self._cp.stable.seq)
        for slot in restored.slots:
            self._log.slots[slot.seq] = slot
            assert slot.block is not None
            self._store_body(slot.block)
            self._requests.in_flight(slot.block.request_ids, slot.seq)
            top = max(top, slot.seq)
        self._log.max_accepted = top
        self._log.next_seq = top + 1
        for _cert, block in self._log.prepared.values():
            self._store_body(block)
