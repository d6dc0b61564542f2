"""Certificate validation (OSDI'99 sections 4.2-4.4; docs/testing.md B4, B6): quorum sizes
derived from n and f, distinct member signers, matching digests, valid signatures; Ed25519
through PyNaCl."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey
from pbft_harness import KeyedSigner, KeyedVerifier

from ibledger.consensus import (
    Block,
    CheckpointCertificate,
    Commit,
    CommitCertificate,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ReplicaConfig,
    signing_bytes,
    verify_checkpoint_certificate,
    verify_commit_certificate,
    verify_prepared_certificate,
)
from ibledger.consensus.codec import checkpoint_signing_bytes

MEMBERS = ("r0", "r1", "r2", "r3")
BLOCK = Block(1, 5, (b"tx",))
VERIFIER = KeyedVerifier(MEMBERS)


def _commit_sig(m: str, digest: bytes = BLOCK.digest, view: int = 0) -> tuple[str, bytes]:
    return m, KeyedSigner(m).sign(signing_bytes(Commit(view, 1, digest), m))


def _cert(*signers: str) -> CommitCertificate:
    return CommitCertificate(0, 1, BLOCK.digest, tuple(_commit_sig(m) for m in signers))


def test_valid_commit_certificate() -> None:
    assert verify_commit_certificate(MEMBERS, 1, BLOCK.digest, _cert("r0", "r1", "r2"), VERIFIER)


@pytest.mark.parametrize(
    ("cert", "digest"),
    [
        (_cert("r0", "r1"), BLOCK.digest),  # fewer than 2f+1
        (_cert("r0", "r0", "r1"), BLOCK.digest),  # duplicate signer
        (CommitCertificate(0, 1, BLOCK.digest, (_commit_sig("r0"),) * 3), BLOCK.digest),
        (_cert("r0", "r1", "r2"), bytes(32)),  # wrong digest
        (
            CommitCertificate(
                0, 1, BLOCK.digest, (_commit_sig("r0"), _commit_sig("r1"), _commit_sig("x9"))
            ),
            BLOCK.digest,
        ),  # non-member
        (
            CommitCertificate(
                0, 1, BLOCK.digest, (_commit_sig("r0"), _commit_sig("r1"), ("r2", b"\0" * 32))
            ),
            BLOCK.digest,
        ),  # bad signature
        (
            CommitCertificate(
                0,
                1,
                BLOCK.digest,
                (_commit_sig("r0"), _commit_sig("r1"), _commit_sig("r2", view=1)),
            ),
            BLOCK.digest,
        ),  # a vote for another view
    ],
)
def test_invalid_commit_certificates(cert: CommitCertificate, digest: bytes) -> None:
    assert not verify_commit_certificate(MEMBERS, 1, digest, cert, VERIFIER)


def test_commit_quorum_for_n_not_3f_plus_1() -> None:
    members = ("r0", "r1", "r2", "r3", "r4")
    verifier = KeyedVerifier(members)
    three = _cert("r0", "r1", "r2")
    four = _cert("r0", "r1", "r2", "r3")
    assert not verify_commit_certificate(members, 1, BLOCK.digest, three, verifier)
    assert verify_commit_certificate(members, 1, BLOCK.digest, four, verifier)


def _prepared(primary_signer: str, preparers: tuple[str, ...]) -> PreparedCertificate:
    pp = KeyedSigner(primary_signer).sign(
        signing_bytes(PrePrepare(0, 1, BLOCK.digest), primary_signer)
    )
    prepares = tuple(
        (m, KeyedSigner(m).sign(signing_bytes(Prepare(0, 1, BLOCK.digest), m))) for m in preparers
    )
    return PreparedCertificate(0, 1, BLOCK.digest, pp, prepares)


def test_prepared_certificate_rules() -> None:
    config = ReplicaConfig(MEMBERS)
    assert verify_prepared_certificate(config, _prepared("r0", ("r1", "r2")), VERIFIER)
    assert not verify_prepared_certificate(config, _prepared("r0", ("r1",)), VERIFIER)
    assert not verify_prepared_certificate(config, _prepared("r0", ("r1", "r1")), VERIFIER)
    # The primary's vote is its pre-prepare, never a prepare.
    assert not verify_prepared_certificate(config, _prepared("r0", ("r0", "r1")), VERIFIER)
    # The pre-prepare must be signed by the primary of the view.
    assert not verify_prepared_certificate(config, _prepared("r1", ("r2", "r3")), VERIFIER)


def test_checkpoint_certificate_rules() -> None:
    config = ReplicaConfig(MEMBERS, checkpoint_interval=4, watermark_window=8)

    def sig(m: str, root: bytes = b"root") -> tuple[str, bytes]:
        return m, KeyedSigner(m).sign(checkpoint_signing_bytes(m, 4, BLOCK.digest, root))

    good = CheckpointCertificate(4, BLOCK.digest, b"root", (sig("r0"), sig("r1"), sig("r2")))
    assert verify_checkpoint_certificate(config, good, VERIFIER)
    dup = CheckpointCertificate(4, BLOCK.digest, b"root", (sig("r0"),) * 3)
    assert not verify_checkpoint_certificate(config, dup, VERIFIER)
    mixed = CheckpointCertificate(4, BLOCK.digest, b"root", (sig("r0"), sig("r1"), sig("r2", b"x")))
    assert not verify_checkpoint_certificate(config, mixed, VERIFIER)
    off = CheckpointCertificate(3, BLOCK.digest, b"root", good.signatures)
    assert not verify_checkpoint_certificate(config, off, VERIFIER)


class _Ed25519:
    def __init__(self) -> None:
        self.keys = {m: SigningKey.generate() for m in MEMBERS}

    def verify(self, replica_id: str, data: bytes, signature: bytes) -> bool:
        from nacl.exceptions import BadSignatureError

        key = self.keys.get(replica_id)
        if key is None:
            return False
        try:
            key.verify_key.verify(data, signature)
        except BadSignatureError:
            return False
        return True


def test_ed25519_commit_certificate() -> None:
    ed = _Ed25519()
    sigs = tuple(
        (m, ed.keys[m].sign(signing_bytes(Commit(0, 1, BLOCK.digest), m)).signature)
        for m in ("r1", "r2", "r3")
    )
    cert = CommitCertificate(0, 1, BLOCK.digest, sigs)
    assert verify_commit_certificate(MEMBERS, 1, BLOCK.digest, cert, ed)
    forged = CommitCertificate(0, 1, BLOCK.digest, (*sigs[:2], ("r0", sigs[2][1])))
    assert not verify_commit_certificate(MEMBERS, 1, BLOCK.digest, forged, ed)
