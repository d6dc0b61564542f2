"""Checkpoints and garbage collection (Castro and Liskov, OSDI'99 section 4.3).

The vote table, the tally and the collection plan are in `checkpoints`; this part of the replica
signs and sends CHECKPOINTs, installs stable checkpoints and moves the watermarks. It is the
only writer of `CheckpointState`; the log a stable checkpoint collects is dropped by the normal
case (`_collect_log`), and a replica found behind is handed to state transfer.
"""

from __future__ import annotations

from . import state
from .checkpoints import plan_collection, stable_proof, tally
from .effects import Effect, Evidence, StableCheckpoint
from .messages import Block, Checkpoint, CheckpointCertificate, ExecutedTip, SignedMessage
from .replica_core import discard_through
from .replica_requests import RequestHandling
from .state import Restored


class Checkpointing(RequestHandling):
    """CHECKPOINT votes, stable checkpoints and the watermarks."""

    def on_executed(self, seq: int, state_root: bytes) -> list[Effect]:
        """The executor applied block `seq`; only checkpoint sequence numbers matter."""
        out: list[Effect] = []
        digest = self._cp.awaiting_root.pop(seq, None)
        if digest is None:
            return out
        if seq <= self._cp.stable.seq:
            if seq == self._cp.stable.seq and state_root != self._cp.stable.state_root:
                self._divergence(out)
            return self._finish(out)
        self._cp.own_roots[seq] = state_root
        checkpoint = self._sign_checkpoint(Checkpoint(seq, digest, state_root))
        self._broadcast(out, checkpoint)
        self._add_checkpoint_vote(checkpoint, out)
        return self._finish(out)

    def _on_checkpoint(self, sm: SignedMessage, c: Checkpoint, out: list[Effect]) -> None:
        if c.seq == 0 or c.seq % self._config.checkpoint_interval:
            self._drop("checkpoint-seq")
            return
        if c.seq <= self._cp.stable.seq:
            return
        self._add_checkpoint_vote(sm, out)

    def _add_checkpoint_vote(self, sm: SignedMessage, out: list[Effect]) -> None:
        c = sm.message
        assert isinstance(c, Checkpoint)
        cfg = self._config
        quota = cfg.watermark_window // cfg.checkpoint_interval + 2
        matching = self._cp.votes.add(sm, quota)
        if matching is None:
            return
        progress = max(self._chain.seq, self._catch_up.lag_target)
        outcome = tally(c, matching, cfg, self._member_index, progress)
        if outcome.behind is not None:
            # Behind: fetch only if normal progress does not close the gap in time (see tick).
            self._note_behind(c.seq, outcome.behind)
        if outcome.stable is not None:
            self._install_stable(outcome.stable, out)

    def _sign_checkpoint(self, c: Checkpoint) -> SignedMessage:
        """Sign our own CHECKPOINT and keep it for retransmission until a checkpoint at or above
        it is stable (section 4.3 needs 2f+1 of these; one lost copy must not stall the window)."""
        sm = self._sign(c)
        self._cp.own_checkpoints[c.seq] = (sm, self._tick)
        return sm

    def _divergence(self, out: list[Effect]) -> None:
        self.counters["state-divergence"] += 1
        out.append(
            Evidence("state-root-divergence", self._id, tuple(stable_proof(self._cp.stable)))
        )

    def _install_stable(
        self, cert: CheckpointCertificate, out: list[Effect], quiet: bool = False
    ) -> None:
        if cert.seq <= self._cp.stable.seq:
            return
        self._cp.stable = cert
        low = cert.seq
        self._put(state.stable_record(cert))
        own = self._cp.own_roots.get(low)
        if own is not None and own != cert.state_root:
            self._divergence(out)
        window = self._config.watermark_window
        gc = plan_collection(
            self._log.slots, self._log.prepared, self._log.bodies, low, self._chain.seq, window
        )
        self._collect_log(gc, low)
        self._cp.votes.discard_through(low)
        discard_through(self._cp.own_roots, low - 1)
        discard_through(self._cp.own_checkpoints, low)
        discard_through(self._cp.awaiting_root, low - 1)  # h's root is still checked against C
        self._fetcher.forget_through(low)
        self._body_server.forget_old(self._tick)
        if self._chain.seq < low:
            self._try_execute(out)
        if self._chain.seq < low:
            self._begin_catch_up(low, tuple(rid for rid, _ in cert.signatures), out)
        if not quiet:
            self._replay_future(out)
            self._maybe_propose(out)

    def _report_stable(self, out: list[Effect]) -> None:
        """The node stores each stable certificate beside its block, which must exist first;
        a certificate above the executed chain waits until catch-up has executed its block."""
        stable = self._cp.stable
        if stable.seq > self._cp.reported and self._chain.seq >= stable.seq:
            self._cp.reported = stable.seq
            out.append(StableCheckpoint(stable))

    def _await_root(self, block: Block) -> None:
        if block.seq % self._config.checkpoint_interval == 0:
            self._cp.awaiting_root[block.seq] = block.digest

    def _vote_for_restart_tip(self, tip: ExecutedTip) -> None:
        """The vote for the executed tip may have died with the previous process; without it
        the checkpoint that opens the window may lack a quorum (rebroadcast on first tick)."""
        if (
            tip.seq > self._cp.stable.seq
            and tip.seq % self._config.checkpoint_interval == 0
            and tip.state_root
        ):
            self._cp.own_roots[tip.seq] = tip.state_root
            vote = self._sign_checkpoint(Checkpoint(tip.seq, tip.digest, tip.state_root))
            self._cp.votes.set_own(tip.seq, self._id, vote)

    def _restore_stable(self, restored: Restored) -> None:
        self._cp.stable = restored.stable
