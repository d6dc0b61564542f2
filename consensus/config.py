"""Replica configuration: membership, quorum sizes and every tunable bound.

Theory of operation
-------------------
Castro-Liskov (OSDI'99 section 4, TOCS 2002 section 2) assume n = 3f+1 and quorums of 2f+1. We
derive f = (n-1)//3 and use the quorum q = floor((n+f)/2) + 1, which equals 2f+1 when n = 3f+1 and
keeps the two properties the proofs need for any other n: two quorums intersect in at least f+1
replicas (so in at least one correct replica), and q <= n - f (so the correct replicas alone form
a quorum). Plain 2f+1 would lose the first property at n = 5 or n = 6. A weak certificate (f+1
matching messages) contains at least one correct replica. The primary of view v is
members[v mod n] (section 4.1). n = 1 is a single-node development chain: f = 0, q = 1.

All times are logical ticks; the node decides how long a tick is. Every collection that grows
from peer input has a `*_max` bound here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .messages import GENESIS_CHECKPOINT, CheckpointCertificate, HashFn, sha256


class ConfigError(ValueError):
    """An invalid replica configuration (a programming or operator error, never peer input)."""


def fault_tolerance(n: int) -> int:
    """f for n replicas."""
    return (n - 1) // 3


def quorum_size(n: int, f: int) -> int:
    """Smallest certificate size such that two certificates share a correct replica."""
    return (n + f) // 2 + 1


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    members: tuple[str, ...]
    batch_size_max: int = 64
    batch_bytes_max: int = 4 * 1024 * 1024
    batch_timeout_ticks: int = 1
    # Propose at once, without waiting for the batch timeout, while fewer than this many of the
    # primary's blocks are proposed and not yet executed (0: always wait). Batching then comes
    # from load, as in BFT-SMaRt: while blocks are in flight, requests gather for the next one.
    eager_blocks: int = 0
    checkpoint_interval: int = 32
    watermark_window: int = 128
    view_change_timeout_ticks: int = 100
    view_change_timeout_max_ticks: int = 6400
    status_interval_ticks: int = 10
    retransmit_ticks: int = 10
    fetch_retry_ticks: int = 50
    timestamp_skew_ms: int = 10_000
    request_bytes_max: int = 1024 * 1024
    pending_requests_max: int = 50_000
    future_messages_max: int = 4096
    executed_ids_max: int = 200_000
    proofs_per_status_max: int = 64
    bodies_per_request_max: int = 8
    view_change_bytes_max: int = 8 * 1024 * 1024
    # The chain hash of the genesis suite (SHA-256 or SM3): request ids, Merkle roots and block
    # digests. A function, not a name, so the core stays free of any crypto library.
    hash_fn: HashFn = field(default=sha256, compare=False)
    # Where this validator set's log starts: genesis, or for a set that took over at a change
    # of membership the checkpoint-aligned height it took over at. It is trusted without
    # signatures (every member executed it, under the set before), as genesis is.
    base: CheckpointCertificate = GENESIS_CHECKPOINT
    # Amnesia (TESTING B14): the highest sequence number this validator may have signed a vote
    # for under consensus records it no longer has (its data directory was lost or replaced).
    # Until it has executed that far it signs no PRE-PREPARE, PREPARE, COMMIT, VIEW-CHANGE or
    # NEW-VIEW, so it can never sign a second digest for a (view, sequence number) it voted on
    # before; it follows by state transfer meanwhile. 0: nothing forgotten.
    vote_floor: int = 0
    n: int = field(init=False)
    f: int = field(init=False)
    quorum: int = field(init=False)
    weak_quorum: int = field(init=False)

    def __post_init__(self) -> None:
        members = tuple(self.members)
        object.__setattr__(self, "members", members)
        if not members:
            raise ConfigError("members must not be empty")
        if len(set(members)) != len(members):
            raise ConfigError("members must be distinct")
        for m in members:
            if not isinstance(m, str) or not 0 < len(m) <= 128:
                raise ConfigError(f"invalid member id {m!r}")
        positive = (
            "batch_size_max",
            "batch_bytes_max",
            "checkpoint_interval",
            "watermark_window",
            "view_change_timeout_ticks",
            "view_change_timeout_max_ticks",
            "status_interval_ticks",
            "retransmit_ticks",
            "fetch_retry_ticks",
            "request_bytes_max",
            "pending_requests_max",
            "future_messages_max",
            "executed_ids_max",
            "proofs_per_status_max",
            "bodies_per_request_max",
            "view_change_bytes_max",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if (
            self.batch_timeout_ticks < 0
            or self.timestamp_skew_ms < 0
            or self.eager_blocks < 0
            or self.vote_floor < 0
        ):
            raise ConfigError(
                "batch_timeout_ticks, eager_blocks, timestamp_skew_ms and vote_floor must be >= 0"
            )
        if self.watermark_window % self.checkpoint_interval:
            raise ConfigError("watermark_window must be a multiple of checkpoint_interval")
        if self.watermark_window < 2 * self.checkpoint_interval:
            # With L = K the primary stalls at every checkpoint until it becomes stable.
            raise ConfigError("watermark_window must be at least 2 * checkpoint_interval")
        if self.base.signatures or self.base.seq < 0 or self.base.seq % self.checkpoint_interval:
            raise ConfigError("base must be an unsigned checkpoint at a checkpoint interval")
        if self.view_change_timeout_max_ticks < self.view_change_timeout_ticks:
            raise ConfigError("view_change_timeout_max_ticks < view_change_timeout_ticks")
        n = len(members)
        f = fault_tolerance(n)
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "f", f)
        object.__setattr__(self, "quorum", quorum_size(n, f))
        object.__setattr__(self, "weak_quorum", f + 1)

    def primary(self, view: int) -> str:
        return self.members[view % self.n]
