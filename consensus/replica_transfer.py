"""State transfer, block bodies and retransmission (Castro and Liskov, OSDI'99 4.3; TOCS 2002
section 6).

`catch_up` decides where a lagging replica is heading and whom to ask, `body_fetch` which block
bodies to ask for and which to serve, `retransmit` what a STATUS reply carries; this part of
the replica emits the fetches and replies and executes what comes back. It is the only writer
of `CatchUp`.
"""

from __future__ import annotations

from collections.abc import Iterable

from .body_fetch import PURPOSE_VIEW_CHANGE
from .catch_up import fetch_order, transfer_run, weak_claim
from .certificates import check_commit_proof
from .effects import Effect
from .messages import (
    Block,
    BlockBody,
    BlockRequest,
    CommitCertificate,
    CommittedBlock,
    CommittedProof,
    SignedMessage,
    Status,
)
from .replica_checkpoints import Checkpointing
from .retransmit import plan_status_reply
from .view_change import MissingBody, new_view_of


class StateTransfer(Checkpointing):
    """Catch-up towards a checkpoint or commit proof above us, bodies, STATUS replies."""

    # ------------------------------------------------------------------ state transfer

    def on_state_transfer(self, blocks: Iterable[CommittedBlock]) -> list[Effect]:
        """Blocks fetched from peers; only the block and its commit certificate are trusted."""
        out: list[Effect] = []
        limit = 4 * self._config.watermark_window
        run, stopped = transfer_run(blocks, self._chain.seq, limit, self._valid_commit_proof)
        if stopped is not None:
            self.counters[stopped] += 1
        for cb in run:
            self._execute(cb.block, cb.certificate, out)
        if run:
            self._try_execute(out)
            self._after_progress(out)
            if self.catching_up:
                self._emit_fetch(out)
        return self._finish(out)

    def _valid_commit_proof(self, block: Block, cert: CommitCertificate) -> bool:
        return check_commit_proof(self._members, self._config.quorum, block, cert, self._verify)

    def _begin_catch_up(self, target: int, hint: tuple[str, ...], out: list[Effect]) -> None:
        catch_up = self._catch_up
        if target <= catch_up.target or target <= self._chain.seq:
            return
        first = catch_up.target == 0
        catch_up.begin(target, fetch_order(hint, self._id, self._config.members))
        self.counters["catch-up"] += 1
        if first or self._timers.fetch.due(self._tick):
            self._emit_fetch(out)

    def _emit_fetch(self, out: list[Effect]) -> None:
        fetch = self._catch_up.next_fetch(self._chain.seq)
        if fetch is not None:
            self._timers.fetch.mark(self._tick)
            out.append(fetch)

    def _on_committed_proof(self, sm: SignedMessage, p: CommittedProof, out: list[Effect]) -> None:
        block, cert = p.block, p.certificate
        seq = block.seq
        if seq <= self._chain.seq:
            return
        if not self._valid_commit_proof(block, cert):
            self._drop("invalid-commit-proof")
            return
        if seq == self._chain.seq + 1 or self._cp.stable.seq < seq <= self._high():
            self._learn_commit_proof(seq, block, cert)
            self._try_execute(out)
        if seq > self._chain.seq + 1:
            # A certified block above a gap: the gap is committed too, so fetch it.
            hint = (sm.sender, *(rid for rid, _ in cert.signatures))
            self._begin_catch_up(seq - 1 if seq <= self._high() else seq, hint, out)

    def _catch_up_finished(self) -> bool:
        return self._catch_up.finished(self._chain.seq)

    def _tick_catch_up(self, out: list[Effect]) -> None:
        """Retry a fetch that is due; fetch when f+1 CHECKPOINTs or STATUS claims above us
        outlast the lag timer."""
        if self.catching_up and self._timers.fetch.due(self._tick):
            self._emit_fetch(out)
        if (
            self._timers.lag.expired(self._tick, self._config.fetch_retry_ticks)
            and self._catch_up.lag_target > self._chain.seq
        ):
            self._timers.lag.stop()
            self._begin_catch_up(self._catch_up.lag_target, self._catch_up.lag_hint, out)

    def _note_behind(self, seq: int, hint: tuple[str, ...]) -> None:
        self._catch_up.lag_target, self._catch_up.lag_hint = seq, hint
        self._timers.lag.start_if_stopped(self._tick)

    def _note_claim(self, peer: str, last_executed: int) -> None:
        """A STATUS's executed height: f+1 claims above our progress start the lag timer."""
        self._catch_up.claimed[peer] = last_executed
        target, hint = weak_claim(self._catch_up.claimed, self._config.f)
        if target > max(self._chain.seq, self._catch_up.lag_target):
            self._note_behind(target, hint)

    def _restore_catch_up(self) -> None:
        """Recovery below the stable checkpoint: fetch up to it from the replicas that signed it."""
        if self._chain.seq < self._cp.stable.seq:
            signers = tuple(rid for rid, _ in self._cp.stable.signatures)
            self._catch_up.begin(
                self._cp.stable.seq, fetch_order(signers, self._id, self._config.members)
            )

    # ------------------------------------------------------------------ block bodies

    def _want_bodies(
        self, missing: list[MissingBody], first: tuple[str, ...], out: list[Effect]
    ) -> None:
        for seq, digest, sources in missing:
            self._fetcher.want(digest, seq, first + sources, PURPOSE_VIEW_CHANGE)
        self._request_bodies(out)

    def _request_bodies(self, out: list[Effect]) -> None:
        if not len(self._fetcher):
            return
        request = self._fetcher.next_request(self._tick)
        if request is not None:
            to, message = request
            self.counters["block-request"] += 1
            self._send(out, to, self._sign(message))

    def _on_block_request(self, sm: SignedMessage, m: BlockRequest, out: list[Effect]) -> None:
        replies = self._body_server.answer(sm.sender, m.digests, self._tick, self._log.bodies)
        for body in replies:
            self._send(out, sm.sender, self._sign(body))
        if len(m.digests) > self._config.bodies_per_request_max:
            self._drop("block-request-too-long")
        self.counters["block-bodies-sent"] += len(replies)

    def _on_block_body(self, sm: SignedMessage, m: BlockBody, out: list[Effect]) -> None:
        block = m.block
        if block is None or not self._fetcher.received(m.digest, block):
            self._drop("block-body-unwanted")
            return
        self.counters["block-bodies-received"] += 1
        self._store_body(block)
        if self._vs.waiting is not None:
            waiting = self._vs.waiting
            self._on_new_view(waiting, new_view_of(waiting), out)
        if not self._vs.active:
            self._check_view_change_quorum(out)
        self._try_execute(out)
        self._request_bodies(out)

    # ------------------------------------------------------------------ retransmission

    def _on_status(self, sm: SignedMessage, st: Status, out: list[Effect]) -> None:
        peer = sm.sender
        self._note_claim(peer, st.last_executed)
        last = self._status_replied.get(peer)
        if last is not None and self._tick - last < max(1, self._config.status_interval_ticks // 2):
            return
        self._status_replied[peer] = self._tick
        reply = plan_status_reply(
            st,
            cfg=self._config,
            tick=self._tick,
            view=self._vs.view,
            view_active=self._vs.active,
            last_executed=self._chain.seq,
            stable=self._cp.stable,
            own_checkpoints=self._cp.own_checkpoints,
            slots=self._log.slots,
            new_view=self._vs.new_view,
            own_view_change=self._vs.own_view_change,
        )
        for item in reply:
            self._send(out, peer, self._sign(item) if isinstance(item, CommittedProof) else item)
