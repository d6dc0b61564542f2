"""Byzantine wrappers around real replicas.

A wrapper runs an honest `Replica` inside and corrupts what leaves it (or adds messages of its
own), signing with the replica's real key where a real attacker could. Modes:

- silent: never proposes (drops its PRE-PREPAREs and NEW-VIEWs)                              B9
- equivocate: sends a different PRE-PREPARE to each backup                                    B1
- slow: delays each PRE-PREPARE by 0.9 x the view-change timeout                              B8
- replay: re-sends old messages it received (other replicas' and its own)                     B5
- forge: bad signatures, another member's name, a non-member, duplicated signers in
  certificates, pre-prepares whose body does not match the digest                        B3 B4 B6
- mutate-view / mutate-seq / mutate-ts-future / mutate-ts-past: corrupts one field of each
  PRE-PREPARE it sends and re-signs it                                                         B7
- bad-transfer: serves forged blocks and certificates to state transfer, and answers
  BLOCK-REQUESTs with bodies that do not hash to the digest asked for                        B13
- forge also sends unsolicited BLOCK-BODYs and over-long BLOCK-REQUESTs (drawn from a second
  random stream, so the first stream and every older seed replay as before)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from ibledger.consensus import (
    Block,
    BlockBody,
    BlockRequest,
    Broadcast,
    Checkpoint,
    Commit,
    CommitCertificate,
    CommittedBlock,
    CommittedProof,
    Effect,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    Replica,
    ReplicaConfig,
    Send,
    SignedMessage,
    Status,
    ViewChange,
    signing_bytes,
)
from ibledger.consensus.messages import Message

from .signing import Signer

MODES = (
    "silent",
    "equivocate",
    "slow",
    "replay",
    "forge",
    "mutate-view",
    "mutate-seq",
    "mutate-ts-future",
    "mutate-ts-past",
    "bad-transfer",
)

Defer = Callable[[int, Effect], None]


class ByzantineReplica:
    def __init__(
        self,
        inner: Replica,
        mode: str,
        signer: Signer,
        rng: random.Random,
        defer: Defer,
        tick_ms: int,
    ) -> None:
        if mode not in MODES:
            raise ValueError(mode)
        self.inner = inner
        self.mode = mode
        self._signer = signer
        self._rng = rng
        # Reading the state does not advance `rng`; the new forgeries draw from this stream.
        self._body_rng = random.Random(repr(rng.getstate()[1][:8]) + inner.replica_id)
        self._defer = defer
        self._tick_ms = tick_ms
        self._config: ReplicaConfig = inner.config
        self._recorded: list[SignedMessage] = []
        self._now_ms = 0
        self.injected = 0

    # The cluster reads these like a Replica's.
    @property
    def replica_id(self) -> str:
        return self.inner.replica_id

    @property
    def last_executed(self) -> int:
        return self.inner.last_executed

    @property
    def view(self) -> int:
        return self.inner.view

    def _sign(self, message: Message, sender: str | None = None) -> SignedMessage:
        sender = sender or self.replica_id
        data = signing_bytes(message, sender)
        return SignedMessage(message, sender, self._signer.sign(data))

    def tick(self, now_ms: int) -> list[Effect]:
        self._now_ms = now_ms
        out = self._transform(self.inner.tick(now_ms))
        if self.mode == "replay" and self._recorded and self._rng.random() < 0.3:
            for _ in range(self._rng.randint(1, 3)):
                old = self._rng.choice(self._recorded)
                to = self._rng.choice([m for m in self._config.members if m != self.replica_id])
                out.append(Send(to, old))
                self.injected += 1
        if self.mode in ("forge", "bad-transfer") and self._rng.random() < 0.3:
            forged = self._forge()
            if forged is not None:
                out.append(Broadcast(forged))
                self.injected += 1
        return out

    def step(self, message: SignedMessage) -> list[Effect]:
        if self.mode == "replay":
            if len(self._recorded) < 400:
                self._recorded.append(message)
            else:
                self._recorded[self._rng.randrange(400)] = message
        return self._transform(self.inner.step(message))

    def submit(self, request: bytes, now_ms: int) -> list[Effect]:
        return self._transform(self.inner.submit(request, now_ms))

    def on_executed(self, seq: int, state_root: bytes) -> list[Effect]:
        return self._transform(self.inner.on_executed(seq, state_root))

    def on_state_transfer(self, blocks: list[CommittedBlock]) -> list[Effect]:
        return self._transform(self.inner.on_state_transfer(blocks))

    # ------------------------------------------------------------------ outgoing corruption

    def _transform(self, effects: list[Effect]) -> list[Effect]:
        out: list[Effect] = []
        for e in effects:
            replaying = self.mode == "replay" and len(self._recorded) < 400
            if replaying and isinstance(e, Broadcast | Send):
                self._recorded.append(e.message)
            if not isinstance(e, Broadcast | Send):
                out.append(e)
                continue
            m = e.message.message
            if (
                isinstance(m, PrePrepare)
                and m.block is not None
                and e.message.sender == (self.replica_id)
            ):
                out.extend(self._corrupt_pre_prepare(e, m, m.block))
            elif isinstance(m, NewView) and self.mode == "silent":
                continue
            elif isinstance(m, BlockBody) and m.block is not None and self.mode == "bad-transfer":
                lie = Block(
                    m.block.seq, m.block.timestamp_ms, (b"tx:lie|xxxxxxxx",), self._config.hash_fn
                )
                forged = self._sign(BlockBody(m.digest, lie))
                self.injected += 1
                out.append(Send(e.to, forged) if isinstance(e, Send) else Broadcast(forged))
            else:
                out.append(e)
        return out

    def _corrupt_pre_prepare(
        self, e: Broadcast | Send, pp: PrePrepare, block: Block
    ) -> list[Effect]:
        mode = self.mode
        if mode == "silent":
            return []
        if mode == "slow":
            delay = int(0.9 * self._config.view_change_timeout_ticks * self._tick_ms)
            self._defer(delay, e)
            return []
        if mode == "equivocate":
            others = [m for m in self._config.members if m != self.replica_id]
            if len(block.requests) > 1:
                alt = Block(
                    block.seq, block.timestamp_ms, block.requests[:-1], self._config.hash_fn
                )
            else:
                alt = Block(block.seq, block.timestamp_ms + 1, block.requests, self._config.hash_fn)
            alt_pp = self._sign(PrePrepare(pp.view, pp.seq, alt.digest, alt))
            self.injected += 1
            # The same backups always get the same version of a given (view, seq).
            cut = 1 + (pp.seq + pp.view) % max(1, len(others) - 1)
            targets = others if isinstance(e, Broadcast) else [e.to]
            return [Send(to, e.message if others.index(to) < cut else alt_pp) for to in targets]
        if mode == "mutate-view":
            mutated = self._sign(replace(pp, view=pp.view + 1))
        elif mode == "mutate-seq":
            seq = pp.seq + 3 * self._config.watermark_window
            b = Block(seq, block.timestamp_ms, block.requests, self._config.hash_fn)
            mutated = self._sign(PrePrepare(pp.view, seq, b.digest, b))
        elif mode == "mutate-ts-future":
            b = Block(
                block.seq, block.timestamp_ms + 3_600_000, block.requests, self._config.hash_fn
            )
            mutated = self._sign(PrePrepare(pp.view, pp.seq, b.digest, b))
        elif mode == "mutate-ts-past":
            b = Block(block.seq, 1, block.requests, self._config.hash_fn)
            mutated = self._sign(PrePrepare(pp.view, pp.seq, b.digest, b))
        else:
            return [e]
        self.injected += 1
        return [Broadcast(mutated) if isinstance(e, Broadcast) else Send(e.to, mutated)]

    # ------------------------------------------------------------------ forged traffic

    def _forge(self) -> SignedMessage | None:
        rng = self._rng
        cfg = self._config
        view = self.inner.view
        seq = self.inner.last_executed + 1
        others = [m for m in cfg.members if m != self.replica_id]
        junk = Block(
            seq,
            self._now_ms,
            (b"tx:forged:%d|xxxxxxxx" % rng.randrange(10**9),),
            self._config.hash_fn,
        )
        me = self.replica_id
        if self._body_rng.random() < 0.2:
            if self._body_rng.random() < 0.5:  # a body nobody asked for
                return self._sign(BlockBody(junk.digest, junk))
            digests = tuple(
                self._body_rng.randbytes(32) for _ in range(4 * cfg.bodies_per_request_max)
            )
            return self._sign(BlockRequest(digests))
        choice = rng.randrange(9)
        if choice == 0:  # bad signature
            return SignedMessage(
                Prepare(view, seq, junk.digest), me, bytes(rng.randrange(256) for _ in range(32))
            )
        if choice == 1:  # another member's name, signed with my key
            m = Commit(view, seq, junk.digest)
            victim = rng.choice(others)
            return SignedMessage(m, victim, self._signer.sign(signing_bytes(m, victim)))
        if choice == 2:  # non-member
            m2 = Prepare(view, seq, junk.digest)
            return SignedMessage(m2, "intruder", self._signer.sign(signing_bytes(m2, "intruder")))
        if choice == 3:  # commit certificate with one signer repeated (vote-weight inflation)
            commit = self._sign(Commit(view, seq, junk.digest))
            cert = CommitCertificate(view, seq, junk.digest, ((me, commit.signature),) * cfg.quorum)
            return self._sign(CommittedProof(junk, cert))
        if choice == 4:  # view change whose prepared certificate repeats one prepare
            prep = self._sign(Prepare(view, seq, junk.digest))
            pp_sig = self._sign(PrePrepare(view, seq, junk.digest)).signature
            pc = PreparedCertificate(
                view, seq, junk.digest, pp_sig, ((me, prep.signature),) * cfg.quorum
            )
            vc = ViewChange(view + 1, self.inner.stable_checkpoint, (pc,))
            return self._sign(vc)
        if choice == 5:  # pre-prepare from whoever I am (not primary most of the time)
            return self._sign(PrePrepare(view, seq, junk.digest, junk))
        if choice == 6:  # body does not match the signed digest
            other = Block(seq, self._now_ms, (b"tx:other|yyyyyyyy",), self._config.hash_fn)
            return self._sign(PrePrepare(view, seq, other.digest, junk))
        if choice == 7:  # a lone checkpoint vote with a made-up root
            k = cfg.checkpoint_interval
            return self._sign(Checkpoint((seq // k + 1) * k, junk.digest, b"\x13" * 32))
        return self._sign(Status(view + rng.randint(0, 3), rng.random() < 0.5, 0, 0))

    def serve_blocks(self, blocks: list[CommittedBlock]) -> list[CommittedBlock]:
        """State-transfer answers from this replica (only corrupted in bad-transfer mode)."""
        if self.mode != "bad-transfer" or not blocks:
            return blocks
        rng = self._rng
        first = blocks[0]
        choice = rng.randrange(3)
        if choice == 0:  # tampered body under the original certificate
            body = Block(
                first.block.seq,
                first.block.timestamp_ms,
                (b"tx:evil|zzzzzzzz",),
                self._config.hash_fn,
            )
            forged = replace(first, block=body)
        elif choice == 1:  # one signer repeated
            sig = first.certificate.signatures[0]
            cert = replace(first.certificate, signatures=(sig,) * len(first.certificate.signatures))
            forged = replace(first, certificate=cert)
        else:  # a non-member among the signers
            sigs = list(first.certificate.signatures)
            sigs[0] = ("intruder", sigs[0][1])
            forged = replace(first, certificate=replace(first.certificate, signatures=tuple(sigs)))
        self.injected += 1
        return [forged, *blocks[1:]]
