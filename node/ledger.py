"""The ledger: executes committed blocks through the contracts and keeps them in a ``Store``.

Theory of operation
-------------------
* **One atomic batch per block.**  Everything a block changes — the block, its hash index, its
  commit certificate, the per-transaction results and events, the write set, the transaction
  index, the contract state and the metadata (height, tip hash, state root) — goes into a single
  store write with ``sync=True``.  A crash leaves either all of a block or none of it; a write
  that fails raises (``StoreIOError``) before the in-memory tip moves.
* **Storage behind a protocol.**  The ledger reads and writes only through ``store.Store``:
  ``Ledger.open(path)`` runs on LevelDB (``leveldb_store.py``, what a node uses);
  ``Ledger.open_store`` takes any store, e.g. ``memory_store.MemoryStore`` in tests.
* **Deterministic execution.**  Each transaction runs against an overlay of the state as it was
  after the previous transactions of the block; a failed transaction is recorded with its result
  code and message and writes nothing.  The inputs are the block and the previous state only.
* **Trust nothing on disk.**  The database is opened with ``paranoid_checks=True`` and read with
  checksum verification (``leveldb_store.py``); verification re-derives every block hash, parent
  link, transaction Merkle root and the state-root chain (see ``blocks.py``) and refuses to run
  on a broken chain, naming the first broken height.  A log tail lost after it was synced is
  refused when the store opens (``leveldb_store.py``'s synced-write witness); damage in a table
  file that no read touches is found by ``scan_records``, which the node runs in the background.
* **Verify each block once at start-up.**  A verified-height record (``m/verified``: height and
  block hash) rides in every block's batch, because a block is checked before it is written (this
  process executed it and derived its state root; the consensus core checked its commit
  certificate).  ``verify="recorded"`` (what a node uses) verifies at open only the blocks above
  the record plus the tip block, so opening costs the same at height 100 or 100,000; every
  read still verifies LevelDB's checksums, and ``verify_range`` lets the node re-check the older
  blocks in the background.  A ledger without a record (written by an older version) is
  verified in full once, then recorded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ibledger.consensus import (
    ZERO_DIGEST,
    Block,
    CheckpointCertificate,
    CommittedBlock,
    ExecutedTip,
    decode_commit_certificate,
    encode_commit_certificate,
    merkle_proof,
)
from ibledger.contracts import runtime as contracts
from ibledger.contracts.codec import CodecError, canonical_decode, canonical_encode
from ibledger.contracts.core import StateView
from ibledger.contracts.errors import GenesisError
from ibledger.contracts.overlay import BlockOverlay

from . import archive, failpoints
from . import storage_keys as keys
from .blocks import (
    BlockFormatError,
    BlockHeader,
    Receipt,
    ResultProof,
    StateLink,
    StoredBlock,
    TxResult,
    chain_state_root,
    make_header,
    prove_inclusion,
    results_digest,
    tx_outcomes,
    txs_root,
)
from .crypto import CryptoSuite, get_suite
from .epochs import EpochError, EpochTable
from .leveldb_store import LevelDBStore
from .store import ReadView, Snapshot, Store, StoreCorruption, StoreIOError, WriteBatch
from .tx import EnvelopeDecoder, Transaction, TxError
from .validator_set import ValidatorInfo
from .verifier import BatchVerifier, SignerKey, Verdict

ZERO_HASH = bytes(32)
SIGNER_CACHE_MAX = 100_000
IDENTITY_PREFIX = b"id/"  # contracts/identity.py keeps participants and keys under it
CertificateCheck = Callable[[BlockHeader, bytes, bytes], bool]  # header, block hash, certificate


@dataclass(frozen=True, slots=True)
class CheckFromState:
    """A certificate check that depends on the chain's own state (which validator set certified
    a height, ``epochs.py``): ``open`` builds it from the committed state once the store is
    open, before it verifies any block."""

    build: Callable[[StateView], CertificateCheck]


# seq, the block's consensus digest and state root there, the stored certificate
CheckpointCheck = Callable[[int, bytes, bytes, bytes], bool]


class LedgerError(Exception):
    """A request the ledger cannot honour (wrong height, wrong parent, unknown chain...)."""


class LedgerCorruption(LedgerError):
    """The stored chain does not verify; ``height`` is the first broken height when known."""

    def __init__(self, height: int | None, reason: str) -> None:
        where = f"height {height}" if height is not None else "the database"
        super().__init__(f"ledger corrupted at {where}: {reason}")
        self.height = height
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AppliedBlock:
    header: BlockHeader
    block_hash: bytes
    results: tuple[TxResult, ...]
    state_root: bytes
    tx_ids: tuple[bytes, ...] = ()  # of the transactions that decoded, in block order
    events: tuple[Mapping[str, Any], ...] = ()  # as stored with the block
    senders: tuple[str, ...] = ()  # per transaction index; "" where the envelope did not decode


@dataclass(frozen=True, slots=True)
class TxLocation:
    height: int
    index: int
    code: str


class _StateReader:
    """A contracts ``StateView`` over committed state (the store, or one of its snapshots)."""

    def __init__(self, source: ReadView) -> None:
        self._source = source

    def get(self, key: bytes) -> bytes | None:
        return self._source.get(keys.state_key(key))

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        start = len(keys.STATE)
        for key, value in self._source.iterator(prefix=keys.state_key(prefix)):
            yield key[start:], value


# For a chain whose genesis predates the admission section (and for test genesis documents
# without one): the value `network init` writes.
EXPIRY_HORIZON_DEFAULT_MS = 24 * 3600 * 1000


def expiry_horizon_of(genesis: Mapping[str, Any]) -> int:
    section = genesis.get("admission")
    value = section.get("tx_expiry_horizon_ms") if isinstance(section, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return EXPIRY_HORIZON_DEFAULT_MS
    return value


def genesis_hash(suite: CryptoSuite, genesis: Mapping[str, Any]) -> bytes:
    return suite.hash(b"ibledger/genesis/v1" + canonical_encode(dict(genesis)))


class Ledger:
    """A node's chain and world state in one store (a LevelDB database on a node)."""

    def __init__(
        self,
        store: Store,
        suite: CryptoSuite,
        *,
        chain_id: str,
        sync: bool,
        verifier_workers: int,
    ) -> None:
        self._store = store
        self.suite = suite
        self.chain_id = chain_id
        self._sync = sync
        self._write_lock = threading.Lock()
        self.decoder = EnvelopeDecoder(hash_fn=suite.hash)
        self.verifier = BatchVerifier(suite, self.resolve_signer, workers=verifier_workers)
        # Signer keys change only through identity transactions; see append_block.
        self._signer_cache: dict[bytes, SignerKey | None] = {}
        self.height = -1
        self.tip_hash = ZERO_HASH
        self.state_root = ZERO_HASH
        self.tip_timestamp_ms = 0
        # How far ahead of the block time a transaction may expire; part of the chain's rules.
        self.expiry_horizon_ms = EXPIRY_HORIZON_DEFAULT_MS
        # Told (execution seconds, write seconds) of every block appended: metrics.
        self.on_block: Callable[[float, float], None] = lambda execute_s, write_s: None

    # --- opening -------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path,
        genesis: Mapping[str, Any] | None = None,
        *,
        verify: str = "full",
        certificate_check: CertificateCheck | CheckFromState | None = None,
        sync: bool = True,
        verifier_workers: int = 2,
    ) -> Ledger:
        """Open (creating from ``genesis`` if empty) and verify the chain in the LevelDB database
        at ``path``, checking commit certificates with ``certificate_check``.

        ``verify`` is ``"full"`` (every height), ``"tail:N"`` (the last N heights), ``"recorded"``
        (the heights above the verified-height record, and at least the tip) or ``"none"``.
        """
        try:
            store = LevelDBStore.open(path)
        except StoreCorruption as exc:
            raise LedgerCorruption(None, str(exc)) from exc
        except StoreIOError as exc:
            raise LedgerError(f"cannot open the ledger at {path}: {exc}") from exc
        return cls.open_store(
            store,
            genesis,
            verify=verify,
            certificate_check=certificate_check,
            sync=sync,
            verifier_workers=verifier_workers,
        )

    @classmethod
    def open_store(
        cls,
        store: Store,
        genesis: Mapping[str, Any] | None = None,
        *,
        verify: str = "full",
        certificate_check: CertificateCheck | CheckFromState | None = None,
        sync: bool = True,
        verifier_workers: int = 2,
    ) -> Ledger:
        """``open`` over an open ``store``, which the ledger then owns: ``close`` closes it, and
        so does a failure to open."""
        try:
            return cls._open_store(
                store, genesis, verify, certificate_check, sync, verifier_workers
            )
        except BaseException:
            store.close()
            raise

    @classmethod
    def _open_store(
        cls,
        store: Store,
        genesis: Mapping[str, Any] | None,
        verify: str,
        certificate_check: CertificateCheck | CheckFromState | None,
        sync: bool,
        verifier_workers: int,
    ) -> Ledger:
        def read(key: bytes) -> bytes | None:
            try:
                return store.get(key)
            except StoreCorruption as exc:
                raise LedgerCorruption(None, str(exc)) from exc

        stored_format = read(keys.META_FORMAT)
        if stored_format is None:
            if genesis is None:
                raise LedgerError("the ledger is empty and no genesis was given to create it")
            return cls._create(store, genesis, sync, verifier_workers)
        if stored_format != keys.FORMAT_VERSION:
            raise LedgerError(
                f"unsupported ledger format {stored_format!r}; this version reads "
                f"{keys.FORMAT_VERSION!r} only (block headers no longer carry a view). Move the "
                "data directory aside and let the node catch up from its peers"
            )
        chain_id = (read(keys.META_CHAIN_ID) or b"").decode()
        stored_genesis = read(keys.META_GENESIS_HASH)
        suite_name = str(genesis["crypto_suite"]) if genesis else "ed25519-sha256"
        suite = get_suite(suite_name)
        if genesis is not None:
            if genesis.get("chain_id") != chain_id:
                raise LedgerError(
                    f"this data directory holds chain {chain_id!r}, not {genesis.get('chain_id')!r}"
                )
            if genesis_hash(suite, genesis) != stored_genesis:
                raise LedgerError(
                    "this data directory was created from a different genesis file for the same "
                    "chain id"
                )
        ledger = cls(store, suite, chain_id=chain_id, sync=sync, verifier_workers=verifier_workers)
        horizon = read(keys.META_EXPIRY_HORIZON)
        if horizon is not None:
            ledger.expiry_horizon_ms = int.from_bytes(horizon, "big")
        elif genesis is not None:
            ledger.expiry_horizon_ms = expiry_horizon_of(genesis)
        if isinstance(certificate_check, CheckFromState):
            certificate_check = certificate_check.build(ledger.state())
        ledger._load_tip(verify, certificate_check)
        ledger._index_history()
        return ledger

    @classmethod
    def _create(
        cls, store: Store, genesis: Mapping[str, Any], sync: bool, verifier_workers: int
    ) -> Ledger:
        chain_id = genesis.get("chain_id")
        if not isinstance(chain_id, str) or not chain_id:
            raise LedgerError("genesis must name a chain_id")
        suite = get_suite(str(genesis.get("crypto_suite", "")))
        timestamp_ms = genesis.get("genesis_time_ms")
        if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int) or timestamp_ms < 0:
            raise LedgerError("genesis must give genesis_time_ms as a non-negative integer")
        anchor = genesis_hash(suite, genesis)
        try:
            writes = sorted(contracts.genesis_writes(genesis))
        except GenesisError as exc:
            raise LedgerError(f"invalid genesis: {exc}") from exc
        ledger = cls(store, suite, chain_id=chain_id, sync=sync, verifier_workers=verifier_workers)
        ledger.expiry_horizon_ms = expiry_horizon_of(genesis)
        header = make_header(
            height=0,
            parent_hash=anchor,
            timestamp_ms=timestamp_ms,
            envelopes=(),
            hash_fn=suite.hash,
        )
        batch = WriteBatch(store, sync=sync)
        batch.put(keys.META_FORMAT, keys.FORMAT_VERSION)
        batch.put(keys.META_CHAIN_ID, chain_id.encode())
        batch.put(keys.META_GENESIS_HASH, anchor)
        batch.put(keys.META_EXPIRY_HORIZON, ledger.expiry_horizon_ms.to_bytes(8, "big"))
        root = ledger._stage_block(batch, header, (), (), (), [(k, v) for k, v in writes], None)
        batch.write()
        ledger._advance_tip(header, root)
        return ledger

    def close(self) -> None:
        self.verifier.close()
        self._store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- verification --------------------------------------------------------------------------

    def _load_tip(self, verify: str, certificate_check: CertificateCheck | None) -> None:
        height_bytes = self._get(keys.META_HEIGHT, None)
        if height_bytes is None:
            raise LedgerCorruption(None, "metadata has no height")
        tip = keys.decode_height(height_bytes)
        recorded = self.verified_record()
        if verify == "full":
            start = 0
        elif verify.startswith("tail:"):
            start = max(0, tip - int(verify[5:]) + 1)
        elif verify == "recorded":
            start = 0 if recorded is None else min(recorded[0] + 1, tip)
        elif verify == "none":
            start = tip
        else:
            raise LedgerError(f"unknown verify mode {verify!r} (full, tail:N, recorded, none)")
        if recorded is not None and recorded[0] > tip:
            raise LedgerCorruption(tip, "the verified-height record is above the recorded tip")
        parent_hash, previous_root, previous_timestamp = self._verify_blocks(
            start, tip, certificate_check
        )
        # When the record names a block this pass verified, it must be that very block.
        if (
            recorded is not None
            and start <= recorded[0]
            and self._read_block(recorded[0]).block_hash != recorded[1]
        ):
            raise LedgerCorruption(recorded[0], "the block differs from the one verified")
        if self._get(keys.block_key(tip + 1), tip + 1) is not None:
            raise LedgerCorruption(tip + 1, "a block is stored beyond the recorded tip")
        if self._get(keys.META_TIP_HASH, None) != parent_hash:
            raise LedgerCorruption(tip, "the recorded tip hash is not the last block's hash")
        if self._get(keys.META_STATE_ROOT, None) != previous_root:
            raise LedgerCorruption(tip, "the recorded state root is not the last block's")
        self.height, self.tip_hash, self.state_root = tip, parent_hash, previous_root
        self.tip_timestamp_ms = previous_timestamp
        covered = start == 0 or (recorded is not None and start <= recorded[0] + 1)
        if covered and (recorded is None or recorded[0] < tip):
            self._store.write(
                [(keys.META_VERIFIED, canonical_encode([tip, parent_hash]))], sync=self._sync
            )

    def _index_history(self) -> None:
        """Index for as-of reads the verified blocks that are not yet (archive.py)."""
        try:
            archive.catch_up(self._store, self.height, sync=self._sync)
        except archive.ArchiveError as exc:
            raise LedgerCorruption(None, str(exc)) from exc
        except StoreCorruption as exc:
            raise LedgerCorruption(None, str(exc)) from exc

    def as_of(self, height: int) -> archive.AsOfState:
        """The contract state at the end of block ``height`` (check ``history_range`` first)."""
        return archive.AsOfState(self._store, height)

    def history_range(self) -> tuple[int, int]:
        """``(oldest, newest)`` heights an as-of read can be answered for."""
        return 0, min(self.height, archive.indexed_height(self._store))

    def verified_record(self) -> tuple[int, bytes] | None:
        """``(height, block hash)`` of the highest block known verified, if recorded."""
        raw = self._get(keys.META_VERIFIED, None)
        if raw is None:
            return None
        try:
            height, block_hash = canonical_decode(raw)
        except (CodecError, TypeError, ValueError) as exc:
            raise LedgerCorruption(
                None, f"the verified-height record does not decode ({exc})"
            ) from exc
        if not isinstance(height, int) or not isinstance(block_hash, bytes):
            raise LedgerCorruption(None, "the verified-height record is malformed")
        return height, block_hash

    def verify_range(
        self, first: int, last: int, certificate_check: CertificateCheck | None = None
    ) -> None:
        """Re-verify stored blocks ``first..last`` (within the tip): the same checks as at open.
        Safe beside the writer: stored blocks never change. Raises ``LedgerCorruption``."""
        last = min(last, self.height)
        if first <= last:
            self._verify_blocks(max(first, 0), last, certificate_check)

    def scan_records(self, start: bytes, count: int) -> bytes | None:
        """Read up to ``count`` stored records from key ``start`` on, so that LevelDB verifies
        the checksum of every table block they sit in (damage that no other read has touched
        yet). Returns the key to go on from, or ``None`` at the end. Safe beside the writer;
        raises ``LedgerCorruption``."""
        try:
            for seen, (key, _) in enumerate(self._store.iterator(start=start)):
                if seen == count:
                    return key
        except StoreCorruption as exc:
            raise LedgerCorruption(None, f"a stored record fails its checksum: {exc}") from exc
        return None

    def verify_derived(self, checkpoint_check: CheckpointCheck | None = None) -> int:
        """Check the records that block verification does not re-derive, against the blocks:
        the contract state (every write set from block 0 replayed), the transaction index, the
        state links and the stored checkpoint certificates (``checkpoint_check`` says whether a
        certificate's signatures verify). For a ledger of outside origin (a restored backup);
        it reads every record, so a node does not run it at start-up. Returns the height of the
        newest checkpoint certificate that verified (0 when none is stored): the state up to it
        is signed by a quorum, not only self-consistent. Raises ``LedgerCorruption``."""
        replayed: dict[bytes, bytes] = {}
        positions: dict[bytes, list[tuple[int, int, str]]] = {}  # tx id -> where it appears
        ok_txs = 0
        for height in range(self.height + 1):
            raw = self._get(keys.write_set_key(height), height) or b""
            try:
                write_set = canonical_decode(raw)
                for key, value in write_set:
                    if value is None:
                        replayed.pop(key, None)
                    else:
                        replayed[key] = value
            except (CodecError, TypeError, ValueError) as exc:
                raise LedgerCorruption(height, f"the write set does not decode ({exc})") from exc
            block = self._read_block(height)
            link = self._get(keys.state_link_key(height), height)
            if link is not None:
                outcomes = _stored_results_digest(
                    self.suite.hash, self._get(keys.results_key(height), height) or b""
                )
                if link != canonical_encode([block.block_hash, outcomes, self.suite.hash(raw)]):
                    raise LedgerCorruption(height, "the state link does not match the block")
            for index, (envelope, result) in enumerate(zip(block.txs, block.results, strict=True)):
                try:
                    tx_id = self.decoder.decode(envelope).tx_id
                except TxError:
                    continue  # refused before execution: never indexed
                positions.setdefault(tx_id, []).append((height, index, result.code))
                ok_txs += result.code == "OK"
        start = len(keys.STATE)
        for key, value in self._store.iterator(prefix=keys.STATE):
            if replayed.pop(key[start:], None) != value:
                raise LedgerCorruption(
                    None, f"state key {key[start:]!r} is not what the blocks wrote"
                )
        if replayed:
            missing = min(replayed)
            raise LedgerCorruption(None, f"state key {missing!r} that the blocks wrote is missing")
        indexed_ok = 0
        start = len(keys.TX_INDEX)
        for key, value in self._store.iterator(prefix=keys.TX_INDEX):
            try:
                height, index, code = canonical_decode(value)
                found = (height, index, code) in positions.get(key[start:], [])
            except (CodecError, TypeError, ValueError):
                found = False
            if not found:
                raise LedgerCorruption(None, f"the index entry of tx {key[start:].hex()} is wrong")
            indexed_ok += code == "OK"
        if indexed_ok != ok_txs:
            raise LedgerCorruption(None, "the transaction index misses committed transactions")
        return self._verify_checkpoints(checkpoint_check)

    def _verify_checkpoints(self, checkpoint_check: CheckpointCheck | None) -> int:
        verified = 0
        start = len(keys.CHECKPOINT)
        for key, value in self._store.iterator(prefix=keys.CHECKPOINT):
            seq = keys.decode_height(key[start:])
            if seq > self.height:
                raise LedgerCorruption(seq, "a checkpoint certificate is above the tip")
            block = self._read_block(seq)
            digest = block.header.consensus_digest(self.suite.hash)
            if checkpoint_check is not None:
                if not checkpoint_check(seq, digest, block.state_root, value):
                    raise LedgerCorruption(seq, "the checkpoint certificate does not verify")
                verified = seq
        return verified

    def _verify_blocks(
        self, start: int, tip: int, certificate_check: CertificateCheck | None
    ) -> tuple[bytes, bytes, int]:
        """Check blocks ``start..tip`` against each other and the block before ``start``;
        return the last block's hash, state root and time."""
        parent_hash, previous_root = self._anchor_for(start)
        previous_timestamp = -1
        if start > 0:
            previous_timestamp = self._read_block(start - 1).header.timestamp_ms
        for height in range(start, tip + 1):
            stored = self._read_block(height)
            header = stored.header
            if header.height != height:
                raise LedgerCorruption(height, f"the stored block says height {header.height}")
            if header.parent_hash != parent_hash:
                raise LedgerCorruption(height, "the parent hash does not match the previous block")
            if height and header.timestamp_ms <= previous_timestamp:
                raise LedgerCorruption(height, "the block time does not increase")
            if txs_root(stored.txs, self.suite.hash) != header.txs_root:
                raise LedgerCorruption(height, "the transactions do not match the header's root")
            if self._get(keys.block_hash_key(stored.block_hash), height) != keys.encode_height(
                height
            ):
                raise LedgerCorruption(height, "the block hash index does not point at this block")
            results_record = self._get(keys.results_key(height), height)
            write_set = self._get(keys.write_set_key(height), height)
            if results_record is None or write_set is None:
                raise LedgerCorruption(height, "the block's results or write set are missing")
            root = chain_state_root(
                self.suite.hash,
                previous_root,
                height,
                stored.block_hash,
                _stored_results_digest(self.suite.hash, results_record),
                write_set,
            )
            if root != stored.state_root:
                raise LedgerCorruption(height, "the state root chain does not verify")
            if (
                certificate_check is not None
                and height > 0
                and (
                    stored.certificate is None
                    or not certificate_check(header, stored.block_hash, stored.certificate)
                )
            ):
                raise LedgerCorruption(height, "the commit certificate does not verify")
            parent_hash, previous_root, previous_timestamp = (
                stored.block_hash,
                root,
                header.timestamp_ms,
            )
        return parent_hash, previous_root, previous_timestamp

    def _anchor_for(self, start: int) -> tuple[bytes, bytes]:
        """Parent hash and state root that the block at ``start`` must follow."""
        if start == 0:
            return self._get(keys.META_GENESIS_HASH, 0) or b"", ZERO_HASH
        previous = self._read_block(start - 1)
        return previous.block_hash, previous.state_root

    def _get(self, key: bytes, height: int | None) -> bytes | None:
        try:
            return self._store.get(key)
        except StoreCorruption as exc:
            raise LedgerCorruption(height, str(exc)) from exc

    def _read_block(self, height: int) -> StoredBlock:
        raw = self._get(keys.block_key(height), height)
        if raw is None:
            raise LedgerCorruption(height, "the block is missing")
        try:
            decoded = canonical_decode(raw)
            if not isinstance(decoded, dict) or sorted(decoded) != ["header", "txs"]:
                raise BlockFormatError("a stored block is {header, txs}")
            header = BlockHeader.from_dict(decoded["header"])
            txs = decoded["txs"]
            if not isinstance(txs, list) or not all(isinstance(tx, bytes) for tx in txs):
                raise BlockFormatError("txs must be a list of envelopes")
            results_raw = self._get(keys.results_key(height), height)
            if results_raw is None:
                raise BlockFormatError("results record missing")
            record = canonical_decode(results_raw)
            results = tuple(TxResult(code, message) for code, message in record["results"])
            events = tuple(record["events"])
            state_root = record["state_root"]
        except (CodecError, BlockFormatError, KeyError, TypeError, ValueError) as exc:
            raise LedgerCorruption(height, f"the stored block does not decode ({exc})") from exc
        if len(results) != len(txs) or len(txs) != header.tx_count:
            raise LedgerCorruption(height, "the result count does not match the transactions")
        return StoredBlock(
            header=header,
            block_hash=header.hash(self.suite.hash),
            txs=tuple(txs),
            results=results,
            events=events,
            state_root=state_root,
            certificate=self._get(keys.certificate_key(height), height),
        )

    # --- writing -------------------------------------------------------------------------------

    def next_header(
        self,
        timestamp_ms: int,
        envelopes: Sequence[bytes],
        proposal_ms: int | None = None,
        envelopes_root: bytes | None = None,
    ) -> BlockHeader:
        """The header of the block that would extend the current tip."""
        return make_header(
            height=self.height + 1,
            parent_hash=self.tip_hash,
            timestamp_ms=timestamp_ms,
            envelopes=envelopes,
            hash_fn=self.suite.hash,
            proposal_ms=proposal_ms,
            envelopes_root=envelopes_root,
        )

    def append_block(
        self,
        header: BlockHeader,
        envelopes: Sequence[bytes],
        certificate: bytes | None = None,
        *,
        envelopes_root: bytes | None = None,
    ) -> AppliedBlock:
        """Execute a committed block and write it, with everything it changes, atomically.

        ``envelopes_root`` is the envelopes' Merkle root when the caller computed it from these
        very envelopes (a consensus block does on decoding); otherwise it is computed here."""
        with self._write_lock:
            if header.height != self.height + 1:
                raise LedgerError(f"expected height {self.height + 1}, got {header.height}")
            if header.parent_hash != self.tip_hash:
                raise LedgerError("the block does not extend the current tip")
            if header.timestamp_ms <= self.tip_timestamp_ms:
                raise LedgerError("the block time must be later than the parent's")
            root = (
                txs_root(envelopes, self.suite.hash) if envelopes_root is None else envelopes_root
            )
            if header.tx_count != len(envelopes) or header.txs_root != root:
                raise LedgerError("the transactions do not match the header")
            began = time.perf_counter()
            results, events, writes, indexed, decoded = self._execute(header, envelopes)
            batch = WriteBatch(self._store, sync=self._sync)
            for tx_id, index, code in indexed:
                batch.put(keys.tx_index_key(tx_id), canonical_encode([header.height, index, code]))
            root = self._stage_block(batch, header, envelopes, results, events, writes, certificate)
            staged = time.perf_counter()
            failpoints.hit("ledger.before-block-write")
            batch.write()
            failpoints.hit("ledger.after-block-write")
            self.on_block(staged - began, time.perf_counter() - staged)
            if any(key.startswith(IDENTITY_PREFIX) for key, _ in writes):
                self._signer_cache = {}  # a key or participant changed: resolve afresh
            self._advance_tip(header, root)
            return AppliedBlock(
                header,
                header.hash(self.suite.hash),
                tuple(results),
                root,
                tuple(item.tx_id for item in decoded if isinstance(item, Transaction)),
                tuple(events),
                tuple(item.sender if isinstance(item, Transaction) else "" for item in decoded),
            )

    def _stage_block(
        self,
        batch: WriteBatch,
        header: BlockHeader,
        envelopes: Sequence[bytes],
        results: Sequence[TxResult],
        events: Sequence[Mapping[str, Any]],
        writes: Sequence[tuple[bytes, bytes | None]],
        certificate: bytes | None,
    ) -> bytes:
        block_hash = header.hash(self.suite.hash)
        write_set = canonical_encode([[key, value] for key, value in writes])
        results_list = [[result.code, result.message] for result in results]
        outcomes_root = results_digest(self.suite.hash, tx_outcomes(results_list, events))
        root = chain_state_root(
            self.suite.hash, self.state_root, header.height, block_hash, outcomes_root, write_set
        )
        batch.put(
            keys.state_link_key(header.height),
            canonical_encode([block_hash, outcomes_root, self.suite.hash(write_set)]),
        )
        height_key = keys.encode_height(header.height)
        batch.put(
            keys.block_key(header.height),
            canonical_encode({"header": header.to_dict(), "txs": list(envelopes)}),
        )
        batch.put(keys.block_hash_key(block_hash), height_key)
        if certificate is not None:
            batch.put(keys.certificate_key(header.height), certificate)
        batch.put(
            keys.results_key(header.height),
            canonical_encode(
                {
                    "events": [dict(event) for event in events],
                    "results": results_list,
                    "state_root": root,
                }
            ),
        )
        batch.put(keys.write_set_key(header.height), write_set)
        # Node-side as-of index, outside the state root (archive.py).
        batch.changes.extend(archive.block_changes(self._store, header.height, writes))
        for key, value in writes:
            if value is None:
                batch.delete(keys.state_key(key))
            else:
                batch.put(keys.state_key(key), value)
        batch.put(keys.META_HEIGHT, height_key)
        batch.put(keys.META_TIP_HASH, block_hash)
        batch.put(keys.META_STATE_ROOT, root)
        # Checked before written (see the module notes): verified as of this same batch.
        batch.put(keys.META_VERIFIED, canonical_encode([header.height, block_hash]))
        return root

    def _advance_tip(self, header: BlockHeader, root: bytes) -> None:
        """Move the in-memory tip, only once the block's batch is on disk: readers on other
        threads use ``height`` to decide which blocks exist."""
        self.tip_timestamp_ms = header.timestamp_ms
        self.state_root = root
        self.tip_hash = header.hash(self.suite.hash)
        self.height = header.height

    def _execute(
        self, header: BlockHeader, envelopes: Sequence[bytes]
    ) -> tuple[
        list[TxResult],
        list[Mapping[str, Any]],
        list[tuple[bytes, bytes | None]],
        list[tuple[bytes, int, str]],
        list[Transaction | TxResult],
    ]:
        decoded: list[Transaction | TxResult] = []
        for envelope in envelopes:
            try:
                decoded.append(self.decoder.decode(envelope))
            except TxError as exc:
                decoded.append(TxResult(exc.code, exc.message))
        # Keys are resolved against the state before this block, the same on every replica.
        transactions = [item for item in decoded if isinstance(item, Transaction)]
        verdicts = iter(self.verifier.verify(transactions))
        overlay = BlockOverlay(_StateReader(self._store))
        results: list[TxResult] = []
        events: list[Mapping[str, Any]] = []
        indexed: list[tuple[bytes, int, str]] = []
        seen: set[bytes] = set()
        for index, item in enumerate(decoded):
            if isinstance(item, TxResult):
                results.append(item)
                continue
            verdict: Verdict = next(verdicts)
            result, tx_events = self._execute_one(item, verdict, index, header, overlay, seen)
            results.append(result)
            events.extend(tx_events)
            if verdict.ok and result.code != "DUPLICATE_TX":
                seen.add(item.tx_id)
                indexed.append((item.tx_id, index, result.code))
        return results, events, sorted(overlay.pending.items()), indexed, decoded

    def _execute_one(
        self,
        tx: Transaction,
        verdict: Verdict,
        index: int,
        header: BlockHeader,
        overlay: BlockOverlay,
        seen: set[bytes],
    ) -> tuple[TxResult, list[Mapping[str, Any]]]:
        if not verdict.ok:
            return TxResult(verdict.code, verdict.message), []
        if tx.tx_id in seen or self._get(keys.tx_index_key(tx.tx_id), header.height) is not None:
            return TxResult("DUPLICATE_TX", "this transaction was already committed"), []
        if tx.chain_id != self.chain_id:
            return TxResult("WRONG_CHAIN", f"the transaction is for chain {tx.chain_id!r}"), []
        if tx.expires_at_ms < header.timestamp_ms:
            return TxResult("EXPIRED", "the transaction expired before it could be included"), []
        if tx.expires_at_ms > header.timestamp_ms + self.expiry_horizon_ms:
            # Admission refuses these; a primary that proposes one anyway gets it refused here.
            return TxResult(
                "EXPIRY_TOO_FAR",
                f"the transaction expires more than {self.expiry_horizon_ms} ms after the block",
            ), []
        outcome = contracts.execute(
            overlay,
            contracts.Call(operation=tx.operation, args=tx.args),
            contracts.TxContext(
                chain_id=self.chain_id,
                height=header.height,
                timestamp_ms=header.timestamp_ms,
                tx_index=index,
                tx_id=tx.tx_id,
                sender=tx.sender,
                signer_key_id=tx.key_id,
                nonce=tx.nonce,
                suite=self.suite.name,
            ),
        )
        # A refused transaction still writes one key, its sender's used nonce (see contracts).
        for key, value in outcome.writes:
            overlay.pending[key] = value
        if outcome.code != "OK":
            return TxResult(outcome.code, outcome.message), []
        tx_events: list[Mapping[str, Any]] = [
            {"tx_index": index, "tx_id": tx.tx_id, "kind": event.kind, "attrs": dict(event.attrs)}
            for event in outcome.events
        ]
        return TxResult("OK", outcome.message), tx_events

    # --- consensus integration ---------------------------------------------------------------

    def apply_committed(self, committed: CommittedBlock) -> AppliedBlock:
        """Execute a block the consensus core committed, storing its commit certificate."""
        # The block computed its request root from these envelopes when it was built or
        # decoded (under the chain's hash: the replica shares the ledger's suite); hashing every
        # envelope twice more here cost more than executing them on the national suite.
        root = committed.block.request_root
        header = self.next_header(
            committed.timestamp_ms,
            committed.requests,
            proposal_ms=committed.block.timestamp_ms,
            envelopes_root=root,
        )
        if header.consensus_digest(self.suite.hash) != committed.digest:
            raise LedgerError(f"block {committed.seq}: the header does not match the digest")
        return self.append_block(
            header,
            committed.requests,
            encode_commit_certificate(committed.certificate),
            envelopes_root=root,
        )

    def executed_tip(self, genesis_time_ms: int) -> ExecutedTip:
        """Where a restarting replica resumes: the last block's consensus digest and time."""
        if self.height == 0:
            return ExecutedTip(0, ZERO_DIGEST, genesis_time_ms, b"")
        block = self._read_block(self.height)
        return ExecutedTip(
            self.height,
            block.header.consensus_digest(self.suite.hash),
            block.header.timestamp_ms,
            self.state_root,
        )

    def committed_block(self, height: int) -> CommittedBlock | None:
        """A stored block in the form state transfer hands to the consensus core."""
        if not 1 <= height <= self.height:
            return None
        block = self._read_block(height)
        if block.certificate is None:
            return None
        parent = (
            self._read_block(height - 1).header.consensus_digest(self.suite.hash)
            if height > 1
            else ZERO_DIGEST
        )
        return CommittedBlock(
            block=Block(height, block.header.proposal_ms, block.txs, self.suite.hash),
            certificate=decode_commit_certificate(block.certificate),
            parent_digest=parent,
            timestamp_ms=block.header.timestamp_ms,
        )

    def store_checkpoint(self, seq: int, certificate: bytes) -> None:
        """Keep a stable checkpoint certificate: it anchors result proofs for earlier blocks.
        Not synced: a lost one is simply not offered until the next checkpoint."""
        failpoints.hit("ledger.before-checkpoint-write")
        self._store.write([(keys.checkpoint_key(seq), certificate)], sync=False)
        failpoints.hit("ledger.after-checkpoint-write")

    def result_proof(self, height: int, index: int) -> ResultProof | None:
        """Evidence for the outcome of transaction ``index`` of block ``height``, once a stored
        checkpoint covers the block."""
        if not 1 <= height <= self.height:
            return None
        found = next(
            self._store.iterator(prefix=keys.CHECKPOINT, start=keys.checkpoint_key(height)), None
        )
        if found is None:
            return None
        top = keys.decode_height(found[0][len(keys.CHECKPOINT) :])
        if top > self.height:
            return None
        links = []
        for link_height in range(height, top + 1):
            raw = self._get(keys.state_link_key(link_height), link_height)
            if raw is None:
                return None  # written by a version that kept no links
            block_hash, results_digest, write_set_digest = canonical_decode(raw)
            links.append(StateLink(link_height, block_hash, results_digest, write_set_digest))
        results_record = self._get(keys.results_key(height), height)
        previous = self._get(keys.results_key(height - 1), height - 1)
        if results_record is None or previous is None:
            return None
        record = canonical_decode(results_record)
        outcomes = tx_outcomes(record["results"], record["events"])
        if not 0 <= index < len(outcomes):
            return None
        return ResultProof(
            checkpoint_certificate=found[1],
            previous_state_root=canonical_decode(previous)["state_root"],
            links=tuple(links),
            outcome=outcomes[index],
            outcome_proof=merkle_proof(
                [self.suite.hash(o) for o in outcomes], index, self.suite.hash
            ),
        )

    def load_consensus_records(self) -> dict[bytes, bytes]:
        start = len(keys.CONSENSUS)
        return {key[start:]: value for key, value in self._store.iterator(prefix=keys.CONSENSUS)}

    def persist_consensus(self, updates: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Apply one Persist effect atomically and durably, before anything it backs is sent."""
        batch = WriteBatch(self._store, sync=self._sync)
        for key, value in updates:
            if value is None:
                batch.delete(keys.consensus_key(key))
            else:
                batch.put(keys.consensus_key(key), value)
        batch.write()

    def vote_reservation(self, key_id: bytes) -> int:
        """The vote reservation this ledger recorded for validator key ``key_id`` (0: none, or
        one recorded for another key, as in a copy of another validator's ledger)."""
        raw = self._get(keys.META_VOTE_RESERVED, None)
        if raw is None:
            return 0
        try:
            recorded_key, height = canonical_decode(raw)
        except (CodecError, TypeError, ValueError):
            raise LedgerCorruption(None, "the vote reservation record does not decode") from None
        if not isinstance(height, int) or isinstance(height, bool) or height < 0:
            raise LedgerCorruption(None, "the vote reservation record holds no height")
        return height if recorded_key == key_id else 0

    def record_vote_reservation(self, key_id: bytes, height: int) -> None:
        """Durably record that validator key ``key_id`` may have voted up to ``height``."""
        batch = WriteBatch(self._store, sync=True)
        batch.put(keys.META_VOTE_RESERVED, canonical_encode([key_id, height]))
        batch.write()

    def consensus_epoch(self) -> int:
        """The validator set whose replica wrote the consensus records (``cons/``)."""
        raw = self._get(keys.META_CONSENSUS_EPOCH, None)
        return 0 if raw is None else int.from_bytes(raw, "big")

    def reset_consensus(self, epoch: int) -> None:
        """Drop every consensus record, durably, for a replica of validator set ``epoch``: an
        old set's views, votes and checkpoints mean nothing to the next one."""
        batch = WriteBatch(self._store, sync=True)
        for key, _ in self._store.iterator(prefix=keys.CONSENSUS):
            batch.delete(key)
        batch.put(keys.META_CONSENSUS_EPOCH, epoch.to_bytes(8, "big"))
        batch.write()

    def validator_sets(self, genesis_validators: Sequence[ValidatorInfo]) -> EpochTable:
        """The validator sets by height this chain's state records (``epochs.py``)."""
        try:
            return EpochTable.from_state(self.state(), genesis_validators)
        except EpochError as exc:
            raise LedgerCorruption(None, f"the validator sets do not read: {exc}") from exc

    def base_checkpoint(self, height: int) -> CheckpointCertificate:
        """The stored block at ``height`` as the unsigned checkpoint a validator set starts from
        (``ReplicaConfig.base``): its consensus digest and state root."""
        block = self._read_block(height)
        return CheckpointCertificate(
            height, block.header.consensus_digest(self.suite.hash), block.state_root, ()
        )

    # --- reading -------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """A snapshot of the whole store, for a backup. Each block is one write, so the
        snapshot sits on a block boundary; read its tip from the snapshot itself."""
        return self._store.snapshot()

    def state(self) -> _StateReader:
        """A consistent read-only view of the committed contract state."""
        return _StateReader(self._store.snapshot())

    def resolve_signer(self, key_id: bytes) -> SignerKey | None:
        """The registered key with this id in committed state (cached until keys change)."""
        try:
            return self._signer_cache[key_id]
        except KeyError:
            pass
        record = contracts.resolve_key(_StateReader(self._store), key_id)
        key = (
            None
            if record is None
            else SignerKey(record.participant_id, record.public_key, record.active, record.suite)
        )
        if len(self._signer_cache) >= SIGNER_CACHE_MAX:
            self._signer_cache.clear()
        self._signer_cache[key_id] = key
        return key

    def get_block(self, height: int) -> StoredBlock | None:
        if not 0 <= height <= self.height:
            return None
        return self._read_block(height)

    def height_of(self, block_hash: bytes) -> int | None:
        raw = self._get(keys.block_hash_key(block_hash), None)
        return None if raw is None else keys.decode_height(raw)

    def tx_location(self, tx_id: bytes) -> TxLocation | None:
        raw = self._get(keys.tx_index_key(tx_id), None)
        if raw is None:
            return None
        height, index, code = canonical_decode(raw)
        return TxLocation(height, index, code)

    def get_receipt(self, tx_id: bytes) -> Receipt | None:
        location = self.tx_location(tx_id)
        if location is None:
            return None
        block = self._read_block(location.height)
        return Receipt(
            tx_id=tx_id,
            height=location.height,
            index=location.index,
            result=block.results[location.index],
            header=block.header,
            block_hash=block.block_hash,
            envelope=block.txs[location.index],
            proof=prove_inclusion(block.txs, location.index, self.suite.hash),
            certificate=block.certificate,
            events=tuple(e for e in block.events if e.get("tx_index") == location.index),
            result_proof=self.result_proof(location.height, location.index),
        )


def _stored_results_digest(hash_fn: Callable[[bytes], bytes], results_record: bytes) -> bytes:
    """The results digest of a stored results record, as ``_stage_block`` chained it."""
    record = canonical_decode(results_record)
    return results_digest(hash_fn, tx_outcomes(record["results"], record["events"]))
