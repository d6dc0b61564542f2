"""Certificate validation: quorum sizes, distinct member signers, matching digests.

Theory of operation
-------------------
A certificate is a set of signed votes for one value (Castro-Liskov OSDI'99 section 4.2-4.4):

- prepared (P set entry): the pre-prepare signed by primary(v) plus quorum-1 PREPAREs for the same
  (v, n, d) from distinct backups (the primary's own vote is its pre-prepare);
- commit: quorum COMMITs for the same (v, n, d) from distinct replicas;
- checkpoint: quorum CHECKPOINTs for the same (n, block digest, state root).

A certificate is rejected if any signer is not a member, appears twice (vote-weight inflation),
or has a bad signature, or if it has fewer than the quorum of distinct signers. Quorum sizes come
from `config.quorum_size`, which is 2f+1 when n = 3f+1. These checks work offline: the ledger
re-verifies stored commit certificates with the member list alone.

A single peer message is checked the same way before anything reads it
(`authentication_failure`): a member other than ourselves, a message that encodes, and a valid
signature over its signing bytes. `SignatureCache` remembers signatures already checked, since a
vote arrives alone first and then again inside certificates (VIEW-CHANGE, NEW-VIEW, proofs).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence

from .codec import (
    KIND_COMMIT,
    KIND_PRE_PREPARE,
    KIND_PREPARE,
    checkpoint_signing_bytes,
    signing_bytes,
)
from .codec import vote_signing_bytes as _vote
from .config import ReplicaConfig, quorum_size
from .crypto import Verifier
from .messages import (
    DIGEST_BYTES,
    Block,
    CheckpointCertificate,
    CommitCertificate,
    PreparedCertificate,
    Signature,
    SignedMessage,
)

VerifyFn = Callable[[str, bytes, bytes], bool]


class SignatureCache:
    """A `VerifyFn` that checks each (signer, signature, bytes) once, for the `size_max` most
    recent ones (the oldest is forgotten first)."""

    def __init__(self, verifier: Verifier, size_max: int) -> None:
        self._verifier = verifier
        self._size_max = size_max
        # Oldest out first: OrderedDict.popitem is O(1), where a dict's first key is found by
        # scanning the slots deleted before it (see RequestQueue._recent).
        self._checked: OrderedDict[tuple[str, bytes], bytes] = OrderedDict()

    def verify(self, sender: str, data: bytes, signature: bytes) -> bool:
        key = (sender, signature)
        if self._checked.get(key) == data:
            return True
        if not self._verifier.verify(sender, data, signature):
            return False
        if len(self._checked) >= self._size_max:
            self._checked.popitem(last=False)
        self._checked[key] = data
        return True


def sorted_signatures(
    sigs: Iterable[Signature], member_index: Mapping[str, int]
) -> tuple[Signature, ...]:
    """Signatures in member order, so that every replica forms the same certificate bytes."""
    return tuple(sorted(sigs, key=lambda s: member_index[s[0]]))


def _distinct_members(
    sigs: tuple[Signature, ...], members: frozenset[str] | set[str], excluded: str | None = None
) -> bool:
    seen: set[str] = set()
    for rid, _ in sigs:
        if rid in seen or rid not in members or rid == excluded:
            return False
        seen.add(rid)
    return True


def check_commit_certificate(
    members: frozenset[str] | set[str], quorum: int, cert: CommitCertificate, verify: VerifyFn
) -> bool:
    if len(cert.digest) != DIGEST_BYTES or cert.seq < 1 or cert.view < 0:
        return False
    if len(cert.signatures) < quorum or not _distinct_members(cert.signatures, members):
        return False
    return all(
        verify(rid, _vote(KIND_COMMIT, rid, cert.view, cert.seq, cert.digest), sig)
        for rid, sig in cert.signatures
    )


def check_commit_proof(
    members: frozenset[str], quorum: int, block: Block, cert: CommitCertificate, verify: VerifyFn
) -> bool:
    """A block with its commit certificate, as state transfer and retransmission carry them."""
    if cert.seq != block.seq or cert.digest != block.digest:
        return False
    return check_commit_certificate(members, quorum, cert, verify)


def authentication_failure(
    sm: SignedMessage, own_id: str, members: frozenset[str], verify: VerifyFn
) -> str | None:
    """Why a peer message is not authentic (a drop reason), or None when it is."""
    if not isinstance(sm, SignedMessage):
        return "not-a-message"
    if sm.sender == own_id:
        return "own-message"
    if sm.sender not in members:
        return "non-member"
    try:
        data = signing_bytes(sm.message, sm.sender)
    except (TypeError, ValueError, OverflowError, AttributeError):
        return "malformed"
    if not isinstance(sm.signature, bytes) or not verify(sm.sender, data, sm.signature):
        return "bad-signature"
    return None


def check_prepared_certificate(
    config: ReplicaConfig, members: frozenset[str], cert: PreparedCertificate, verify: VerifyFn
) -> bool:
    if len(cert.digest) != DIGEST_BYTES or cert.seq < 1 or cert.view < 0:
        return False
    primary = config.primary(cert.view)
    if len(cert.prepares) < config.quorum - 1:
        return False
    if not _distinct_members(cert.prepares, members, excluded=primary):
        return False
    pp = _vote(KIND_PRE_PREPARE, primary, cert.view, cert.seq, cert.digest)
    if not verify(primary, pp, cert.pre_prepare_signature):
        return False
    return all(
        verify(rid, _vote(KIND_PREPARE, rid, cert.view, cert.seq, cert.digest), sig)
        for rid, sig in cert.prepares
    )


def check_checkpoint_certificate(
    config: ReplicaConfig, members: frozenset[str], cert: CheckpointCertificate, verify: VerifyFn
) -> bool:
    if cert.seq <= config.base.seq:
        return cert == config.base
    if cert.seq % config.checkpoint_interval or len(cert.block_digest) != DIGEST_BYTES:
        return False
    if len(cert.signatures) < config.quorum or not _distinct_members(cert.signatures, members):
        return False
    return all(
        verify(rid, checkpoint_signing_bytes(rid, cert.seq, cert.block_digest, cert.state_root), s)
        for rid, s in cert.signatures
    )


def verify_commit_certificate(
    config_members: Sequence[str],
    f: int,
    block_digest: bytes,
    cert: CommitCertificate,
    verifier: Verifier,
) -> bool:
    """Offline check that `cert` commits `block_digest`: at least max(2f+1, quorum(n, f))
    distinct member signers, all signatures valid, and the digest matches."""
    members = frozenset(config_members)
    if len(members) != len(config_members) or f < 0:
        return False
    if cert.digest != block_digest:
        return False
    quorum = max(2 * f + 1, quorum_size(len(members), f))
    return check_commit_certificate(members, quorum, cert, verifier.verify)


def verify_checkpoint_proof(
    config_members: Sequence[str], f: int, cert: CheckpointCertificate, verifier: Verifier
) -> bool:
    """Offline check of a stable checkpoint certificate against a validator set, for clients
    that hold the membership but not the replica configuration: distinct member signers, at
    least max(2f+1, quorum(n, f)) of them, every signature valid over (seq, digest, root)."""
    members = frozenset(config_members)
    if len(members) != len(config_members) or f < 0 or cert.seq < 1:
        return False
    if len(cert.block_digest) != DIGEST_BYTES:
        return False
    quorum = max(2 * f + 1, quorum_size(len(members), f))
    if len(cert.signatures) < quorum or not _distinct_members(cert.signatures, members):
        return False
    return all(
        verifier.verify(
            rid, checkpoint_signing_bytes(rid, cert.seq, cert.block_digest, cert.state_root), s
        )
        for rid, s in cert.signatures
    )


def verify_prepared_certificate(
    config: ReplicaConfig, cert: PreparedCertificate, verifier: Verifier
) -> bool:
    return check_prepared_certificate(config, frozenset(config.members), cert, verifier.verify)


def verify_checkpoint_certificate(
    config: ReplicaConfig, cert: CheckpointCertificate, verifier: Verifier
) -> bool:
    return check_checkpoint_certificate(config, frozenset(config.members), cert, verifier.verify)
