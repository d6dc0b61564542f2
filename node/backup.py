"""Ledger backups: a consistent snapshot of a running node's ledger, and a verified restore.

Theory of operation
-------------------
* **Consistent.**  A backup reads one snapshot of the ledger's store.  Each block is one atomic
  write (``ledger.py``), so the snapshot sits on a block boundary; the height, tip hash, state
  root and verified-height record in the file's header are read from that snapshot, never from
  the live ledger, which keeps committing while the file is written.
* **What is in it.**  The chain and everything derived from it: blocks, hash index, commit
  certificates, results, write sets, transaction index, contract state, checkpoint
  certificates, state links and the ledger's metadata (``INCLUDED``).  Not the consensus
  records (``cons/``: what this validator has signed; a restored node must not trust an old
  copy of them, see docs/operations.md), not private keys, not the audit log (its own
  directory).  Any other key is left out too: the list is an allow-list.
* **The file.**  ``MAGIC``, then a length-prefixed canonical header (format, chain id, crypto
  suite, genesis hash, height, tip hash, state root, verified record, ledger format, node id,
  creation time, the digest's name), then records ``0x01 | u32 key length | key | u32 value
  length | value`` in ascending key order, then ``0x00 | u64 record count | SHA-256`` over every
  byte before the digest.  It is written to a hidden partial file beside the target (mode
  0600: it holds every bank's transactions), synced, then linked into place, so a reader never
  sees half a backup and an existing file is never overwritten.  The digest catches damage to
  the file; trust comes from the restore's verification, not from the digest.
* **Restore.**  Only into a data directory without a ledger.  Records stream into a fresh
  LevelDB beside the target; then the digest and header must match, the ledger is opened with
  full verification (every block hash, parent link, Merkle root, state-root link and commit
  certificate against the genesis validators), and ``Ledger.verify_derived`` replays every
  write set from block 0 against the stored state and checks the transaction index, the state
  links and the checkpoint certificates.  Only then is the directory renamed into place.  Any
  failure removes the partial directory and raises ``BackupError`` with a stable code.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ibledger.consensus import decode_checkpoint_certificate, verify_checkpoint_proof
from ibledger.contracts.codec import CodecError, canonical_decode, canonical_encode
from ibledger.contracts.core import StateView

from . import storage_keys as keys
from .crypto import CryptoError, get_suite
from .epochs import EpochTable, certificate_check
from .ledger import (
    CertificateCheck,
    CheckFromState,
    CheckpointCheck,
    Ledger,
    LedgerCorruption,
    LedgerError,
    genesis_hash,
)
from .leveldb_store import LevelDBStore
from .store import Snapshot, StoreError, WriteBatch
from .validator_set import ValidatorInfo

MAGIC = b"IBLEDGER-BACKUP\n"
FORMAT = 1
DIGEST_NAME = "sha256"
DIGEST_BYTES = 32
HEADER_BYTES_MAX = 64 * 1024
KEY_BYTES_MAX = 64 * 1024
VALUE_BYTES_MAX = 64 * 1024 * 1024  # far above the largest block a peer may send (16 MiB)
RECORD_TAG = 0x01
END_TAG = 0x00
RESTORE_BATCH_BYTES = 4 * 1024 * 1024
CANCEL_CHECK_RECORDS = 1024
INCLUDED = (
    keys.BLOCK,
    keys.BLOCK_HASH,
    keys.CERTIFICATE,
    keys.RESULTS,
    keys.WRITE_SET,
    keys.TX_INDEX,
    keys.STATE,
    keys.CHECKPOINT,
    keys.STATE_LINK,
)
INCLUDED_META = (
    keys.META_FORMAT,
    keys.META_CHAIN_ID,
    keys.META_GENESIS_HASH,
    keys.META_HEIGHT,
    keys.META_TIP_HASH,
    keys.META_STATE_ROOT,
    keys.META_EXPIRY_HORIZON,
    keys.META_VERIFIED,
)
# What a restore insists on; the verified record and the horizon are absent in older ledgers.
REQUIRED_META = (
    keys.META_FORMAT,
    keys.META_CHAIN_ID,
    keys.META_GENESIS_HASH,
    keys.META_HEIGHT,
    keys.META_TIP_HASH,
    keys.META_STATE_ROOT,
)
LEDGER_DIR = "ledger"
RESTORING_DIR = "ledger.restoring"

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class BackupError(Exception):
    """A backup that cannot be written or restored; ``code`` is stable for scripts."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class BackupHeader:
    chain_id: str
    crypto_suite: str
    genesis_hash: bytes
    height: int
    tip_hash: bytes
    state_root: bytes
    verified: tuple[int, bytes] | None
    ledger_format: str
    node_id: str
    created_ms: int

    def encode(self) -> bytes:
        return canonical_encode(
            {
                "format": FORMAT,
                "chain_id": self.chain_id,
                "crypto_suite": self.crypto_suite,
                "genesis_hash": self.genesis_hash,
                "height": self.height,
                "tip_hash": self.tip_hash,
                "state_root": self.state_root,
                "verified": None if self.verified is None else list(self.verified),
                "ledger_format": self.ledger_format,
                "node_id": self.node_id,
                "created_ms": self.created_ms,
                "digest": DIGEST_NAME,
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> BackupHeader:
        try:
            fields = canonical_decode(data)
        except CodecError as exc:
            raise BackupError("BACKUP_CORRUPT", f"the header does not decode ({exc})") from None
        if not isinstance(fields, dict):
            raise BackupError("BACKUP_CORRUPT", "the header is not a map")
        if fields.get("format") != FORMAT:
            raise BackupError(
                "BACKUP_FORMAT", f"backup format {fields.get('format')!r} is not {FORMAT}"
            )
        if fields.get("digest") != DIGEST_NAME:
            raise BackupError("BACKUP_FORMAT", f"unknown digest {fields.get('digest')!r}")
        try:
            verified = fields["verified"]
            if verified is not None and not (
                isinstance(verified, list)
                and len(verified) == 2
                and isinstance(verified[0], int)
                and isinstance(verified[1], bytes)
            ):
                raise TypeError("verified is not [height, block hash]")
            header = cls(
                chain_id=fields["chain_id"],
                crypto_suite=fields["crypto_suite"],
                genesis_hash=fields["genesis_hash"],
                height=fields["height"],
                tip_hash=fields["tip_hash"],
                state_root=fields["state_root"],
                verified=None if verified is None else (verified[0], verified[1]),
                ledger_format=fields["ledger_format"],
                node_id=fields["node_id"],
                created_ms=fields["created_ms"],
            )
        except (KeyError, IndexError, TypeError) as exc:
            raise BackupError("BACKUP_CORRUPT", f"the header lacks a field ({exc})") from None
        types = (
            (header.chain_id, str),
            (header.crypto_suite, str),
            (header.genesis_hash, bytes),
            (header.height, int),
            (header.tip_hash, bytes),
            (header.state_root, bytes),
            (header.ledger_format, str),
            (header.node_id, str),
            (header.created_ms, int),
        )
        if any(not isinstance(value, kind) for value, kind in types) or header.height < 0:
            raise BackupError("BACKUP_CORRUPT", "a header field has the wrong type")
        return header

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "crypto_suite": self.crypto_suite,
            "genesis_hash": self.genesis_hash.hex(),
            "height": self.height,
            "tip_hash": self.tip_hash.hex(),
            "state_root": self.state_root.hex(),
            "node_id": self.node_id,
            "created_ms": self.created_ms,
        }


@dataclass(frozen=True, slots=True)
class BackupResult:
    header: BackupHeader
    records: int
    bytes_written: int
    path: Path


@dataclass(frozen=True, slots=True)
class RestoreResult:
    header: BackupHeader
    records: int
    checkpoint_verified: int  # newest checkpoint certificate that verified; 0 when none
    path: Path


def included(key: bytes) -> bool:
    if key.startswith(keys.META):
        return key in INCLUDED_META
    return key.startswith(INCLUDED)


# --- writing --------------------------------------------------------------------------------------


def write_backup(
    ledger: Ledger,
    out: Path,
    *,
    node_id: str,
    cancelled: threading.Event | None = None,
    clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
) -> BackupResult:
    """Write a backup of ``ledger`` to ``out`` (which must not exist) from one snapshot.

    Safe beside the node's writer: it reads a snapshot only. ``cancelled`` stops it (the node
    is stopping): the partial file is removed and ``BackupError("CANCELLED")`` raised."""
    out = Path(out)
    if out.exists():
        raise BackupError("OUTPUT_EXISTS", f"{out} already exists")
    if not out.parent.is_dir():
        raise BackupError("BAD_OUTPUT", f"{out.parent} is not a directory")
    partial = out.parent / f".{out.name}.partial-{os.getpid()}-{threading.get_ident()}"
    snapshot = ledger.snapshot()
    try:
        header = _snapshot_header(snapshot, ledger, node_id, clock_ms())
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise BackupError("BAD_OUTPUT", f"cannot create {partial}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as handle:
                records, size = _write_records(handle, header, snapshot, cancelled)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(partial, out)  # never replaces a file that appeared meanwhile
            except FileExistsError:
                raise BackupError("OUTPUT_EXISTS", f"{out} already exists") from None
            sync_directory(out.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
    except OSError as exc:
        raise BackupError("WRITE_FAILED", f"cannot write {out}: {exc.strerror or exc}") from None
    except StoreError as exc:
        raise BackupError("WRITE_FAILED", f"the node's ledger reports corruption: {exc}") from None
    finally:
        snapshot.close()
    return BackupResult(header, records, size, out)


def _snapshot_header(snapshot: Snapshot, ledger: Ledger, node_id: str, now_ms: int) -> BackupHeader:
    def read(key: bytes) -> bytes:
        value = snapshot.get(key)
        if value is None:
            raise BackupError("WRITE_FAILED", f"the ledger has no {key.decode()} record")
        return bytes(value)

    verified_raw = snapshot.get(keys.META_VERIFIED)
    verified = None
    if verified_raw is not None:
        try:
            height, block_hash = canonical_decode(verified_raw)
            verified = (int(height), bytes(block_hash))
        except (CodecError, TypeError, ValueError) as exc:
            raise BackupError(
                "WRITE_FAILED", f"the verified record does not decode: {exc}"
            ) from None
    return BackupHeader(
        chain_id=read(keys.META_CHAIN_ID).decode(),
        crypto_suite=ledger.suite.name,
        genesis_hash=read(keys.META_GENESIS_HASH),
        height=keys.decode_height(read(keys.META_HEIGHT)),
        tip_hash=read(keys.META_TIP_HASH),
        state_root=read(keys.META_STATE_ROOT),
        verified=verified,
        ledger_format=read(keys.META_FORMAT).decode(),
        node_id=node_id,
        created_ms=now_ms,
    )


def _write_records(
    handle: BinaryIO, header: BackupHeader, snapshot: Snapshot, cancelled: threading.Event | None
) -> tuple[int, int]:
    digest = hashlib.sha256()
    size = 0

    def put(data: bytes) -> None:
        nonlocal size
        digest.update(data)
        handle.write(data)
        size += len(data)

    encoded = header.encode()
    put(MAGIC + _U32.pack(len(encoded)) + encoded)
    records = 0
    for key, value in snapshot.iterator():
        if not included(key):
            continue
        put(bytes([RECORD_TAG]) + _U32.pack(len(key)) + key + _U32.pack(len(value)) + value)
        records += 1
        if records % CANCEL_CHECK_RECORDS == 0 and cancelled is not None and cancelled.is_set():
            raise BackupError("CANCELLED", "the node is stopping")
    put(bytes([END_TAG]) + _U64.pack(records))
    handle.write(digest.digest())
    return records, size + DIGEST_BYTES


def sync_directory(path: Path) -> None:
    """Make a directory's entries (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- reading --------------------------------------------------------------------------------------


class _Reader:
    """Reads a backup file exactly, hashing what it reads; a short read is a truncated file."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()

    def read(self, size: int, what: str, *, hashed: bool = True) -> bytes:
        data = self._handle.read(size)
        if len(data) != size:
            raise BackupError("BACKUP_TRUNCATED", f"the file ends inside {what}")
        if hashed:
            self.digest.update(data)
        return data

    def at_end(self) -> bool:
        return self._handle.read(1) == b""


def read_header(handle: BinaryIO) -> tuple[BackupHeader, _Reader]:
    reader = _Reader(handle)
    magic = handle.read(len(MAGIC))
    if magic != MAGIC:
        raise BackupError("NOT_A_BACKUP", "the file does not start like an ibledger backup")
    reader.digest.update(magic)
    (length,) = _U32.unpack(reader.read(_U32.size, "the header length"))
    if length > HEADER_BYTES_MAX:
        raise BackupError("BACKUP_CORRUPT", f"a header of {length} bytes is over the limit")
    return BackupHeader.decode(reader.read(length, "the header")), reader


def iter_records(reader: _Reader) -> Iterator[tuple[bytes, bytes]]:
    """The records in order, checked for shape, order and the allow-list; once exhausted, the
    trailer's count and digest have been checked too."""
    count = 0
    previous: bytes | None = None
    while True:
        tag = reader.read(1, "a record tag")[0]
        if tag == END_TAG:
            break
        if tag != RECORD_TAG:
            raise BackupError("BACKUP_CORRUPT", f"record {count}: unknown tag {tag}")
        (key_length,) = _U32.unpack(reader.read(_U32.size, "a key length"))
        if not 0 < key_length <= KEY_BYTES_MAX:
            raise BackupError("BACKUP_CORRUPT", f"record {count}: key length {key_length}")
        key = reader.read(key_length, "a key")
        (value_length,) = _U32.unpack(reader.read(_U32.size, "a value length"))
        if value_length > VALUE_BYTES_MAX:
            raise BackupError("BACKUP_CORRUPT", f"record {count}: value length {value_length}")
        value = reader.read(value_length, "a value")
        if previous is not None and key <= previous:
            raise BackupError("BACKUP_CORRUPT", f"record {count}: keys out of order")
        if not included(key):
            raise BackupError("BACKUP_CORRUPT", f"record {count}: key {key[:16]!r} not allowed")
        previous = key
        count += 1
        yield key, value
    (stated,) = _U64.unpack(reader.read(_U64.size, "the record count"))
    expected = reader.digest.digest()
    if reader.read(DIGEST_BYTES, "the digest", hashed=False) != expected:
        raise BackupError("BACKUP_CORRUPT", "the digest does not match the content")
    if stated != count:
        raise BackupError("BACKUP_CORRUPT", f"the trailer says {stated} records, found {count}")
    if not reader.at_end():
        raise BackupError("BACKUP_CORRUPT", "data follows the digest")


# --- restoring ------------------------------------------------------------------------------------


def restore_backup(
    source: Path,
    data_dir: Path,
    genesis: Mapping[str, Any],
    *,
    certificate_check: CertificateCheck | CheckFromState | None,
    checkpoint_check: CheckpointCheck | CheckpointCheckFromState | None,
) -> RestoreResult:
    """Rebuild ``data_dir/ledger`` from the backup at ``source``, verifying everything.

    Refuses (``TARGET_NOT_EMPTY``) a data directory that already holds a ledger: its consensus
    records may say what this validator signed beyond the backup."""
    target = data_dir / LEDGER_DIR
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(
            "TARGET_NOT_EMPTY",
            f"{target} already holds a ledger: restore only into a node without one",
        )
    try:
        suite = get_suite(str(genesis.get("crypto_suite", "")))
    except CryptoError as exc:
        raise BackupError(exc.code, exc.message) from None
    work = data_dir / RESTORING_DIR
    data_dir.mkdir(parents=True, exist_ok=True)
    if work.exists():
        shutil.rmtree(work)  # left by a restore that did not finish
    try:
        with Path(source).open("rb") as handle:
            header, reader = read_header(handle)
            if header.chain_id != genesis.get("chain_id"):
                raise BackupError(
                    "WRONG_CHAIN",
                    f"the backup is of chain {header.chain_id!r}, "
                    f"the node's genesis is {genesis.get('chain_id')!r}",
                )
            if header.genesis_hash != genesis_hash(suite, genesis):
                raise BackupError("GENESIS_MISMATCH", "the backup was made from another genesis")
            records = _load_records(reader, work)
        checkpoint_verified = _verify_restored(
            work, genesis, header, certificate_check, checkpoint_check
        )
        work.rename(target)
        sync_directory(data_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return RestoreResult(header, records, checkpoint_verified, target)


def _load_records(reader: _Reader, work: Path) -> int:
    store = LevelDBStore.open(work, must_be_new=True)
    try:
        count = 0
        batch = WriteBatch(store, sync=True)
        pending = 0
        seen_meta: set[bytes] = set()
        for key, value in iter_records(reader):
            batch.put(key, value)
            count += 1
            if key.startswith(keys.META):
                seen_meta.add(key)
            pending += len(key) + len(value)
            if pending >= RESTORE_BATCH_BYTES:
                batch.write()
                batch, pending = WriteBatch(store, sync=True), 0
        batch.write()
    finally:
        store.close()
    # Without its format record, opening would create a new chain over the records instead.
    missing = sorted(key.decode() for key in set(REQUIRED_META) - seen_meta)
    if missing:
        raise BackupError("BACKUP_DOES_NOT_VERIFY", f"the backup lacks {', '.join(missing)}")
    return count


def _verify_restored(
    work: Path,
    genesis: Mapping[str, Any],
    header: BackupHeader,
    certificate_check: CertificateCheck | CheckFromState | None,
    checkpoint_check: CheckpointCheck | CheckpointCheckFromState | None,
) -> int:
    try:
        with Ledger.open(
            work, genesis, verify="full", certificate_check=certificate_check, verifier_workers=1
        ) as ledger:
            if (ledger.height, ledger.tip_hash, ledger.state_root) != (
                header.height,
                header.tip_hash,
                header.state_root,
            ):
                raise BackupError(
                    "BACKUP_DOES_NOT_VERIFY",
                    "the header's height, tip or state root is not the restored ledger's",
                )
            if isinstance(checkpoint_check, CheckpointCheckFromState):
                checkpoint_check = checkpoint_check.build(ledger.state())
            return ledger.verify_derived(checkpoint_check)
    except LedgerCorruption as exc:
        raise BackupError("BACKUP_DOES_NOT_VERIFY", str(exc)) from None
    except LedgerError as exc:
        raise BackupError("BACKUP_DOES_NOT_VERIFY", str(exc)) from None


# --- checks against the chain's validator sets ------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckpointCheckFromState:
    """A checkpoint certificate check built from the restored ledger's committed state (which
    validator set certified each height, ``epochs.py``), once it is open."""

    build: Callable[[StateView], CheckpointCheck]


def chain_checks(
    genesis_validators: Sequence[ValidatorInfo], suite_name: str
) -> tuple[CheckFromState, CheckpointCheckFromState]:
    """Commit and checkpoint certificate checks, each against the validator set of its height as
    the restored ledger records the sets (the genesis validators until a change), as the node
    itself checks blocks it did not execute."""
    suite = get_suite(suite_name)

    def certificates(state: StateView) -> CertificateCheck:
        return certificate_check(EpochTable.from_state(state, genesis_validators), suite)

    def checkpoints(state: StateView) -> CheckpointCheck:
        table = EpochTable.from_state(state, genesis_validators)

        def checkpoint(seq: int, digest: bytes, state_root: bytes, encoded: bytes) -> bool:
            try:
                cert = decode_checkpoint_certificate(encoded)
            except ValueError:
                return False
            validator_set = table.at(seq)
            return (cert.seq, cert.block_digest, cert.state_root) == (
                seq,
                digest,
                state_root,
            ) and verify_checkpoint_proof(
                validator_set.members, validator_set.f, cert, validator_set.verifier(suite)
            )

        return checkpoint

    return CheckFromState(certificates), CheckpointCheckFromState(checkpoints)
