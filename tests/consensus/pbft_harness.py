"""A tiny synchronous harness for unit tests: n replicas, a FIFO of messages, a filter hook.

Unlike the simulator it has no clock or randomness: tests decide exactly which messages are
delivered, dropped or held back.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ibledger.consensus import (
    Broadcast,
    CommittedBlock,
    Effect,
    EffectDrain,
    Evidence,
    Execute,
    ExecutedTip,
    FetchBlocks,
    Persist,
    PersistedState,
    Replica,
    ReplicaConfig,
    Send,
    SignedMessage,
    ViewChanged,
    signing_bytes,
)

EPOCH_MS = 1_700_000_000_000


def _key(rid: str) -> bytes:
    return hashlib.sha256(b"unit:" + rid.encode()).digest()


def _domain(epoch: int) -> bytes:
    # Each validator set signs under its own epoch number, as the node's signers will; epoch 0
    # (genesis) signs the bare bytes.
    return b"epoch:%d:" % epoch if epoch else b""


class KeyedSigner:
    def __init__(self, replica_id: str, epoch: int = 0) -> None:
        self._id = replica_id
        self._domain = _domain(epoch)

    @property
    def replica_id(self) -> str:
        return self._id

    def sign(self, data: bytes) -> bytes:
        return hmac.new(_key(self._id), self._domain + data, hashlib.sha256).digest()


class KeyedVerifier:
    def __init__(self, members: tuple[str, ...], epoch: int = 0) -> None:
        self._members = set(members)
        self._domain = _domain(epoch)

    def verify(self, replica_id: str, data: bytes, signature: bytes) -> bool:
        if replica_id not in self._members:
            return False
        expected = hmac.new(_key(replica_id), self._domain + data, hashlib.sha256).digest()
        return hmac.compare_digest(expected, signature)


Filter = Callable[[str, str, SignedMessage], bool]


@dataclass
class Node:
    replica: Replica
    store: PersistedState = field(default_factory=PersistedState)
    executed: list[CommittedBlock] = field(default_factory=list)
    root: bytes = b""
    effects: list[Effect] = field(default_factory=list)
    up: bool = True


class Harness:
    def __init__(
        self,
        n: int = 4,
        *,
        members: tuple[str, ...] | None = None,
        epoch: int = 0,
        tip: ExecutedTip | None = None,
        **overrides: object,
    ) -> None:
        """`members`, `epoch` and `tip` set up a validator set that takes over from another
        (with `base` among the overrides); by default n replicas r0.. from genesis."""
        self.members = members or tuple(f"r{i}" for i in range(n))
        self.epoch = epoch
        self.tip = tip
        params: dict[str, object] = {
            "batch_size_max": 4,
            "batch_timeout_ticks": 1,
            "checkpoint_interval": 4,
            "watermark_window": 8,
            "view_change_timeout_ticks": 10,
            "view_change_timeout_max_ticks": 80,
            "status_interval_ticks": 5,
            "retransmit_ticks": 5,
            "fetch_retry_ticks": 5,
            "timestamp_skew_ms": 1_000,
        }
        params.update(overrides)
        self.config = ReplicaConfig(self.members, **params)  # type: ignore[arg-type]
        self.verifier = KeyedVerifier(self.members, epoch)
        self.nodes = {m: Node(self._new(m, None)) for m in self.members}
        self.queue: deque[tuple[str, str, SignedMessage]] = deque()
        self.filter: Filter | None = None
        self.now_ms = EPOCH_MS
        self.sent: list[tuple[str, str, SignedMessage]] = []
        self.fetches: list[tuple[str, FetchBlocks]] = []

    def _new(self, m: str, node: Node | None) -> Replica:
        return Replica(
            self.config,
            m,
            KeyedSigner(m, self.epoch),
            self.verifier,
            persisted=node.store.copy() if node else None,
            last_executed=self.tip,
        )

    def replica(self, m: str) -> Replica:
        return self.nodes[m].replica

    def handle(self, m: str, effects: list[Effect]) -> list[Effect]:
        node = self.nodes[m]
        node.effects.extend(effects)
        drain = EffectDrain(node.replica, effects)
        for e in drain:
            if isinstance(e, Persist):
                node.store.apply(e)
            elif isinstance(e, Broadcast):
                for dst in self.members:
                    if dst != m:
                        self._enqueue(m, dst, e.message)
            elif isinstance(e, Send):
                self._enqueue(m, e.to, e.message)
            elif isinstance(e, Execute):
                node.executed.append(e.block)
                node.root = hashlib.sha256(node.root + e.block.digest).digest()
                node.effects.extend(drain.executed(e, node.root))
            elif isinstance(e, FetchBlocks):
                self.fetches.append((m, e))
        return effects

    def _enqueue(self, src: str, dst: str, sm: SignedMessage) -> None:
        self.sent.append((src, dst, sm))
        if self.filter is not None and not self.filter(src, dst, sm):
            return
        self.queue.append((src, dst, sm))

    def deliver(self, limit: int = 100_000) -> int:
        count = 0
        while self.queue and count < limit:
            _src, dst, sm = self.queue.popleft()
            node = self.nodes[dst]
            if node.up:
                self.handle(dst, node.replica.step(sm))
            count += 1
        return count

    def submit(self, m: str, request: bytes, *, forward: bool = True) -> list[Effect]:
        return self.handle(m, self.replica(m).submit(request, self.now_ms, forward=forward))

    def tick(
        self, ticks: int = 1, deliver: bool = True, only: tuple[str, ...] | None = None
    ) -> None:
        for _ in range(ticks):
            self.now_ms += 10
            for m in only or self.members:
                node = self.nodes[m]
                if node.up:
                    self.handle(m, node.replica.tick(self.now_ms))
            if deliver:
                self.deliver()

    def crash(self, m: str) -> None:
        self.nodes[m].up = False

    def restart(self, m: str) -> None:
        node = self.nodes[m]
        node.replica = self._new(m, node)
        node.up = True

    def heights(self) -> dict[str, int]:
        return {m: len(n.executed) for m, n in self.nodes.items()}

    def effects_of(self, m: str, kind: type) -> list[Effect]:
        return [e for e in self.nodes[m].effects if isinstance(e, kind)]

    def view_changes(self, m: str) -> list[ViewChanged]:
        return [e for e in self.nodes[m].effects if isinstance(e, ViewChanged)]

    def evidence(self, m: str) -> list[Evidence]:
        return [e for e in self.nodes[m].effects if isinstance(e, Evidence)]


def signed_by(m: str, message: object) -> SignedMessage:
    """``message`` as replica ``m`` signs it (under the genesis set's domain)."""
    return SignedMessage(message, m, KeyedSigner(m).sign(signing_bytes(message, m)))  # type: ignore[arg-type]


def req(i: int, size: int = 16) -> bytes:
    return (b"request-%d-" % i).ljust(size, b".")
