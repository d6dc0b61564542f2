"""Block headers, stored blocks and receipts, with their canonical encodings.

A block's identity is the hash of its *header*; the header commits to the transactions through
the consensus layer's RFC 6962 Merkle root over request ids (the chain hash ``H`` of each
envelope: SHA-256, or SM3 on an ``sm2-sm3`` chain), so that one transaction can be proven to be in
a block without shipping the whole block.  Every digest here takes the chain hash as a parameter
(``hash_fn``, the suite's ``hash``): nothing in a block is hashed with a fixed algorithm.  The
header also carries what the commit certificate signs: ``block_digest(height, proposal_ms,
txs_root)``, the
consensus digest, recomputable from the header alone, so a stored or served block is checked
against the validators' signatures offline.  Block 0 is the genesis block: no transactions, and
its ``parent_hash`` is the hash of the genesis document, anchoring the chain to its configuration.

The state root chains through every block::

    state_root[h] = H("ibledger/state/v1" || state_root[h-1] || height || block_hash
                      || results_digest || H(write set))

so honest replicas that executed the same blocks agree on it byte for byte, and a checkpoint that
signs it attests the results as well as the state.  ``results_digest`` is an RFC 6962 Merkle root
over one *outcome* per transaction (its result and its events), so that a party to one
transaction can have its result attested without being shown its neighbours' events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ibledger.consensus import (
    block_digest,
    merkle_proof,
    merkle_root,
    request_id,
    verify_merkle_proof,
)
from ibledger.contracts.codec import canonical_encode

HashFn = Callable[[bytes], bytes]

STATE_DOMAIN = b"ibledger/state/v1"
HEADER_FIELDS = (
    "height",
    "parent_hash",
    "proposal_ms",
    "timestamp_ms",
    "tx_count",
    "txs_root",
)


class BlockFormatError(ValueError):
    """Stored or received block bytes that do not decode into a valid block."""


@dataclass(frozen=True, slots=True)
class BlockHeader:
    height: int
    parent_hash: bytes
    timestamp_ms: int  # the agreed block time contracts see
    tx_count: int
    txs_root: bytes
    proposal_ms: int = 0  # the primary's proposed time, as the commit certificate signed it
    # No view: replicas may commit one block under certificates of different views (a block
    # prepared in view v commits in v at some and in v+1 at others), so a view in the hashed
    # header gave honest replicas different block hashes and state roots. The view of a
    # node's own certificate is in the certificate.

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in HEADER_FIELDS}

    def encode(self) -> bytes:
        return canonical_encode(self.to_dict())

    def hash(self, hash_fn: HashFn) -> bytes:
        return hash_fn(b"ibledger/header/v1" + self.encode())

    def consensus_digest(self, hash_fn: HashFn) -> bytes:
        """What the commit certificate for this block signs, under the chain hash."""
        return block_digest(self.height, self.proposal_ms, self.txs_root, hash_fn)

    @classmethod
    def from_dict(cls, data: Any) -> BlockHeader:
        if not isinstance(data, dict) or sorted(data) != sorted(HEADER_FIELDS):
            raise BlockFormatError(f"a block header has exactly the fields {HEADER_FIELDS}")
        for name in ("height", "proposal_ms", "timestamp_ms", "tx_count"):
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise BlockFormatError(f"header field {name} must be a non-negative integer")
        for name in ("parent_hash", "txs_root"):
            if not isinstance(data[name], bytes) or len(data[name]) != 32:
                raise BlockFormatError(f"header field {name} must be 32 bytes")
        return cls(**data)


def txs_root(envelopes: Sequence[bytes], hash_fn: HashFn) -> bytes:
    return merkle_root([request_id(envelope, hash_fn) for envelope in envelopes], hash_fn)


def make_header(
    *,
    height: int,
    parent_hash: bytes,
    timestamp_ms: int,
    envelopes: Sequence[bytes],
    hash_fn: HashFn,
    proposal_ms: int | None = None,
    envelopes_root: bytes | None = None,
) -> BlockHeader:
    """``envelopes_root``: the envelopes' Merkle root where the caller already holds it (a
    consensus block computed it when it was decoded); otherwise it is computed here."""
    return BlockHeader(
        height=height,
        parent_hash=parent_hash,
        timestamp_ms=timestamp_ms,
        tx_count=len(envelopes),
        txs_root=txs_root(envelopes, hash_fn) if envelopes_root is None else envelopes_root,
        proposal_ms=timestamp_ms if proposal_ms is None else proposal_ms,
    )


@dataclass(frozen=True, slots=True)
class TxResult:
    code: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.code == "OK"


@dataclass(frozen=True, slots=True)
class StoredBlock:
    header: BlockHeader
    block_hash: bytes
    txs: tuple[bytes, ...]
    results: tuple[TxResult, ...]
    events: tuple[Mapping[str, Any], ...]
    state_root: bytes
    certificate: bytes | None


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Evidence that an envelope sits at ``index`` of the block whose header is given."""

    index: int
    siblings: tuple[bytes, ...]

    def verify(self, envelope: bytes, header: BlockHeader, hash_fn: HashFn) -> bool:
        return verify_merkle_proof(
            request_id(envelope, hash_fn),
            self.index,
            header.tx_count,
            self.siblings,
            header.txs_root,
            hash_fn,
        )


def prove_inclusion(envelopes: Sequence[bytes], index: int, hash_fn: HashFn) -> InclusionProof:
    ids = [request_id(e, hash_fn) for e in envelopes]
    return InclusionProof(index, merkle_proof(ids, index, hash_fn))


def tx_outcomes(
    results: Sequence[Sequence[str]], events: Sequence[Mapping[str, Any]]
) -> list[bytes]:
    """One canonical ``[[code, message], [events]]`` per transaction, in block order."""
    per_tx: list[list[dict[str, Any]]] = [[] for _ in results]
    for event in events:
        per_tx[event["tx_index"]].append(dict(event))
    return [
        canonical_encode([[code, message], mine])
        for (code, message), mine in zip(results, per_tx, strict=True)
    ]


def results_digest(hash_fn: HashFn, outcomes: Sequence[bytes]) -> bytes:
    """The Merkle root over the block's transaction outcomes that the state root chains."""
    return merkle_root([hash_fn(outcome) for outcome in outcomes], hash_fn)


@dataclass(frozen=True, slots=True)
class StateLink:
    """What one block adds to the state-root chain."""

    height: int
    block_hash: bytes
    results_digest: bytes
    write_set_digest: bytes


@dataclass(frozen=True, slots=True)
class ResultProof:
    """Evidence for a transaction's *result*: the state-root chain from the block before it up
    to a checkpoint whose state root a quorum of validators signed.

    ``outcome`` is the transaction's canonical ``[[code, message], [events]]``; with
    ``outcome_proof`` (its Merkle audit path) it leads to the first link's ``results_digest``;
    each link feeds ``chain_state_root``; the last root must be the one the checkpoint
    certificate signs.  Changing a result, an event, the agreed time or the parent link of any
    block on the way changes a digest and breaks the chain.
    """

    checkpoint_certificate: bytes
    previous_state_root: bytes
    links: tuple[StateLink, ...]
    outcome: bytes
    outcome_proof: tuple[bytes, ...]

    def outcome_matches(self, hash_fn: HashFn, index: int, tx_count: int) -> bool:
        """Whether ``outcome`` sits at ``index`` under the first link's results digest."""
        return bool(self.links) and verify_merkle_proof(
            hash_fn(self.outcome),
            index,
            tx_count,
            self.outcome_proof,
            self.links[0].results_digest,
            hash_fn,
        )

    def state_root(self, hash_fn: HashFn) -> bytes:
        """The root the chain reaches, to compare with the certificate's."""
        root = self.previous_state_root
        for link in self.links:
            root = hash_fn(
                STATE_DOMAIN
                + root
                + link.height.to_bytes(8, "big")
                + link.block_hash
                + link.results_digest
                + link.write_set_digest
            )
        return root


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a client gets back for a committed transaction."""

    tx_id: bytes
    height: int
    index: int
    result: TxResult
    header: BlockHeader
    block_hash: bytes
    envelope: bytes
    proof: InclusionProof
    certificate: bytes | None
    events: tuple[Mapping[str, Any], ...] = field(default=())
    result_proof: ResultProof | None = None  # once a stable checkpoint covers the block


def chain_state_root(
    hash_fn: HashFn,
    previous_root: bytes,
    height: int,
    block_hash: bytes,
    results_root: bytes,
    write_set_encoded: bytes,
) -> bytes:
    return hash_fn(
        STATE_DOMAIN
        + previous_root
        + height.to_bytes(8, "big")
        + block_hash
        + results_root
        + hash_fn(write_set_encoded)
    )
