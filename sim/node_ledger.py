"""The node's real ledger and contracts as a simulated replica's executor.

`NodeLedger` is one replica's `node.ledger.Ledger` over its own `MemoryStore`, driven as the
node runtime drives it: committed blocks through `Ledger.apply_committed`, consensus records
through `Ledger.persist_consensus` into the same store, stable checkpoint certificates through
`Ledger.store_checkpoint` (unsynced, as on a node), state transfer served from
`Ledger.committed_block`, and a restart that opens the ledger again over the store and restores
the replica from `Ledger.load_consensus_records`. The store's faults stand for the machine's:
`power_loss` drops the writes since the last synced one (`MemoryStore.crash`), `process_exit`
keeps every write that returned (`MemoryStore.reopen`).

Clients sign real transactions (`client_request`): a genesis (`genesis_document`) registers four
consortium admins with keys derived from fixed seeds, and each request is one of them updating
its own details (every eighth names no detail, so the contract refuses it: a refused
transaction is committed and indexed too). The ledger reads no validator section; the replicas
sign consensus messages with the simulator's own keys.

Determinism: this module is the only one of the simulator that imports `node.ledger` and
`node.tx`. The ledger's lock is never contended (one thread), its clock reads only time the
metrics callbacks, the verifier is opened with one worker (it then verifies inline and starts no
thread), and every transaction is built with an explicit nonce and expiry (`build_transaction`
would otherwise draw them from the OS and the clock). `tests/test_layering.py` checks the last
two.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ibledger.consensus import (
    CheckpointCertificate,
    CommittedBlock,
    ExecutedTip,
    decode_checkpoint_certificate,
    decode_commit_certificate,
    encode_checkpoint_certificate,
    request_id,
)
from ibledger.node.blocks import BlockHeader
from ibledger.node.crypto import KeyPair, get_suite
from ibledger.node.ledger import Ledger, LedgerError
from ibledger.node.memory_store import MemoryStore
from ibledger.node.tx import TxError, build_transaction

__all__ = [
    "CHAIN_ID",
    "LedgerError",  # what a ledger that refuses to open or to apply a block raises
    "NodeLedger",
    "check_ledgers",
    "client_keypair",
    "client_request",
    "genesis_document",
]

CHAIN_ID = "sim-chain"
CLIENTS = 4
GENESIS_BEFORE_EPOCH_MS = 60_000  # genesis time: a minute before the simulated epoch
EXPIRY_AFTER_EPOCH_MS = 3_600_000  # every request expires an hour after the epoch
REFUSED_EVERY = 8  # every eighth request is one the contract refuses


def client_id(client: int) -> str:
    return f"SIM_CLIENT_{client}"


def client_keypair(suite_name: str, client: int) -> KeyPair:
    """A client's key from a fixed seed, so that a run signs the same envelopes every time."""
    suite = get_suite(suite_name)
    seed = hashlib.sha256(b"ibledger-sim-client-key:%d" % client).digest()
    return KeyPair(suite_name, seed, suite.public_key_from_seed(seed))


def genesis_document(suite_name: str, epoch_ms: int) -> dict[str, Any]:
    participants = [
        {
            "id": client_id(c),
            "name": f"Simulated client {c}",
            "roles": ["consortium_admin"],
            "keys": [
                {"suite": suite_name, "public_key": client_keypair(suite_name, c).public_key.hex()}
            ],
        }
        for c in range(CLIENTS)
    ]
    return {
        "chain_id": CHAIN_ID,
        "crypto_suite": suite_name,
        "genesis_time_ms": epoch_ms - GENESIS_BEFORE_EPOCH_MS,
        "participants": participants,
        "governance": {"admin_quorum": 1},
    }


def client_request(suite_name: str, client: int, index: int, epoch_ms: int) -> bytes:
    """Request ``index`` (unique in the run, so a nonce of its client) of ``client``."""
    args: dict[str, Any] = {"participant": client_id(client)}
    if index % REFUSED_EVERY != REFUSED_EVERY - 1:
        args["name"] = f"Simulated client {client} revision {index}"
    return build_transaction(
        client_keypair(suite_name, client),
        chain_id=CHAIN_ID,
        sender=client_id(client),
        operation="identity.update_details",
        args=args,
        nonce=index + 1,
        expires_at_ms=epoch_ms + EXPIRY_AFTER_EPOCH_MS,
    )


class NodeLedger:
    """One replica's real ledger over its own in-memory store (an `Executor`)."""

    def __init__(self, genesis: Mapping[str, Any]) -> None:
        self.genesis = genesis
        self.genesis_time_ms = int(genesis["genesis_time_ms"])
        self.hash_fn = get_suite(str(genesis["crypto_suite"])).hash
        self.store = MemoryStore()
        self._ledger: Ledger | None = None
        self._height = 0
        self._tip: ExecutedTip | None = None
        self.applied: list[bytes] = []
        self.applied_set: set[bytes] = set()
        self.open()

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._ledger is not None

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            raise LedgerError("the replica is down: its ledger is not open")
        return self._ledger

    def open(self) -> None:
        """Open the ledger over the store as a starting node does (verifying the blocks above
        the verified-height record); rebuild what the cluster reads from the ledger alone.
        Raises `LedgerError` (`LedgerCorruption` included) when it does not open."""
        ledger = Ledger.open_store(self.store, self.genesis, verify="recorded", verifier_workers=1)
        self._ledger = ledger
        self._height = ledger.height
        self._tip = ledger.executed_tip(self.genesis_time_ms)
        self.applied = [rid for h in range(1, ledger.height + 1) for rid in self._indexed(h)]
        self.applied_set = set(self.applied)

    def power_loss(self, keep_unsynced: int) -> None:
        """The machine lost power: the writes since the last synced one are lost, but for the
        first ``keep_unsynced`` of them."""
        self.store = self.store.crash(keep_unsynced)
        self._ledger = None

    def process_exit(self) -> None:
        """The node process stopped (a write error stops it): the store keeps every write
        that returned."""
        self.store = self.store.reopen()
        self._ledger = None

    # --- the Executor protocol ------------------------------------------------------------

    @property
    def height(self) -> int:
        return self._height

    def tip(self) -> ExecutedTip:
        if self._tip is None:
            raise LedgerError("the ledger was never opened")
        return self._tip

    def valid_request(self, request: bytes) -> bool:
        """What the node accepts inside a PRE-PREPARE: a well-formed, signed transaction."""
        ledger = self.ledger
        try:
            tx = ledger.decoder.decode(request)
        except TxError:
            return False
        if ledger.verifier.is_cached(tx):
            return True
        return ledger.verifier.verify([tx])[0].ok

    def apply(self, block: CommittedBlock) -> bytes:
        applied = self.ledger.apply_committed(block)
        self._height = block.seq
        self._tip = ExecutedTip(block.seq, block.digest, block.timestamp_ms, applied.state_root)
        for rid in self._indexed(block.seq):
            self.applied.append(rid)
            self.applied_set.add(rid)
        return applied.state_root

    def committed_blocks(self, first: int, last: int) -> list[CommittedBlock]:
        ledger = self.ledger
        out = []
        for height in range(first, last + 1):
            block = ledger.committed_block(height)
            if block is None:
                break
            out.append(block)
        return out

    # --- the node's other writes ----------------------------------------------------------

    def persist(self, updates: Sequence[tuple[bytes, bytes | None]]) -> None:
        self.ledger.persist_consensus(updates)

    def consensus_records(self) -> dict[bytes, bytes]:
        return self.ledger.load_consensus_records()

    def store_checkpoint(self, cert: CheckpointCertificate) -> None:
        """Store a stable checkpoint certificate beside its block, unsynced, as the node does."""
        self.ledger.store_checkpoint(cert.seq, encode_checkpoint_certificate(cert))

    # --- what the tx index says -----------------------------------------------------------

    def _indexed(self, height: int) -> list[bytes]:
        """Request ids of the transactions of block ``height`` that the tx index places there:
        the ones this block executed, as opposed to duplicates and undecodable envelopes."""
        ledger = self.ledger
        block = ledger.get_block(height)
        if block is None:
            return []
        out = []
        for index, envelope in enumerate(block.txs):
            try:
                tx_id = ledger.decoder.decode(envelope).tx_id
            except TxError:
                continue
            location = ledger.tx_location(tx_id)
            if location is not None and (location.height, location.index) == (height, index):
                out.append(request_id(envelope, self.hash_fn))
        return out


CommitCheck = Callable[[bytes, Any], bool]  # block digest, decoded commit certificate
CheckpointCheck = Callable[[Any], bool]  # decoded checkpoint certificate


def check_ledgers(
    ledgers: Mapping[str, NodeLedger],
    honest: Sequence[str],
    submitted: Mapping[bytes, bytes],
    commit_check: CommitCheck,
    checkpoint_check: CheckpointCheck,
) -> list[str]:
    """The end-of-run checks of a real-ledger run; one line per violation.

    - every honest replica stores the same block hash and state root at each common height;
    - every submitted transaction is in each honest ledger's tx index, at the one position of
      the chain where it executed (its other copies are refused as DUPLICATE_TX), and the index
      holds no transaction that no client submitted;
    - each store, after the machine loses power once more, opens as a node opens it with every
      block verified (`verify="full"`, commit certificates included) and its derived records
      verified too (`Ledger.verify_derived`: state replayed from the write sets, the tx index,
      the stored checkpoint certificates, each checked against the validators)."""
    problems: list[str] = []
    reference = honest[0]
    chains: dict[str, list[tuple[bytes, bytes]]] = {}
    for m in honest:
        ledger = ledgers[m].ledger
        chain = []
        for height in range(ledger.height + 1):
            block = ledger.get_block(height)
            assert block is not None
            chain.append((block.block_hash, block.state_root))
        chains[m] = chain
    for m in honest[1:]:
        for height, (mine, theirs) in enumerate(zip(chains[m], chains[reference], strict=False)):
            if mine[0] != theirs[0]:
                problems.append(f"{m} and {reference} store different blocks at height {height}")
                break
            if mine[1] != theirs[1]:
                problems.append(f"{m} and {reference} differ in state root at height {height}")
                break
    for m in honest:
        problems.extend(_check_tx_index(m, ledgers[m].ledger, submitted))
    for m in honest:
        problems.extend(_check_reopened(m, ledgers[m], commit_check, checkpoint_check))
    return problems


def _check_tx_index(m: str, ledger: Ledger, submitted: Mapping[bytes, bytes]) -> list[str]:
    problems = []
    executed: dict[bytes, list[tuple[int, int]]] = {}
    for height in range(1, ledger.height + 1):
        block = ledger.get_block(height)
        assert block is not None
        for index, (envelope, result) in enumerate(zip(block.txs, block.results, strict=True)):
            try:
                tx_id = ledger.decoder.decode(envelope).tx_id
            except TxError:
                problems.append(f"{m} height {height}: an envelope that does not decode")
                continue
            if result.code != "DUPLICATE_TX":
                executed.setdefault(tx_id, []).append((height, index))
    wanted = set()
    for request in submitted.values():
        tx_id = ledger.decoder.decode(request).tx_id
        wanted.add(tx_id)
        places = executed.get(tx_id, [])
        location = ledger.tx_location(tx_id)
        if len(places) != 1:
            problems.append(f"{m}: transaction {tx_id.hex()[:12]} executed {len(places)} times")
        elif location is None or (location.height, location.index) != places[0]:
            problems.append(f"{m}: the tx index misplaces transaction {tx_id.hex()[:12]}")
    for tx_id in sorted(set(executed) - wanted):
        problems.append(f"{m}: transaction {tx_id.hex()[:12]} executed but never submitted")
    return problems


def _check_reopened(
    m: str, node: NodeLedger, commit_check: CommitCheck, checkpoint_check: CheckpointCheck
) -> list[str]:
    height, root = node.height, node.ledger.state_root
    node.power_loss(0)

    def certificate_ok(header: BlockHeader, _block_hash: bytes, certificate: bytes) -> bool:
        digest = header.consensus_digest(node.hash_fn)
        return commit_check(digest, decode_commit_certificate(certificate))

    def checkpoint_ok(seq: int, digest: bytes, state_root: bytes, certificate: bytes) -> bool:
        cert = decode_checkpoint_certificate(certificate)
        return (cert.seq, cert.block_digest, cert.state_root) == (
            seq,
            digest,
            state_root,
        ) and checkpoint_check(cert)

    try:
        ledger = Ledger.open_store(
            node.store,
            node.genesis,
            verify="full",
            certificate_check=certificate_ok,
            verifier_workers=1,
        )
    except LedgerError as exc:
        return [f"{m}: the ledger does not open from its store: {exc}"]
    try:
        ledger.verify_derived(checkpoint_ok)
    except LedgerError as exc:
        return [f"{m}: the reopened ledger's records do not verify: {exc}"]
    finally:
        ledger.close()
    if (ledger.height, ledger.state_root) != (height, root):
        return [f"{m}: the reopened ledger is at another tip"]
    return []
