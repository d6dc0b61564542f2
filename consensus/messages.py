"""Consensus messages, blocks and certificates: immutable values only.

Theory of operation
-------------------
The protocol is PBFT with signatures (Castro and Liskov, OSDI'99 section 4; TOCS 2002 section 2).
Every message is a frozen slotted dataclass wrapped in a `SignedMessage`; the signature covers the
canonical bytes built by `codec.signing_bytes`, never the wire encoding, so any replica can relay a
message it received (a PRE-PREPARE, a checkpoint vote) and the receiver still checks the original
signer. Large bodies ride beside the signed part as attachments (`PrePrepare.block`,
`BlockBody.block`): the signed part names them by digest and receivers recompute the digest.

VIEW-CHANGE and NEW-VIEW carry digests only, never bodies, so their size is bounded by the
watermark window and the membership, whatever the blocks hold. A replica that needs a body named
in a view change (the new primary building O, a backup installing NEW-VIEW, a replica holding a
commit certificate without the block) asks a peer that vouched for the digest with
BLOCK-REQUEST and checks each BLOCK-BODY against the digest it asked for, as PBFT fetches a
request missing from a new view (Castro and Liskov, TOCS 2002 section 4.4).

A `Block` is what the primary orders at one sequence number. Its digest covers the sequence
number, the primary's proposed timestamp and a Merkle root of the request ids (RFC 6962 style), so
a commit certificate over the digest pins the block to its height and lets a client check that one
request is in it. The parent link is not part of the digest: in PBFT the new view re-proposes
prepared blocks from different earlier views side by side (section 4.4), so a proposal cannot know
its final predecessor. The chain is instead fixed at execution: `CommittedBlock.parent_digest` is
the digest executed at the height below, which every honest replica computes identically.

Certificates are sets of (replica id, signature) pairs over one vote: prepared (section 4.2: the
pre-prepare plus quorum-1 prepares), commit (quorum commits) and checkpoint (quorum checkpoint
votes, section 4.3). `certificates.py` validates them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

DIGEST_BYTES = 32
ZERO_DIGEST = bytes(DIGEST_BYTES)
_BLOCK_DOMAIN = b"ibledger.block.v1"

HashFn = Callable[[bytes], bytes]
"""The chain hash: 32-byte digests of bytes (SHA-256 or SM3, fixed by the chain's genesis).

Every digest the core computes (request ids, the Merkle root over them, block digests) goes
through the `ReplicaConfig.hash_fn` of the replica, so the same state machine serves a chain on
either suite. Each function below takes it as `hash_fn` and defaults to SHA-256, the hash of
the default `ed25519-sha256` suite, whose digests stay byte for byte what they always were."""


def sha256(data: bytes) -> bytes:
    """SHA-256, the default chain hash."""
    return hashlib.sha256(data).digest()


def request_id(request: bytes, hash_fn: HashFn = sha256) -> bytes:
    """The identity of an opaque client request: the chain hash of its bytes."""
    return hash_fn(request)


def _leaf_hash(item_id: bytes, hash_fn: HashFn) -> bytes:
    return hash_fn(b"\x00" + item_id)


def _node_hash(left: bytes, right: bytes, hash_fn: HashFn) -> bytes:
    return hash_fn(b"\x01" + left + right)


def _split(count: int) -> int:
    # Largest power of two strictly below count (RFC 6962 section 2.1).
    k = 1
    while k << 1 < count:
        k <<= 1
    return k


def merkle_root(ids: tuple[bytes, ...] | list[bytes], hash_fn: HashFn = sha256) -> bytes:
    """RFC 6962 Merkle tree hash over request ids; the empty tree hashes to H(b"")."""
    if not ids:
        return hash_fn(b"")
    level = [_leaf_hash(i, hash_fn) for i in ids]
    # Iterative form of the RFC recursion: pairing left to right and promoting an odd tail node
    # produces the same tree as splitting at the largest power of two.
    while len(level) > 1:
        nxt = [_node_hash(level[i], level[i + 1], hash_fn) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def merkle_proof(
    ids: tuple[bytes, ...] | list[bytes], index: int, hash_fn: HashFn = sha256
) -> tuple[bytes, ...]:
    """Audit path for ids[index] (RFC 6962 section 2.1.1), leaf to root."""
    if not 0 <= index < len(ids):
        raise IndexError(index)
    path: list[bytes] = []
    lo, hi = 0, len(ids)
    stack: list[bytes] = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            stack.append(merkle_root(list(ids[lo + k : hi]), hash_fn))
            hi = lo + k
        else:
            stack.append(merkle_root(list(ids[lo : lo + k]), hash_fn))
            lo = lo + k
    path.extend(reversed(stack))
    return tuple(path)


def verify_merkle_proof(
    item_id: bytes,
    index: int,
    size: int,
    proof: tuple[bytes, ...],
    root: bytes,
    hash_fn: HashFn = sha256,
) -> bool:
    """Check an audit path produced by `merkle_proof` against a block's request root."""
    if not 0 <= index < size:
        return False
    # Rebuild the split decisions top-down, then fold the proof bottom-up.
    sides: list[bool] = []  # True when the sibling is on the right
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            sides.append(True)
            hi = lo + k
        else:
            sides.append(False)
            lo = lo + k
    if len(sides) != len(proof):
        return False
    node = _leaf_hash(item_id, hash_fn)
    for sibling, right in zip(proof, reversed(sides), strict=True):
        node = _node_hash(node, sibling, hash_fn) if right else _node_hash(sibling, node, hash_fn)
    return node == root


def block_digest(
    seq: int, timestamp_ms: int, request_root: bytes, hash_fn: HashFn = sha256
) -> bytes:
    """Digest of a block header: what PREPARE, COMMIT and the commit certificate sign."""
    return hash_fn(
        _BLOCK_DOMAIN
        + seq.to_bytes(8, "big")
        + timestamp_ms.to_bytes(8, "big", signed=True)
        + request_root
    )


@dataclass(frozen=True, slots=True)
class Block:
    """An ordered batch at one sequence number. A null block has no requests and timestamp 0.

    `hash_fn` is the chain hash its ids, root and digest are computed with; whoever builds a
    block (the primary, the codec, a ledger reading one back) passes the replica's."""

    seq: int
    timestamp_ms: int
    requests: tuple[bytes, ...]
    hash_fn: HashFn = field(default=sha256, repr=False, compare=False)
    request_ids: tuple[bytes, ...] = field(init=False, repr=False, compare=False)
    request_root: bytes = field(init=False, repr=False, compare=False)
    digest: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        hash_fn = self.hash_fn
        ids = tuple(hash_fn(r) for r in self.requests)
        root = merkle_root(ids, hash_fn)
        object.__setattr__(self, "request_ids", ids)
        object.__setattr__(self, "request_root", root)
        object.__setattr__(self, "digest", block_digest(self.seq, self.timestamp_ms, root, hash_fn))

    @property
    def is_null(self) -> bool:
        return not self.requests


def null_block(seq: int, hash_fn: HashFn = sha256) -> Block:
    """The block a new primary proposes for a sequence number nobody prepared (section 4.4)."""
    return Block(seq, 0, (), hash_fn)


Signature = tuple[str, bytes]
"""(replica id, signature) as stored in certificates."""


@dataclass(frozen=True, slots=True)
class PreparedCertificate:
    """Proof that `digest` prepared at (view, seq): the primary's pre-prepare signature and
    quorum-1 prepare signatures from distinct backups (section 4.2, the P set of 4.4)."""

    view: int
    seq: int
    digest: bytes
    pre_prepare_signature: bytes
    prepares: tuple[Signature, ...]


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    """Quorum COMMIT signatures over (view, seq, digest); stored with every executed block."""

    view: int
    seq: int
    digest: bytes
    signatures: tuple[Signature, ...]


@dataclass(frozen=True, slots=True)
class CheckpointCertificate:
    """Quorum CHECKPOINT signatures proving the state after `seq` (section 4.3).

    Sequence number 0 is the genesis checkpoint and carries no signatures."""

    seq: int
    block_digest: bytes
    state_root: bytes
    signatures: tuple[Signature, ...]


GENESIS_CHECKPOINT = CheckpointCertificate(0, ZERO_DIGEST, b"", ())


@dataclass(frozen=True, slots=True)
class PrePrepare:
    """PRE-PREPARE(v, n, d) from the primary of v; `block` is the attachment hashing to d."""

    view: int
    seq: int
    digest: bytes
    block: Block | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Prepare:
    view: int
    seq: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class Commit:
    view: int
    seq: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """CHECKPOINT(n, d): the block digest at n and the state root the executor reported."""

    seq: int
    block_digest: bytes
    state_root: bytes


@dataclass(frozen=True, slots=True)
class ViewChange:
    """VIEW-CHANGE(v+1, n, C, P) (section 4.4): stable checkpoint proof and prepared
    certificates above it, over digests only."""

    view: int
    checkpoint: CheckpointCertificate
    prepared: tuple[PreparedCertificate, ...]


@dataclass(frozen=True, slots=True)
class NewView:
    """NEW-VIEW(v+1, V, O) (section 4.4). `view_changes` are signed VIEW-CHANGE messages;
    `pre_prepares` are the signed O set without bodies (a backup fetches the ones it lacks)."""

    view: int
    view_changes: tuple[SignedMessage, ...]
    pre_prepares: tuple[SignedMessage, ...]


@dataclass(frozen=True, slots=True)
class CommittedProof:
    """A block with its commit certificate, pushed to a replica that is behind."""

    block: Block
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class RequestForward:
    """Client requests a replica forwards to the primary (section 4.1)."""

    requests: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class BlockRequest:
    """BLOCK-REQUEST: the bodies of these block digests, please (at most
    `ReplicaConfig.bodies_per_request_max` are answered)."""

    digests: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class BlockBody:
    """BLOCK-BODY(d): one answer to a BLOCK-REQUEST; `block` is the attachment hashing to d."""

    digest: bytes
    block: Block | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Status:
    """Periodic summary that lets peers retransmit what the sender is missing."""

    view: int
    view_active: bool
    last_executed: int
    stable_seq: int


Message = (
    PrePrepare
    | Prepare
    | Commit
    | Checkpoint
    | ViewChange
    | NewView
    | CommittedProof
    | RequestForward
    | Status
    | BlockRequest
    | BlockBody
)


@dataclass(frozen=True, slots=True)
class SignedMessage:
    message: Message
    sender: str
    signature: bytes


@dataclass(frozen=True, slots=True)
class CommittedBlock:
    """What `Execute` hands to the executor: the certified block plus the execution-time chain.

    `timestamp_ms` is the agreed block time: the proposed timestamp, raised to one millisecond
    above the parent's agreed time if it is not already greater. In the normal case backups only
    accept proposals above the parent, so the two are equal; the rule matters after view changes,
    which may place blocks proposed in different views next to each other."""

    block: Block
    certificate: CommitCertificate
    parent_digest: bytes
    timestamp_ms: int

    @property
    def seq(self) -> int:
        return self.block.seq

    @property
    def view(self) -> int:
        return self.certificate.view

    @property
    def digest(self) -> bytes:
        return self.block.digest

    @property
    def requests(self) -> tuple[bytes, ...]:
        return self.block.requests


def agreed_timestamp(parent_timestamp_ms: int, block: Block) -> int:
    """The agreed time of `block` given its parent's agreed time (see `CommittedBlock`)."""
    return max(block.timestamp_ms, parent_timestamp_ms + 1)


@dataclass(frozen=True, slots=True)
class ExecutedTip:
    """Where the ledger stands: handed to a restarting replica."""

    seq: int
    digest: bytes
    timestamp_ms: int
    state_root: bytes


GENESIS_TIP = ExecutedTip(0, ZERO_DIGEST, 0, b"")
