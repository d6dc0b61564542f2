"""Ledger backups (node/backup.py) and the operator socket (node/admin.py): the file format, a
snapshot taken while blocks are written, and a restore that refuses a flipped byte, a truncated
file, a forged but well-formed backup, another chain and a directory that holds a ledger."""

from __future__ import annotations

import asyncio
import itertools
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from ibledger.contracts.codec import canonical_decode, canonical_encode
from ibledger.node import admin
from ibledger.node import storage_keys as keys
from ibledger.node.backup import (
    MAGIC,
    RESTORING_DIR,
    BackupError,
    read_header,
    restore_backup,
    write_backup,
)
from ibledger.node.blocks import BlockHeader
from ibledger.node.ledger import Ledger
from ibledger.node.leveldb_store import LevelDBStore

from .backup_files import reencode
from .conftest import Directory, make_genesis, register_tx

Genesis = dict[str, object]


_nonces = itertools.count(1)


def _append(ledger: Ledger, directory: Directory, tag: str, count: int = 3) -> BlockHeader:
    envelopes = [register_tx(directory, f"{tag}-{i}", nonce=next(_nonces)) for i in range(count)]
    header = ledger.next_header(ledger.tip_timestamp_ms + 1000, envelopes)
    ledger.append_block(header, envelopes, certificate=b"cert-%d" % header.height)
    return header


@pytest.fixture
def genesis(directory: Directory) -> Genesis:
    return make_genesis(directory)


@pytest.fixture
def ledger(tmp_path: Path, directory: Directory, genesis: Genesis) -> Ledger:
    opened = Ledger.open(tmp_path / "source" / "ledger", genesis, verifier_workers=1)
    for height in range(1, 7):
        _append(opened, directory, f"R{height}")
    opened.store_checkpoint(4, b"checkpoint-4")
    opened.persist_consensus([(b"vote/1", b"signed-by-me")])
    opened.record_vote_reservation(b"k" * 32, 40)
    yield opened
    opened.close()


def _records(path: Path) -> dict[bytes, bytes]:
    store = LevelDBStore.open(path)
    try:
        return dict(store.iterator())  # without the store's own bookkeeping
    finally:
        store.close()


def _restore(source: Path, data_dir: Path, genesis: Genesis, **checks: object) -> object:
    return restore_backup(
        source,
        data_dir,
        genesis,
        certificate_check=checks.get("certificate_check"),  # type: ignore[arg-type]
        checkpoint_check=checks.get("checkpoint_check"),  # type: ignore[arg-type]
    )


def test_a_backup_restores_the_same_chain_without_consensus_records(
    tmp_path: Path, ledger: Ledger, genesis: Genesis
) -> None:
    out = tmp_path / "node.backup"
    result = write_backup(ledger, out, node_id="node1")
    assert result.header.height == 6 == ledger.height
    assert (result.header.tip_hash, result.header.state_root) == (
        ledger.tip_hash,
        ledger.state_root,
    )
    assert result.header.verified == (6, ledger.tip_hash)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # it holds every bank's transactions
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial file left

    seen: list[tuple[int, bytes, bytes, bytes]] = []

    def checkpoint_check(seq: int, digest: bytes, root: bytes, cert: bytes) -> bool:
        seen.append((seq, digest, root, cert))
        return True

    certified: list[int] = []

    def certificate_check(header: BlockHeader, block_hash: bytes, cert: bytes) -> bool:
        certified.append(header.height)
        return cert == b"cert-%d" % header.height

    restored = restore_backup(
        out,
        tmp_path / "fresh",
        genesis,
        certificate_check=certificate_check,
        checkpoint_check=checkpoint_check,
    )
    assert restored.checkpoint_verified == 4
    assert certified == [1, 2, 3, 4, 5, 6]  # every block's certificate, not only the tail
    block4 = ledger.get_block(4)
    assert block4 is not None
    assert seen == [
        (4, block4.header.consensus_digest(ledger.suite.hash), block4.state_root, b"checkpoint-4")
    ]
    assert not (tmp_path / "fresh" / RESTORING_DIR).exists()

    original = {
        k: v
        for k, v in ledger.snapshot().iterator()
        if not k.startswith(keys.CONSENSUS) and k != keys.META_VOTE_RESERVED
    }
    copy = _records(tmp_path / "fresh" / "ledger")
    assert copy == original
    with Ledger.open(tmp_path / "fresh" / "ledger", genesis) as reopened:
        assert (reopened.height, reopened.tip_hash, reopened.state_root) == (
            ledger.height,
            ledger.tip_hash,
            ledger.state_root,
        )
        assert reopened.load_consensus_records() == {}  # a restored validator remembers no votes
        assert reopened.vote_reservation(b"k" * 32) == 0  # nor vouches for any (vote_record.py)


def test_a_backup_taken_while_blocks_commit_sits_on_a_block_boundary(
    tmp_path: Path, ledger: Ledger, directory: Directory, genesis: Genesis
) -> None:
    for height in range(7, 60):
        _append(ledger, directory, f"pre{height}", count=8)
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set() and ledger.height < 400:
            _append(ledger, directory, f"live{ledger.height}", count=4)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        results = [write_backup(ledger, tmp_path / f"b{i}", node_id="node1") for i in range(3)]
    finally:
        stop.set()
        thread.join()
    heights = [r.header.height for r in results]
    assert heights == sorted(heights) and heights[0] >= 59
    for i, result in enumerate(results):
        restored = _restore(result.path, tmp_path / f"fresh{i}", genesis)
        with Ledger.open(tmp_path / f"fresh{i}" / "ledger", genesis) as copy:
            block = ledger.get_block(result.header.height)
            assert block is not None
            assert copy.height == result.header.height, restored
            assert (copy.tip_hash, copy.state_root) == (block.block_hash, block.state_root)


def test_the_output_is_never_overwritten(tmp_path: Path, ledger: Ledger) -> None:
    out = tmp_path / "exists"
    out.write_bytes(b"keep me")
    with pytest.raises(BackupError) as caught:
        write_backup(ledger, out, node_id="node1")
    assert caught.value.code == "OUTPUT_EXISTS"
    assert out.read_bytes() == b"keep me"


def test_a_cancelled_backup_leaves_no_file(
    tmp_path: Path, ledger: Ledger, directory: Directory
) -> None:
    for height in range(7, 40):
        _append(ledger, directory, f"more{height}", count=40)
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(BackupError) as caught:
        write_backup(ledger, tmp_path / "b", node_id="node1", cancelled=cancelled)
    assert caught.value.code == "CANCELLED"
    assert list(tmp_path.iterdir()) == [tmp_path / "source"]


@pytest.fixture
def backup_file(tmp_path: Path, ledger: Ledger) -> Path:
    return write_backup(ledger, tmp_path / "node.backup", node_id="node1").path


def _assert_refused(source: Path, data_dir: Path, genesis: Genesis, code: str) -> BackupError:
    with pytest.raises(BackupError) as caught:
        _restore(source, data_dir, genesis)
    assert caught.value.code == code, caught.value
    assert not (data_dir / "ledger").exists()
    assert not (data_dir / RESTORING_DIR).exists()
    return caught.value


@pytest.mark.parametrize("where", [0.0, 0.01, 0.3, 0.5, 0.9, 0.999])
def test_a_flipped_byte_anywhere_is_refused(
    tmp_path: Path, backup_file: Path, genesis: Genesis, where: float
) -> None:
    data = bytearray(backup_file.read_bytes())
    position = int(len(data) * where)
    data[position] ^= 0x01
    damaged = tmp_path / "damaged"
    damaged.write_bytes(bytes(data))
    with pytest.raises(BackupError) as caught:
        _restore(damaged, tmp_path / "fresh", genesis)
    # The magic, the header, a length, a record or the digest: each is named, none restores.
    assert caught.value.code in {"NOT_A_BACKUP", "BACKUP_CORRUPT", "BACKUP_TRUNCATED"}, caught.value
    assert not (tmp_path / "fresh" / "ledger").exists()
    assert not (tmp_path / "fresh" / RESTORING_DIR).exists()


@pytest.mark.parametrize("keep", [0, 10, 0.5, -33, -1])
def test_a_truncated_file_is_refused(
    tmp_path: Path, backup_file: Path, genesis: Genesis, keep: float
) -> None:
    data = backup_file.read_bytes()
    size = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    cut = tmp_path / "cut"
    cut.write_bytes(data[:size])
    code = "NOT_A_BACKUP" if size < len(MAGIC) else "BACKUP_TRUNCATED"
    _assert_refused(cut, tmp_path / "fresh", genesis, code)


def test_the_format_is_as_documented(tmp_path: Path, backup_file: Path, genesis: Genesis) -> None:
    same = tmp_path / "same"
    reencode(backup_file, same, lambda records: None)
    assert same.read_bytes() == backup_file.read_bytes()
    with same.open("rb") as handle:
        header, _ = read_header(handle)
    assert header.chain_id == genesis["chain_id"] and header.node_id == "node1"


def _forge_state(records: dict[bytes, bytes]) -> None:
    key = next(k for k in records if k.startswith(keys.STATE + b"id/"))
    records[key] = records[key][:-1] + bytes([records[key][-1] ^ 1])


def _forge_write_set(records: dict[bytes, bytes]) -> None:
    key = keys.write_set_key(3)
    records[key] = canonical_encode(canonical_decode(records[key])[:-1])


def _drop_index_entry(records: dict[bytes, bytes]) -> None:
    del records[next(k for k in records if k.startswith(keys.TX_INDEX))]


def _extra_state(records: dict[bytes, bytes]) -> None:
    records[keys.state_key(b"zz/planted")] = b"money"


def _drop_block(records: dict[bytes, bytes]) -> None:
    del records[keys.block_key(2)]


def _drop_format(records: dict[bytes, bytes]) -> None:
    del records[keys.META_FORMAT]  # would otherwise open as a new chain over the records


def _consensus_record(records: dict[bytes, bytes]) -> None:
    records[keys.consensus_key(b"vote/1")] = b"old vote"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (_forge_state, "BACKUP_DOES_NOT_VERIFY"),
        (_forge_write_set, "BACKUP_DOES_NOT_VERIFY"),
        (_drop_index_entry, "BACKUP_DOES_NOT_VERIFY"),
        (_extra_state, "BACKUP_DOES_NOT_VERIFY"),
        (_drop_block, "BACKUP_DOES_NOT_VERIFY"),
        (_drop_format, "BACKUP_DOES_NOT_VERIFY"),
        (_consensus_record, "BACKUP_CORRUPT"),
    ],
)
def test_a_well_formed_but_wrong_backup_does_not_verify(
    tmp_path: Path,
    backup_file: Path,
    genesis: Genesis,
    change: Callable[[dict[bytes, bytes]], None],
    code: str,
) -> None:
    forged = tmp_path / "forged"
    reencode(backup_file, forged, change)
    _assert_refused(forged, tmp_path / "fresh", genesis, code)


def test_a_certificate_that_does_not_verify_is_refused(
    tmp_path: Path, backup_file: Path, genesis: Genesis
) -> None:
    def certificate_check(header: BlockHeader, block_hash: bytes, cert: bytes) -> bool:
        return header.height != 5

    with pytest.raises(BackupError) as caught:
        _restore(backup_file, tmp_path / "fresh", genesis, certificate_check=certificate_check)
    assert caught.value.code == "BACKUP_DOES_NOT_VERIFY"
    assert "height 5" in caught.value.message and "certificate" in caught.value.message

    with pytest.raises(BackupError) as caught:
        _restore(
            backup_file,
            tmp_path / "fresh",
            genesis,
            checkpoint_check=lambda seq, digest, root, cert: False,
        )
    assert caught.value.code == "BACKUP_DOES_NOT_VERIFY" and "height 4" in caught.value.message


def test_another_chain_or_genesis_is_refused(
    tmp_path: Path, backup_file: Path, genesis: Genesis
) -> None:
    _assert_refused(backup_file, tmp_path / "a", {**genesis, "chain_id": "other"}, "WRONG_CHAIN")
    _assert_refused(
        backup_file, tmp_path / "b", {**genesis, "genesis_time_ms": 1}, "GENESIS_MISMATCH"
    )


def test_a_directory_that_holds_a_ledger_is_refused(
    tmp_path: Path, backup_file: Path, genesis: Genesis
) -> None:
    data_dir = tmp_path / "node"
    Ledger.open(data_dir / "ledger", genesis).close()
    before = _records(data_dir / "ledger")
    with pytest.raises(BackupError) as caught:
        _restore(backup_file, data_dir, genesis)
    assert caught.value.code == "TARGET_NOT_EMPTY"
    assert _records(data_dir / "ledger") == before
    (data_dir / "ledger" / "LOCK").unlink()
    # An empty ledger directory (what `rm -rf ledger/*` leaves) is a fresh node.
    for child in (data_dir / "ledger").iterdir():
        child.unlink()
    _restore(backup_file, data_dir, genesis)


# --- the operator socket --------------------------------------------------------------------------


async def test_the_operator_socket_writes_a_backup(
    tmp_path: Path, ledger: Ledger, genesis: Genesis
) -> None:
    data_dir = tmp_path / ("d" * 120)  # beyond sun_path: reached through /proc/self/fd
    data_dir.mkdir()
    (data_dir / admin.SOCKET_NAME).touch()
    os.unlink(data_dir / admin.SOCKET_NAME)
    server = admin.AdminServer(data_dir, ledger, "node1")
    await server.start()
    try:
        assert stat.S_IMODE((data_dir / admin.SOCKET_NAME).stat().st_mode) == 0o600
        out = tmp_path / "via-socket.backup"
        reply = await asyncio.to_thread(
            admin.call, data_dir, {"command": "backup", "path": str(out)}
        )
        assert reply["ok"] is True and reply["height"] == ledger.height, reply
        assert reply["tip_hash"] == ledger.tip_hash.hex()
        again = await asyncio.to_thread(
            admin.call, data_dir, {"command": "backup", "path": str(out)}
        )
        assert again == {"ok": False, "code": "OUTPUT_EXISTS", "message": f"{out} already exists"}
        relative = await asyncio.to_thread(admin.call, data_dir, {"command": "backup", "path": "x"})
        assert relative["code"] == "MALFORMED_REQUEST"
        unknown = await asyncio.to_thread(admin.call, data_dir, {"command": "shutdown"})
        assert unknown["code"] == "UNKNOWN_COMMAND"
    finally:
        await server.stop()
    assert not (data_dir / admin.SOCKET_NAME).exists()
    with pytest.raises(admin.AdminUnavailable):
        admin.call(data_dir, {"command": "backup", "path": str(tmp_path / "x")})
    _restore(out, tmp_path / "fresh", genesis)


async def test_a_socket_left_by_a_killed_node_is_replaced(tmp_path: Path, ledger: Ledger) -> None:
    import socket

    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / admin.SOCKET_NAME))
    stale.close()  # the file stays, as after kill -9
    server = admin.AdminServer(tmp_path, ledger, "node1")
    await server.start()
    try:
        reply = await asyncio.to_thread(admin.call, tmp_path, {"command": "ping"})
        assert reply == {"ok": True, "node_id": "node1", "height": ledger.height}
    finally:
        await server.stop()


def test_the_as_of_index_is_left_out_of_a_backup_and_rebuilt_on_restore(
    tmp_path: Path, backup_file: Path, ledger: Ledger, genesis: Genesis
) -> None:
    """Index entries (node/archive.py) are outside the state root: nothing in a backup could
    vouch for them, so they are not in it (a planted one is refused), and the restored ledger
    indexes its verified write sets when it is opened."""
    records: dict[bytes, bytes] = {}
    reencode(backup_file, tmp_path / "copy", records.update)
    assert records and not [k for k in records if k.startswith(keys.ARCHIVE)]
    assert keys.META_ARCHIVE_HEIGHT not in records

    def plant(forged: dict[bytes, bytes]) -> None:
        forged[keys.ARCHIVE + b"id/p/X\x00\x01" + bytes(8)] = b"\x01forged"

    reencode(backup_file, tmp_path / "planted", plant)
    _assert_refused(tmp_path / "planted", tmp_path / "refused", genesis, "BACKUP_CORRUPT")
    _restore(backup_file, tmp_path / "fresh", genesis)
    with Ledger.open(tmp_path / "fresh" / "ledger", genesis) as reopened:
        assert reopened.history_range() == (0, 6)
        for height in (0, 2, 6):
            assert list(reopened.as_of(height).scan(b"")) == list(ledger.as_of(height).scan(b""))
