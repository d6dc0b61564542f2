"""The vote record beside a validator key (node/vote_record.py, TESTING B14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ibledger.consensus import Block, Commit, NewView, Prepare, PrePrepare, SignedMessage
from ibledger.node.vote_record import (
    RESERVE_BLOCKS,
    VoteRecord,
    VoteRecordError,
    default_path,
    voted_seq,
)

KEY = b"k" * 32


class _LedgerCopy:
    """The ledger's copy of the reservation, as ``Ledger`` keeps it (by key)."""

    def __init__(self) -> None:
        self.by_key: dict[bytes, int] = {}
        self.writes = 0

    def vote_reservation(self, key_id: bytes) -> int:
        return self.by_key.get(key_id, 0)

    def record_vote_reservation(self, key_id: bytes, height: int) -> None:
        self.by_key[key_id] = height
        self.writes += 1


def _path(tmp_path: Path) -> Path:
    (tmp_path / "keys").mkdir(exist_ok=True)
    return tmp_path / "keys" / "validator.key.pem.votes"


def _signed(message: object) -> SignedMessage:
    return SignedMessage(message, "v0", b"s")  # type: ignore[arg-type]


def test_the_record_lives_beside_the_key() -> None:
    assert default_path(Path("/n/keys/validator.key.pem")) == Path(
        "/n/keys/validator.key.pem.votes"
    )


def test_a_first_start_writes_the_record_and_forbids_nothing(tmp_path: Path) -> None:
    path = _path(tmp_path)
    record = VoteRecord.open(path, _LedgerCopy(), KEY)
    assert record.floor == 0 and record.reserved == 0
    assert json.loads(path.read_text()) == {"floor": 0, "format": 1, "reserved": 0}
    assert path.stat().st_mode & 0o077 == 0


def test_votes_are_covered_ahead_in_both_copies_and_a_restart_keeps_no_floor(
    tmp_path: Path,
) -> None:
    path, ledger = _path(tmp_path), _LedgerCopy()
    record = VoteRecord.open(path, ledger, KEY)
    assert not record.covers(1)
    record.reserve(1)
    assert record.reserved == ledger.vote_reservation(KEY) == 1 + RESERVE_BLOCKS
    assert record.covers(RESERVE_BLOCKS)
    record.reserve(5)  # covered: nothing written
    assert ledger.writes == 1
    again = VoteRecord.open(path, ledger, KEY)  # the ledger saw every vote
    assert again.floor == 0 and again.reserved == 1 + RESERVE_BLOCKS


def test_a_crash_between_the_two_copies_leaves_no_floor(tmp_path: Path) -> None:
    # The ledger's copy is written first: a record behind it only means no vote had left.
    path, ledger = _path(tmp_path), _LedgerCopy()
    VoteRecord.open(path, ledger, KEY).reserve(1)
    ledger.record_vote_reservation(KEY, 100)
    record = VoteRecord.open(path, ledger, KEY)
    assert record.floor == 0 and record.reserved == 100


@pytest.mark.parametrize("loss", ["wiped", "older copy", "another validator's ledger"])
def test_a_ledger_that_missed_votes_sets_the_floor_to_every_vote_it_may_have_signed(
    tmp_path: Path, loss: str
) -> None:
    path, ledger = _path(tmp_path), _LedgerCopy()
    record = VoteRecord.open(path, ledger, KEY)
    record.reserve(10)
    older = dict(ledger.by_key)
    record.reserve(40)
    if loss == "wiped":
        ledger = _LedgerCopy()
    elif loss == "older copy":
        ledger.by_key = older
    else:
        ledger.by_key = {b"o" * 32: 10_000}
    record = VoteRecord.open(path, ledger, KEY)
    assert record.floor == 40 + RESERVE_BLOCKS
    # The floor survives further starts, also a second loss before it voted again.
    assert VoteRecord.open(path, ledger, KEY).floor == 40 + RESERVE_BLOCKS
    assert VoteRecord.open(path, _LedgerCopy(), KEY).floor == 40 + RESERVE_BLOCKS


def test_the_floor_is_recorded_before_the_ledger_vouches_for_it(tmp_path: Path) -> None:
    path = _path(tmp_path)
    VoteRecord.open(path, _LedgerCopy(), KEY).reserve(40)

    class CrashingCopy(_LedgerCopy):
        def record_vote_reservation(self, key_id: bytes, height: int) -> None:
            assert json.loads(path.read_text())["floor"] == height  # the record is first
            raise OSError("killed")

    with pytest.raises(OSError):
        VoteRecord.open(path, CrashingCopy(), KEY)
    assert VoteRecord.open(path, _LedgerCopy(), KEY).floor == 40 + RESERVE_BLOCKS


@pytest.mark.parametrize(
    "content",
    [b"{", b"[]", b'{"format": 1}', b'{"format": 2, "reserved": 1, "floor": 0}',
     b'{"format": 1, "reserved": -1, "floor": 0}', b" " * 5000],
)  # fmt: skip
def test_a_damaged_record_stops_the_node_with_its_path(tmp_path: Path, content: bytes) -> None:
    path = _path(tmp_path)
    path.write_bytes(content)
    with pytest.raises(VoteRecordError, match=r"vote record .* is damaged"):
        VoteRecord.open(path, _LedgerCopy(), KEY)


def test_an_unwritable_record_is_an_error_not_a_silent_skip(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "validator.key.pem.votes"
    with pytest.raises(VoteRecordError, match="cannot write the vote record"):
        VoteRecord.open(path, _LedgerCopy(), KEY)


def test_only_votes_on_blocks_are_covered() -> None:
    block = Block(7, 1, (b"r",))
    pp = _signed(PrePrepare(2, 7, block.digest, block))
    assert voted_seq(pp) == 7
    assert voted_seq(_signed(Prepare(2, 8, b"d" * 32))) == 8
    assert voted_seq(_signed(Commit(2, 9, b"d" * 32))) == 9
    later = _signed(PrePrepare(3, 12, b"d" * 32))
    assert voted_seq(_signed(NewView(3, (), (pp, later)))) == 12
    assert voted_seq(_signed(NewView(3, (), ()))) is None
