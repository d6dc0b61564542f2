"""The ledger over either store (node/store.py): the same blocks give the same hashes, state
roots and stored bytes on LevelDB and in memory; a crash or a failing write leaves a ledger that
reopens on a block boundary and verifies."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ibledger.node import storage_keys as keys
from ibledger.node.crypto import generate_keypair
from ibledger.node.ledger import Ledger
from ibledger.node.leveldb_store import LevelDBStore
from ibledger.node.memory_store import MemoryStore
from ibledger.node.store import Store, StoreIOError

from .conftest import GENESIS_TIME_MS, Directory, make_genesis, register_tx

Genesis = dict[str, object]
PER_HEIGHT = (keys.BLOCK, keys.CERTIFICATE, keys.RESULTS, keys.WRITE_SET, keys.STATE_LINK)


@pytest.fixture
def genesis(directory: Directory) -> Genesis:
    return make_genesis(directory)


@dataclass(frozen=True)
class Scenario:
    """Blocks of real transactions, and what to store beside them after given heights."""

    blocks: list[list[bytes]]
    checkpoints: dict[int, bytes]  # after block h: store_checkpoint(h, ...)
    consensus: dict[int, list[tuple[bytes, bytes | None]]]  # after block h: persist_consensus


def _scenario(directory: Directory) -> Scenario:
    registers = [register_tx(directory, f"REG{i}", nonce=i) for i in range(1, 4)]
    spare = generate_keypair(directory.suite).public_key.hex()
    key_id = directory.keys["REG1"].key_id.hex()
    blocks = [
        [*registers, directory.tx("ADMIN", "no.such.operation", nonce=9), b"\x93garbage"],
        [
            directory.tx(
                "ADMIN", "identity.update_details", nonce=10, participant="REG1", name="1"
            ),
            registers[0],  # already committed
            directory.tx(
                "ADMIN", "identity.update_details", nonce=11, participant="REG2", name="2"
            ),
        ],
        [
            directory.tx(
                "REG1", "identity.add_key", nonce=2, suite=directory.suite, public_key=spare
            ),
            directory.tx("REG1", "identity.revoke_key", nonce=3, key_id=key_id),
        ],
        [directory.tx("REG1", "identity.update_details", nonce=4, participant="REG1")],
        [register_tx(directory, f"LATE{i}", nonce=20 + i) for i in range(3)],
        [],
    ]
    return Scenario(
        blocks=blocks,
        checkpoints={2: b"checkpoint-2", 4: b"checkpoint-4", 6: b"checkpoint-6"},
        consensus={1: [(b"view", b"\x01"), (b"log/1", b"p")], 3: [(b"log/1", None)]},
    )


def _play(ledger: Ledger, scenario: Scenario, upto: int | None = None) -> list[tuple[bytes, bytes]]:
    """Append the scenario's blocks (to ``upto``); (block hash, state root) per height."""
    out = []
    for height, envelopes in enumerate(scenario.blocks[:upto], start=1):
        header = ledger.next_header(GENESIS_TIME_MS + height * 1000, envelopes)
        applied = ledger.append_block(header, envelopes, certificate=b"cert-%d" % height)
        out.append((applied.block_hash, applied.state_root))
        if height in scenario.consensus:
            ledger.persist_consensus(scenario.consensus[height])
        if height in scenario.checkpoints:
            ledger.store_checkpoint(height, scenario.checkpoints[height])
    return out


def _dump(store: Store) -> dict[bytes, bytes]:
    return dict(store.iterator())


def _leveldb_reference(path: Path, genesis: Genesis, scenario: Scenario) -> dict[bytes, bytes]:
    with Ledger.open(path, genesis) as ledger:
        _play(ledger, scenario)
    store = LevelDBStore.open(path)
    try:
        return _dump(store)
    finally:
        store.close()


def _assert_whole_blocks_up_to(store: Store, height: int) -> None:
    """Every per-height record of every block to ``height``, none above (as after kill -9)."""
    for prefix in PER_HEIGHT:
        heights = [keys.decode_height(k[len(prefix) :]) for k, _ in store.iterator(prefix=prefix)]
        first = 1 if prefix == keys.CERTIFICATE else 0
        assert heights == list(range(first, height + 1)), prefix


def test_the_same_blocks_give_the_same_chain_and_bytes_on_leveldb_and_in_memory(
    tmp_path: Path, directory: Directory, genesis: Genesis
) -> None:
    scenario = _scenario(directory)
    with Ledger.open(tmp_path / "db", genesis) as on_disk:
        disk_chain = _play(on_disk, scenario)
        disk_receipt = on_disk.get_receipt(directory.decode(scenario.blocks[0][1]).tx_id)
        disk_consensus = on_disk.load_consensus_records()
        disk_state = dict(on_disk.state().scan(b""))
    memory = MemoryStore()
    with Ledger.open_store(memory, genesis) as in_memory:
        assert _play(in_memory, scenario) == disk_chain
        assert in_memory.get_receipt(directory.decode(scenario.blocks[0][1]).tx_id) == (
            disk_receipt
        )
        assert in_memory.load_consensus_records() == disk_consensus == {b"view": b"\x01"}
        assert dict(in_memory.state().scan(b"")) == disk_state
        codes = [[r.code for r in in_memory.get_block(h).results] for h in (1, 2, 4)]  # type: ignore[union-attr]
    assert codes == [
        ["OK", "OK", "OK", "UNKNOWN_OPERATION", "MALFORMED_ENVELOPE"],
        ["OK", "DUPLICATE_TX", "OK"],
        ["KEY_REVOKED"],
    ]
    assert disk_receipt is not None and disk_receipt.result_proof is not None
    leveldb = LevelDBStore.open(tmp_path / "db")
    try:
        assert _dump(memory.reopen()) == _dump(leveldb)
    finally:
        leveldb.close()


def test_a_ledger_reopens_over_a_memory_store_and_verifies(
    directory: Directory, genesis: Genesis
) -> None:
    scenario = _scenario(directory)
    store = MemoryStore()
    with Ledger.open_store(store, genesis) as ledger:
        chain = _play(ledger, scenario)
    with Ledger.open_store(store.reopen(), genesis, verify="full") as reopened:
        assert (reopened.height, reopened.tip_hash, reopened.state_root) == (
            len(chain),
            *chain[-1],
        )
        assert reopened.verified_record() == (len(chain), chain[-1][0])


def test_killed_mid_run_a_memory_store_reopens_as_leveldb_does(
    tmp_path: Path, directory: Directory, genesis: Genesis
) -> None:
    """A killed process loses nothing its writes returned for, synced or not: the reopened
    memory store holds exactly what the LevelDB database of the same run holds."""
    scenario = _scenario(directory)
    reference = _leveldb_reference(tmp_path / "db", genesis, scenario)
    store = MemoryStore()
    ledger = Ledger.open_store(store, genesis)
    chain = _play(ledger, scenario)
    ledger.verifier.close()  # the process dies: the ledger is never closed
    after = store.reopen()
    assert _dump(after) == reference
    with Ledger.open_store(after, genesis, verify="full") as reopened:
        assert (reopened.height, reopened.tip_hash) == (len(chain), chain[-1][0])


def test_a_power_loss_keeps_every_synced_block_and_loses_only_unsynced_checkpoints(
    tmp_path: Path, directory: Directory, genesis: Genesis
) -> None:
    """Blocks and consensus records are written with sync; a checkpoint certificate is not, so
    only the one after the last block is lost (each block's synced write saved the earlier)."""
    scenario = _scenario(directory)
    reference = _leveldb_reference(tmp_path / "db", genesis, scenario)
    store = MemoryStore()
    ledger = Ledger.open_store(store, genesis)
    chain = _play(ledger, scenario)
    ledger.verifier.close()
    assert store.unsynced_writes == 1
    after = store.crash()
    lost = keys.checkpoint_key(len(chain))
    assert _dump(after) == {k: v for k, v in reference.items() if k != lost}
    _assert_whole_blocks_up_to(after, len(chain))
    with Ledger.open_store(after, genesis, verify="full") as reopened:
        assert (reopened.height, reopened.tip_hash, reopened.state_root) == (
            len(chain),
            *chain[-1],
        )
        assert reopened.load_consensus_records() == {b"view": b"\x01"}
        assert reopened.result_proof(4, 0) is not None  # checkpoint 4 survived
        assert reopened.result_proof(5, 0) is None  # checkpoint 6 did not


def test_a_power_loss_under_unsynced_writes_reopens_on_a_block_boundary(
    directory: Directory, genesis: Genesis
) -> None:
    """With ``sync=False`` every write may be lost: whatever prefix of them survives, the ledger
    reopens on a whole block whose hash and state root are the synced run's."""
    scenario = _scenario(directory)
    with Ledger.open_store(MemoryStore(), genesis) as ledger:
        genesis_tip = (ledger.tip_hash, ledger.state_root)
        chain = [genesis_tip, *_play(ledger, scenario)]

    def run() -> MemoryStore:
        store = MemoryStore()
        ledger = Ledger.open_store(store, genesis, sync=False)
        _play(ledger, scenario)
        ledger.verifier.close()
        return store

    # The writes in order: genesis, then per block the block and what follows it.
    heights = [0]
    for height in range(1, len(scenario.blocks) + 1):
        heights.append(height)
        heights.extend(
            [height] * ((height in scenario.consensus) + (height in scenario.checkpoints))
        )
    assert run().unsynced_writes == len(heights)
    for keep in range(len(heights) + 1):
        after = run().crash(keep_unsynced=keep)
        expected = heights[keep - 1] if keep else 0  # nothing kept: an empty store, a new chain
        with Ledger.open_store(after, genesis, verify="full") as reopened:
            assert reopened.height == expected, keep
            assert (reopened.tip_hash, reopened.state_root) == chain[expected]
            _assert_whole_blocks_up_to(after, expected)


def test_a_failed_block_write_leaves_the_ledger_on_the_previous_block(
    tmp_path: Path, directory: Directory, genesis: Genesis
) -> None:
    scenario = _scenario(directory)
    with Ledger.open(tmp_path / "db", genesis) as on_disk:
        disk_chain = _play(on_disk, scenario)
    store = MemoryStore()
    ledger = Ledger.open_store(store, genesis)
    chain = _play(ledger, scenario, upto=2)
    before = _dump(store)
    store.fail_next_write("no space left on device")
    envelopes = scenario.blocks[2]  # changes a key: the signer cache must stay as it was
    header = ledger.next_header(GENESIS_TIME_MS + 3 * 1000, envelopes)
    with pytest.raises(StoreIOError, match="no space left"):
        ledger.append_block(header, envelopes, certificate=b"cert-3")
    assert (ledger.height, ledger.tip_hash, ledger.state_root) == (2, *chain[-1])
    assert ledger.get_block(3) is None
    assert _dump(store) == before  # no part of block 3
    signer = ledger.resolve_signer(directory.keys["REG1"].key_id)  # reads still work
    assert signer is not None and signer.active  # not revoked: block 3 is not there
    with pytest.raises(OSError):  # the store stays failed, as LevelDB does
        ledger.persist_consensus([(b"view", b"\x02")])
    ledger.close()
    with Ledger.open_store(store.reopen(), genesis, verify="full") as reopened:
        assert reopened.height == 2
        assert reopened.load_consensus_records() == {b"view": b"\x01", b"log/1": b"p"}
        # Retried after the restart, the block and the rest give the chain of the LevelDB run.
        applied = reopened.append_block(header, envelopes, certificate=b"cert-3")
        assert (applied.block_hash, applied.state_root) == disk_chain[2]
        for height, envelopes in enumerate(scenario.blocks[3:], start=4):
            applied = reopened.append_block(
                reopened.next_header(GENESIS_TIME_MS + height * 1000, envelopes),
                envelopes,
                certificate=b"cert-%d" % height,
            )
            assert (applied.block_hash, applied.state_root) == disk_chain[height - 1]


def test_a_failed_genesis_write_leaves_an_empty_store(genesis: Genesis) -> None:
    store = MemoryStore()
    store.fail_next_write()
    with pytest.raises(StoreIOError):
        Ledger.open_store(store, genesis)
    after = store.reopen()  # the failed open closed the store it was given
    assert _dump(after) == {}
    with Ledger.open_store(after, genesis) as ledger:
        assert ledger.height == 0
