"""LevelDB ledger: atomic blocks, deterministic execution, receipts with Merkle proofs, and the
start-up verification of the hash chain."""

from __future__ import annotations

import shutil
from pathlib import Path

import plyvel
import pytest

from ibledger.node import storage_keys as keys
from ibledger.node.blocks import BlockHeader
from ibledger.node.crypto import generate_keypair
from ibledger.node.ledger import Ledger, LedgerCorruption, LedgerError

from .conftest import GENESIS_TIME_MS, Directory, make_genesis, register_tx


def _append(ledger: Ledger, envelopes: list[bytes], step_ms: int = 1000) -> BlockHeader:
    header = ledger.next_header(ledger.tip_timestamp_ms + step_ms, envelopes)
    ledger.append_block(header, envelopes, certificate=b"cert-%d" % header.height)
    return header


@pytest.fixture
def genesis(directory: Directory) -> dict[str, object]:
    return make_genesis(directory)


def test_genesis_creates_block_zero_and_reopens(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    with Ledger.open(tmp_path / "db", genesis) as ledger:
        assert ledger.height == 0
        root = ledger.state_root
        block = ledger.get_block(0)
        assert block is not None and block.header.tx_count == 0
        assert ledger.resolve_signer(directory.keys["ADMIN"].key_id) is not None
    with Ledger.open(tmp_path / "db", genesis) as ledger:
        assert (ledger.height, ledger.state_root) == (0, root)


def test_the_vote_reservation_is_kept_per_key_across_reopens(
    tmp_path: Path, genesis: dict[str, object]
) -> None:
    with Ledger.open(tmp_path / "db", genesis) as ledger:
        assert ledger.vote_reservation(b"k" * 32) == 0
        ledger.record_vote_reservation(b"k" * 32, 57)
    with Ledger.open(tmp_path / "db", genesis) as ledger:
        assert ledger.vote_reservation(b"k" * 32) == 57
        # A copy of another validator's ledger vouches for none of this key's votes.
        assert ledger.vote_reservation(b"o" * 32) == 0


def test_executes_blocks_and_serves_receipts_with_proofs(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    with Ledger.open(tmp_path / "db", genesis) as ledger:
        envelopes = [register_tx(directory, f"REG{i}", nonce=i) for i in range(7)]
        envelopes.append(directory.tx("ADMIN", "no.such.operation", nonce=99))
        header = _append(ledger, envelopes)
        block = ledger.get_block(1)
        assert block is not None
        assert [r.code for r in block.results] == ["OK"] * 7 + ["UNKNOWN_OPERATION"]
        assert block.certificate == b"cert-1"
        for index, envelope in enumerate(envelopes):
            from ibledger.node.tx import decode_envelope

            tx = decode_envelope(envelope, hash_fn=directory.crypto.hash)
            receipt = ledger.get_receipt(tx.tx_id)
            assert receipt is not None
            assert (receipt.height, receipt.index, receipt.envelope) == (1, index, envelope)
            # The proof checks against the header alone: no database needed.
            assert receipt.proof.verify(envelope, header, directory.crypto.hash)
            assert not receipt.proof.verify(envelope + b"x", header, directory.crypto.hash)
        # A registered participant's key resolves for admission from the next block on.
        assert ledger.resolve_signer(directory.keys["REG3"].key_id) is not None
        assert ledger.get_block(2) is None


def test_failed_transactions_write_nothing_but_are_recorded(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    with Ledger.open(tmp_path / "db", genesis) as ledger:
        first = register_tx(directory, "REG1", nonce=1)
        _append(ledger, [first])
        root_before = ledger.state_root
        # The same participant id again: rejected by the contract, recorded, no state change.
        again = directory.tx(
            "ADMIN",
            "identity.register",
            nonce=2,
            id="REG1",
            name="dup",
            roles=["registrar"],
            keys=[],
        )
        _append(ledger, [again])
        block = ledger.get_block(2)
        assert block is not None and block.results[0].code != "OK"
        state = dict(ledger.state().scan(b""))
        assert state == dict(ledger.state().scan(b""))
        assert ledger.state_root != root_before  # the chain still advances


def test_duplicate_transaction_is_detected_in_block_and_across_blocks(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    with Ledger.open(tmp_path / "db", genesis) as ledger:
        envelope = register_tx(directory, "REG1", nonce=1)
        _append(ledger, [envelope, envelope])
        _append(ledger, [envelope])
        codes = [ledger.get_block(h).results[0].code for h in (1, 2)]  # type: ignore[union-attr]
        assert codes == ["OK", "DUPLICATE_TX"]
        assert ledger.get_block(1).results[1].code == "DUPLICATE_TX"  # type: ignore[union-attr]
        from ibledger.node.tx import decode_envelope

        location = ledger.tx_location(decode_envelope(envelope, hash_fn=ledger.suite.hash).tx_id)
        assert location is not None and (location.height, location.index) == (1, 0)


def test_expired_foreign_and_forged_transactions_fail_deterministically(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    from ibledger.node.tx import build_transaction

    admin = directory.keys["ADMIN"]
    expired = build_transaction(
        admin,
        chain_id="ibledger-test",
        sender="ADMIN",
        operation="identity.register",
        args={},
        nonce=1,
        expires_at_ms=GENESIS_TIME_MS,
    )
    foreign = build_transaction(
        admin,
        chain_id="another-chain",
        sender="ADMIN",
        operation="identity.register",
        args={},
        nonce=2,
        expires_at_ms=GENESIS_TIME_MS + 12 * 3600 * 1000,
    )
    stranger = directory.add("STRANGER")
    unknown = directory.tx("STRANGER", nonce=3)
    with Ledger.open(tmp_path / "db", genesis) as ledger:
        _append(ledger, [expired, foreign, unknown, b"\x93garbage"])
        block = ledger.get_block(1)
        assert block is not None
        assert [r.code for r in block.results] == [
            "EXPIRED",
            "WRONG_CHAIN",
            "UNKNOWN_SIGNER",
            "MALFORMED_ENVELOPE",
        ]
        assert stranger.key_id  # never registered


def test_two_ledgers_agree_on_state_roots(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    blocks = [
        [register_tx(directory, f"R{h}-{i}", nonce=h * 10 + i) for i in range(3)] for h in range(5)
    ]
    roots = []
    for name in ("a", "b"):
        with Ledger.open(tmp_path / name, genesis) as ledger:
            for height, envelopes in enumerate(blocks, start=1):
                header = ledger.next_header(GENESIS_TIME_MS + height * 1000, envelopes)
                ledger.append_block(header, envelopes)
            roots.append((ledger.tip_hash, ledger.state_root))
    assert roots[0] == roots[1]


def test_append_refuses_blocks_that_do_not_extend_the_tip(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    with Ledger.open(tmp_path / "db", genesis) as ledger:
        envelopes = [register_tx(directory, "R1", nonce=1)]
        good = ledger.next_header(GENESIS_TIME_MS + 1000, envelopes)
        with pytest.raises(LedgerError, match="height"):
            ledger.append_block(
                BlockHeader(5, good.parent_hash, good.timestamp_ms, 1, good.txs_root), envelopes
            )
        with pytest.raises(LedgerError, match="tip"):
            ledger.append_block(
                BlockHeader(1, bytes(32), good.timestamp_ms, 1, good.txs_root), envelopes
            )
        with pytest.raises(LedgerError, match="time"):
            ledger.append_block(ledger.next_header(GENESIS_TIME_MS, envelopes), envelopes)
        with pytest.raises(LedgerError, match="transactions"):
            ledger.append_block(good, envelopes + envelopes)
        assert ledger.height == 0


def test_refuses_another_chains_data_directory(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    Ledger.open(tmp_path / "db", genesis).close()
    with pytest.raises(LedgerError, match="chain"):
        Ledger.open(tmp_path / "db", {**genesis, "chain_id": "other"})
    with pytest.raises(LedgerError, match="different genesis"):
        Ledger.open(tmp_path / "db", {**genesis, "genesis_time_ms": 5})
    with pytest.raises(LedgerError, match="no genesis"):
        Ledger.open(tmp_path / "empty")


def _build_chain(path: Path, directory: Directory, genesis: dict[str, object], blocks: int) -> None:
    with Ledger.open(path, genesis) as ledger:
        for height in range(1, blocks + 1):
            _append(ledger, [register_tx(directory, f"R{height}-{i}", nonce=i) for i in range(3)])


def _rewrite(path: Path, key: bytes, mutate: object) -> None:
    db = plyvel.DB(str(path))
    value = db.get(key)
    assert value is not None
    db.put(key, mutate(value))  # type: ignore[operator]
    db.close()


def _flip_middle_byte(value: bytes) -> bytes:
    middle = len(value) // 2
    return value[:middle] + bytes([value[middle] ^ 0x40]) + value[middle + 1 :]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (keys.block_key(4), "4"),
        (keys.results_key(4), "4"),
        (keys.write_set_key(4), "4"),
    ],
)
def test_corrupted_stored_value_names_the_broken_height(
    tmp_path: Path, directory: Directory, genesis: dict[str, object], key: bytes, reason: str
) -> None:
    path = tmp_path / "db"
    _build_chain(path, directory, genesis, blocks=6)
    _rewrite(path, key, _flip_middle_byte)
    with pytest.raises(LedgerCorruption) as caught:
        Ledger.open(path, genesis)
    assert caught.value.height == 4, caught.value
    assert "height 4" in str(caught.value)


def test_missing_block_is_noticed(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    path = tmp_path / "db"
    _build_chain(path, directory, genesis, blocks=5)
    db = plyvel.DB(str(path))
    db.delete(keys.block_key(3))
    db.close()
    with pytest.raises(LedgerCorruption) as caught:
        Ledger.open(path, genesis)
    assert caught.value.height == 3 and "missing" in caught.value.reason


def test_corrupted_table_file_is_detected_by_leveldb_checksums(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    path = tmp_path / "db"
    _build_chain(path, directory, genesis, blocks=30)
    db = plyvel.DB(str(path))
    db.compact_range()  # move everything from the log into .ldb table files
    db.close()
    tables = sorted(path.glob("*.ldb"), key=lambda p: p.stat().st_size)
    assert tables
    target = tables[-1]
    data = bytearray(target.read_bytes())
    data[len(data) // 3] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(LedgerCorruption) as caught:
        Ledger.open(path, genesis)
    # LevelDB's own block checksums catch it (not a decoding accident further up).
    assert "LevelDB reports corruption" in str(caught.value), caught.value


def test_invalid_genesis_is_a_clear_error(tmp_path: Path, directory: Directory) -> None:
    genesis = make_genesis(directory)
    genesis["participants"] = [{"id": "X", "roles": ["pirate"]}]
    with pytest.raises(LedgerError, match="invalid genesis"):
        Ledger.open(tmp_path / "db", genesis)
    with pytest.raises(LedgerError, match="genesis_time_ms"):
        Ledger.open(tmp_path / "db2", {**make_genesis(directory), "genesis_time_ms": -1})


def test_a_revoked_key_stops_signing_from_the_next_block(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    """The ledger caches resolved signer keys; an identity change must invalidate the cache."""
    with Ledger.open(tmp_path / "db", genesis) as ledger:
        _append(ledger, [register_tx(directory, "REG1", nonce=1)])
        key_id = directory.keys["REG1"].key_id
        first = directory.tx("REG1", "identity.update_details", nonce=2, participant="REG1")
        _append(ledger, [first])
        assert ledger.resolve_signer(key_id) is not None
        # A second key first (a participant keeps at least one), then REG1 revokes the first.
        spare = directory.keys["ADMIN"]
        add = directory.tx(
            "REG1",
            "identity.add_key",
            nonce=3,
            suite=directory.suite,
            public_key=generate_keypair(directory.suite).public_key.hex(),
        )
        revoke = directory.tx("REG1", "identity.revoke_key", nonce=4, key_id=key_id.hex())
        _append(ledger, [add, revoke])
        block = ledger.get_block(3)
        assert block is not None and [r.code for r in block.results] == ["OK", "OK"], block
        late = directory.tx("REG1", "identity.update_details", nonce=5, participant="REG1")
        _append(ledger, [late])
        block = ledger.get_block(4)
        assert block is not None and block.results[0].code == "KEY_REVOKED"
        assert spare.key_id != key_id


def test_recorded_open_verifies_above_the_record_and_the_rest_on_demand(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    path = tmp_path / "db"
    _build_chain(path, directory, genesis, blocks=6)
    with Ledger.open(path, genesis) as ledger:
        tip_hash = ledger.tip_hash
        assert ledger.verified_record() == (6, tip_hash)  # written in each block's batch
    # Block 4 changed after it was verified: the record lets the open skip it, and the
    # background check (verify_range) still names it.
    _rewrite(path, keys.write_set_key(4), _flip_middle_byte)
    with Ledger.open(path, genesis, verify="recorded") as ledger:
        assert ledger.height == 6
        with pytest.raises(LedgerCorruption) as caught:
            ledger.verify_range(0, 5)
        assert caught.value.height == 4
        ledger.verify_range(5, 6)
    with pytest.raises(LedgerCorruption):
        Ledger.open(path, genesis, verify="full")


def test_recorded_open_still_checks_the_tip_block(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    path = tmp_path / "db"
    _build_chain(path, directory, genesis, blocks=4)
    _rewrite(path, keys.results_key(4), _flip_middle_byte)
    with pytest.raises(LedgerCorruption) as caught:
        Ledger.open(path, genesis, verify="recorded")
    assert caught.value.height == 4


def test_a_ledger_without_a_record_is_verified_in_full_once(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    path = tmp_path / "db"
    _build_chain(path, directory, genesis, blocks=5)
    db = plyvel.DB(str(path))
    db.delete(keys.META_VERIFIED)  # as a ledger written before the record existed
    db.close()
    _rewrite(path, keys.block_key(2), _flip_middle_byte)
    with pytest.raises(LedgerCorruption) as caught:
        Ledger.open(path, genesis, verify="recorded")
    assert caught.value.height == 2


def test_a_ledger_without_a_record_gets_one_after_a_full_check(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    path = tmp_path / "db"
    _build_chain(path, directory, genesis, blocks=5)
    db = plyvel.DB(str(path))
    db.delete(keys.META_VERIFIED)
    db.close()
    with Ledger.open(path, genesis, verify="recorded") as ledger:
        assert ledger.verified_record() == (5, ledger.tip_hash)


def test_a_record_above_the_tip_is_corruption(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    from ibledger.contracts.codec import canonical_encode

    path = tmp_path / "db"
    _build_chain(path, directory, genesis, blocks=3)
    db = plyvel.DB(str(path))
    db.put(keys.META_VERIFIED, canonical_encode([9, bytes(32)]))
    db.close()
    with pytest.raises(LedgerCorruption, match="above the recorded tip"):
        Ledger.open(path, genesis, verify="recorded")


def test_execution_refuses_a_reused_nonce_that_a_primary_proposes(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    # Admission is the first line; a Byzantine primary can skip it, so every replica must refuse
    # the second use of a nonce in execution, whether the two share a block or not.
    first = directory.tx("ADMIN", "identity.update_details", nonce=7, participant="ADMIN", name="A")
    same_block = directory.tx(
        "ADMIN", "identity.update_details", nonce=7, participant="ADMIN", name="B"
    )
    later_block = directory.tx(
        "ADMIN", "identity.update_details", nonce=7, participant="ADMIN", name="C"
    )
    with Ledger.open(tmp_path / "db", genesis) as ledger:
        _append(ledger, [first, same_block])
        _append(ledger, [later_block])
        codes = [r.code for h in (1, 2) for r in ledger.get_block(h).results]  # type: ignore[union-attr]
        assert codes == ["OK", "NONCE_REUSED", "NONCE_REUSED"]


def test_execution_refuses_an_expiry_beyond_the_horizon_that_a_primary_proposes(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    from ibledger.node.tx import build_transaction

    admin = directory.keys["ADMIN"]
    with Ledger.open(tmp_path / "db", genesis) as ledger:
        block_time = ledger.tip_timestamp_ms + 1000
        horizon = ledger.expiry_horizon_ms

        def expiring(at_ms: int, nonce: int) -> bytes:
            return build_transaction(
                admin,
                chain_id="ibledger-test",
                sender="ADMIN",
                operation="identity.update_details",
                args={"participant": "ADMIN", "name": f"n{nonce}"},
                nonce=nonce,
                expires_at_ms=at_ms,
            )

        header = ledger.next_header(
            block_time,
            envelopes := [
                expiring(2**63 - 1, 1),
                expiring(block_time + horizon + 1, 2),
                expiring(block_time + horizon, 3),
            ],
        )
        ledger.append_block(header, envelopes, certificate=b"cert-1")
        codes = [r.code for r in ledger.get_block(1).results]  # type: ignore[union-attr]
        assert codes == ["EXPIRY_TOO_FAR", "EXPIRY_TOO_FAR", "OK"]


def test_every_flipped_byte_in_a_table_is_found_at_open_or_by_the_record_scan(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    built = tmp_path / "built"
    _build_chain(built, directory, genesis, blocks=30)
    db = plyvel.DB(str(built))
    db.compact_range()
    db.close()
    (table,) = built.glob("*.ldb")
    size = table.stat().st_size
    found_by = []
    for tenth in range(1, 10):
        path = tmp_path / f"flipped-{tenth}"
        shutil.copytree(built, path)
        data = bytearray((path / table.name).read_bytes())
        data[size * tenth // 10] ^= 0xFF
        (path / table.name).write_bytes(bytes(data))
        try:
            ledger = Ledger.open(path, genesis, verify="recorded")
        except LedgerCorruption:
            found_by.append("open")
            continue
        try:
            with pytest.raises(LedgerCorruption, match="fails its checksum"):
                cursor: bytes | None = b""
                while cursor is not None:
                    cursor = ledger.scan_records(cursor, 40)
            found_by.append("scan")
        finally:
            ledger.close()
    # A node opens with verify="recorded": damage in blocks below its record, or in records
    # that no start-up read touches, is left to the scan it runs in the background.
    assert "scan" in found_by, found_by


def test_the_record_scan_reads_every_record_in_chunks(
    tmp_path: Path, directory: Directory, genesis: dict[str, object]
) -> None:
    path = tmp_path / "db"
    _build_chain(path, directory, genesis, blocks=3)
    with Ledger.open(path, genesis) as ledger:
        total = len(list(ledger._store.iterator()))
        cursor: bytes | None = b""
        calls = 0
        while cursor is not None:
            cursor = ledger.scan_records(cursor, 7)
            calls += 1
    assert calls == total // 7 + 1, (calls, total)
