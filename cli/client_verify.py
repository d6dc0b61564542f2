"""Offline verification of receipts and blocks against the genesis validator set.

Theory of operation
-------------------
A node that serves a receipt is trusted for nothing.  The receipt carries its own evidence, and
each piece is checked with what the client already holds (the genesis file):

1. **envelope** -- the envelope decodes and its transaction id (hash of the payload bytes) is the
   id that was asked for;
2. **header** -- the header's canonical bytes decode into a block header at the receipt's height,
   and hash to the block hash the node named;
3. **inclusion** -- the RFC 6962 audit path leads from the envelope's request id
   (``sha256(envelope)``) at its index to the header's ``txs_root``;
4. **certificate** -- the commit certificate decodes, is for this height, signs the consensus
   digest recomputed from the header (``block_digest(height, proposal_ms, txs_root)``), and holds
   valid signatures of at least a quorum of distinct genesis validators.

5. **result** -- once a stable checkpoint covers the block, the receipt carries a result proof:
   the transaction's canonical outcome (result and events) with its Merkle path to the block's
   results digest, and the state-root chain (block hash, results digest, write-set digest per
   block) from the block before it up to the checkpoint, whose certificate holds a quorum of
   validator signatures over the state root the chain must reach.  The receipt's result code,
   message and events must be the ones in that outcome.

A node shows a receipt's envelope, result and events only to the transaction's parties (and the
regulator); to anyone else it is *withheld*, and checks 1 and 5 fail unless the caller holds the
envelope itself (``envelope=``), which then proves inclusion.

Checks 1-4 prove that the transaction was ordered at that position of a block that a quorum of
validators committed.  The commit certificate signs height, proposal time and transaction root
only; check 5 extends the proof to the result, the events, the agreed block time and the parent
link.  Until a checkpoint covers the block (at most one checkpoint interval), check 5 reports
the result as not yet attested: it is then the serving node's word.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ibledger.consensus import (
    Commit,
    HashFn,
    MessageError,
    decode_checkpoint_certificate,
    decode_commit_certificate,
    fault_tolerance,
    merkle_root,
    quorum_size,
    request_id,
    signing_bytes,
    verify_checkpoint_proof,
    verify_commit_certificate,
    verify_merkle_proof,
)
from ibledger.contracts import CodecError, canonical_decode
from ibledger.contracts.codec import canonical_encode
from ibledger.node.blocks import BlockFormatError, BlockHeader, ResultProof, StateLink
from ibledger.node.crypto import CryptoError, CryptoSuite
from ibledger.node.tx import TxError, decode_envelope
from ibledger.node.validator_set import GenesisFieldError, read_suite, read_validators
from ibledger.proto import types_pb2

from .client import ClientError, LedgerBlock, TxReceipt

__all__ = ["Check", "ValidatorSet", "VerificationReport", "verify_block", "verify_receipt"]

HEADER_DOMAIN = b"ibledger/header/v1"


@dataclass(frozen=True)
class ValidatorSet:
    """The validators of a chain as genesis names them: replica ids and their public keys."""

    members: tuple[str, ...]
    public_keys: Mapping[str, bytes]
    suite: CryptoSuite

    @classmethod
    def from_genesis(cls, genesis: Mapping[str, Any]) -> ValidatorSet:
        """The validators and crypto suite of a genesis document, read by the node's own rules
        (``node.validator_set``), so a client trusts exactly the keys the nodes do."""
        try:
            suite = read_suite(genesis)
            validators = read_validators(genesis.get("validators"), suite)
        except GenesisFieldError as exc:
            raise ClientError("GENESIS_INVALID", f"genesis {exc.field} {exc.message}") from None
        return cls(tuple(v.id for v in validators), {v.id: v.public_key for v in validators}, suite)

    @property
    def f(self) -> int:
        return fault_tolerance(len(self.members))

    @property
    def quorum(self) -> int:
        return max(2 * self.f + 1, quorum_size(len(self.members), self.f))

    def verify(self, replica_id: str, data: bytes, signature: bytes) -> bool:
        """The consensus ``Verifier`` protocol: a valid signature by a known member's key."""
        public_key = self.public_keys.get(replica_id)
        if public_key is None:
            return False
        try:
            self.suite.check_signature_encoding(signature)
        except CryptoError:
            return False
        return self.suite.verify(public_key, data, signature)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class VerificationReport:
    subject: str
    checks: tuple[Check, ...]
    suite: str = ""  # the crypto suite whose signatures and hashes were checked

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.ok)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "verified": self.ok,
            "crypto_suite": self.suite,
            "checks": [
                {"name": check.name, "ok": check.ok, "detail": check.detail}
                for check in self.checks
            ],
        }


def _header_check(
    header_pb: types_pb2.BlockHeader,
    block_hash: bytes,
    height: int,
    validators: ValidatorSet,
) -> tuple[Check, BlockHeader | None]:
    if not header_pb.encoded:
        return Check("header", False, "the node served no canonical header bytes"), None
    try:
        header = BlockHeader.from_dict(canonical_decode(header_pb.encoded))
    except (CodecError, BlockFormatError, TypeError) as exc:
        return Check("header", False, f"the header bytes do not decode: {exc}"), None
    if header.height != height:
        return Check(
            "header", False, f"the header is for height {header.height}, not {height}"
        ), header
    computed = validators.suite.hash(HEADER_DOMAIN + header_pb.encoded)
    if computed != block_hash:
        return Check(
            "header",
            False,
            f"the header hashes to {computed.hex()}, not to the block hash {block_hash.hex()}",
        ), header
    return Check("header", True, f"height {height}, hash {block_hash.hex()}"), header


def _certificate_check(
    certificate: bytes, header: BlockHeader | None, validators: ValidatorSet
) -> Check:
    if header is None:
        return Check("certificate", False, "no verified header to check the certificate against")
    if not certificate:
        return Check("certificate", False, "the node served no commit certificate")
    try:
        cert = decode_commit_certificate(certificate)
    except (ValueError, TypeError) as exc:  # MessageError is a ValueError
        return Check("certificate", False, f"the certificate does not decode: {exc}")
    digest = header.consensus_digest(validators.suite.hash)
    if cert.seq != header.height:
        return Check(
            "certificate", False, f"the certificate is for height {cert.seq}, not {header.height}"
        )
    if cert.digest != digest:
        return Check(
            "certificate", False, "the certificate signs a different block (digest mismatch)"
        )
    signers: list[str] = []
    seen: set[str] = set()
    problems: list[str] = []
    for replica_id, signature in cert.signatures:
        if replica_id in seen:
            problems.append(f"{replica_id} signed twice")
            continue
        seen.add(replica_id)
        if replica_id not in validators.public_keys:
            problems.append(f"{replica_id} is not a validator")
            continue
        data = signing_bytes(Commit(cert.view, cert.seq, cert.digest), replica_id)
        if validators.verify(replica_id, data, signature):
            signers.append(replica_id)
        else:
            problems.append(f"bad signature from {replica_id}")
    accepted = verify_commit_certificate(validators.members, validators.f, digest, cert, validators)
    summary = (
        f"{len(signers)} of {len(validators.members)} validators signed "
        f"(quorum {validators.quorum}): {', '.join(signers) or 'none'}"
    )
    if problems:
        summary += "; " + "; ".join(problems)
    return Check("certificate", accepted, summary)


def verify_receipt(
    receipt: TxReceipt | types_pb2.Receipt,
    validators: ValidatorSet,
    *,
    expected_tx_id: bytes | None = None,
    envelope: bytes | None = None,
) -> VerificationReport:
    """Check a receipt's envelope, header, inclusion proof and commit certificate.

    ``envelope`` is the caller's own copy of the transaction, for a receipt the node withheld.
    """
    pb = receipt.proto if isinstance(receipt, TxReceipt) else receipt
    checks: list[Check] = []
    wanted = expected_tx_id if expected_tx_id is not None else pb.tx_id
    served = pb.envelope if envelope is None else envelope
    try:
        if pb.withheld and envelope is None:
            raise TxError(
                "WITHHELD",
                "the node withheld it: the viewer is not a party to this transaction "
                "(ask as a party, or give the envelope you hold)",
            )
        tx = decode_envelope(served, hash_fn=validators.suite.hash)
    except TxError as exc:
        checks.append(Check("envelope", False, f"the envelope does not decode: {exc.message}"))
    else:
        if tx.tx_id != wanted or tx.tx_id != pb.tx_id:
            checks.append(
                Check(
                    "envelope",
                    False,
                    f"the envelope is transaction {tx.tx_id.hex()}, not {wanted.hex()}",
                )
            )
        else:
            checks.append(
                Check("envelope", True, f"{tx.operation} by {tx.sender}, tx {tx.tx_id.hex()}")
            )
    header_check, header = _header_check(pb.header, pb.block_hash, pb.height, validators)
    checks.append(header_check)
    if header is None:
        checks.append(Check("inclusion", False, "no header to check the proof against"))
    else:
        hash_fn = validators.suite.hash
        included = verify_merkle_proof(
            request_id(served, hash_fn),
            pb.index,
            header.tx_count,
            tuple(pb.proof),
            header.txs_root,
            hash_fn,
        )
        checks.append(
            Check(
                "inclusion",
                included,
                f"transaction {pb.index} of {header.tx_count} is under txs_root "
                f"{header.txs_root.hex()}"
                if included
                else "the Merkle proof does not lead from the envelope to the header's txs_root",
            )
        )
    checks.append(_certificate_check(pb.certificate, header, validators))
    checks.append(_result_check(pb, validators))
    return VerificationReport(f"transaction {wanted.hex()}", tuple(checks), validators.suite.name)


def _result_check(pb: types_pb2.Receipt, validators: ValidatorSet) -> Check:
    if pb.withheld:
        return Check("result", False, "withheld: only the transaction's parties see its result")
    if not pb.HasField("result_proof"):
        return Check(
            "result",
            True,
            "not attested yet: no stable checkpoint covers this block, so the result is the "
            "serving node's word (ask again after the next checkpoint)",
        )
    served = pb.result_proof
    try:
        certificate = decode_checkpoint_certificate(served.checkpoint_certificate)
    except (MessageError, ValueError, TypeError) as exc:
        return Check("result", False, f"the checkpoint certificate does not decode: {exc}")
    if not verify_checkpoint_proof(validators.members, validators.f, certificate, validators):
        return Check("result", False, "the checkpoint certificate lacks a validator quorum")
    links = tuple(
        StateLink(link.height, link.block_hash, link.results_digest, link.write_set_digest)
        for link in served.links
    )
    heights = [link.height for link in links]
    if heights != list(range(pb.height, certificate.seq + 1)):
        return Check(
            "result", False, "the state links do not run from this block to the checkpoint"
        )
    if links[0].block_hash != pb.block_hash:
        return Check("result", False, "the state chain starts from another block")
    suite = validators.suite
    proof = ResultProof(
        served.checkpoint_certificate,
        served.previous_state_root,
        links,
        served.outcome,
        tuple(served.outcome_proof),
    )
    if not proof.outcome_matches(suite.hash, pb.index, pb.header.tx_count):
        return Check("result", False, "the outcome does not lead to the block's results digest")
    if proof.state_root(suite.hash) != certificate.state_root:
        return Check(
            "result", False, f"the state chain does not reach checkpoint {certificate.seq}'s root"
        )
    try:
        (code, message), events = canonical_decode(served.outcome)
        mine = [
            (event["kind"], canonical_encode(event["attrs"]))
            for event in events
            if event["tx_index"] == pb.index
        ]
        if len(mine) != len(events):
            raise ValueError("the outcome holds another transaction's events")
    except (CodecError, ValueError, TypeError, KeyError, IndexError) as exc:
        return Check("result", False, f"the outcome does not decode: {exc}")
    if (code, message) != (pb.result.code, pb.result.message):
        return Check("result", False, f"the attested result is {code}, not {pb.result.code}")
    if mine != [(event.kind, event.attrs) for event in pb.events]:
        return Check("result", False, "the receipt's events are not the attested ones")
    return Check(
        "result",
        True,
        f"{code} and {len(mine)} event(s) attested by checkpoint {certificate.seq} "
        f"({len(certificate.signatures)} validator signatures over its state root)",
    )


def _transactions_check(pb: types_pb2.Block, header: BlockHeader, hash_fn: HashFn) -> Check:
    """Every shown envelope hashes (under the chain hash) to its request id, and the ids make
    up ``txs_root``."""
    txs: Sequence[bytes] = list(pb.txs)
    withheld = set(pb.withheld)
    ids: list[bytes] = list(pb.request_ids) or [request_id(envelope, hash_fn) for envelope in txs]
    if len(ids) != len(txs):
        return Check("transactions", False, "the block lists more request ids than envelopes")
    for index, envelope in enumerate(txs):
        if index not in withheld and request_id(envelope, hash_fn) != ids[index]:
            return Check("transactions", False, f"envelope {index} is not its listed request id")
    root = merkle_root(ids, hash_fn)
    if len(ids) != header.tx_count or root != header.txs_root:
        return Check(
            "transactions",
            False,
            f"{len(ids)} transactions do not match the header (count "
            f"{header.tx_count}, txs_root {header.txs_root.hex()})",
        )
    shown = len(ids) - len(withheld)
    note = f" ({len(withheld)} withheld from this viewer, {shown} shown)" if withheld else ""
    return Check("transactions", True, f"{len(ids)} transactions match txs_root{note}")


def verify_block(
    block: LedgerBlock | types_pb2.Block, validators: ValidatorSet
) -> VerificationReport:
    """Check a block: header bytes and hash, its transactions against txs_root, certificate."""
    pb = block.proto if isinstance(block, LedgerBlock) else block
    checks: list[Check] = []
    header_check, header = _header_check(pb.header, pb.block_hash, pb.header.height, validators)
    checks.append(header_check)
    if header is None:
        checks.append(Check("transactions", False, "no header to check the transactions against"))
    else:
        checks.append(_transactions_check(pb, header, validators.suite.hash))
    if header is not None and header.height == 0:
        checks.append(Check("certificate", True, "the genesis block needs no certificate"))
    else:
        checks.append(_certificate_check(pb.certificate, header, validators))
    return VerificationReport(f"block {pb.header.height}", tuple(checks), validators.suite.name)
