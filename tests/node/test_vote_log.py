"""The record of sent votes (C7): what it holds, that it outlives kill -9, the conflict check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ibledger.consensus import (
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PrePrepare,
    SignedMessage,
    Status,
)
from ibledger.node import vote_log

D1, D2 = b"\x01" * 32, b"\x02" * 32


def _signed(message: object, sender: str = "node0") -> SignedMessage:
    return SignedMessage(message, sender, b"s" * 64)  # type: ignore[arg-type]


def test_votes_are_recorded_and_other_messages_are_not(tmp_path: Path) -> None:
    log = vote_log.VoteLog(tmp_path / "votes" / "node0.jsonl")
    log.record(_signed(PrePrepare(0, 1, D1)))
    log.record(_signed(Prepare(0, 1, D1)))
    log.record(_signed(Commit(0, 1, D1)))
    log.record(_signed(Checkpoint(8, D1, D2)))
    log.record(_signed(Status(0, True, 1, 0)))
    # A NEW-VIEW's O set is the new primary's pre-prepares; another sender's are not our votes.
    ours, theirs = _signed(PrePrepare(1, 2, D2)), _signed(PrePrepare(1, 3, D2), "node1")
    log.record(_signed(NewView(1, (), (ours, theirs))))
    log.close()
    records = [json.loads(line) for line in log.path.read_text().splitlines()]
    assert [(r["kind"], r["view"], r["seq"]) for r in records] == [
        ("preprepare", 0, 1),
        ("prepare", 0, 1),
        ("commit", 0, 1),
        ("checkpoint", None, 8),
        ("preprepare", 1, 2),
    ]
    assert vote_log.conflicts(log.path.read_text().splitlines()) == []


def test_a_vote_is_on_record_when_the_process_is_killed_right_after(tmp_path: Path) -> None:
    path = tmp_path / "node0.jsonl"
    script = (
        "import os, sys\n"
        "from ibledger.consensus import Prepare, SignedMessage\n"
        "from ibledger.node.vote_log import VoteLog\n"
        "log = VoteLog(__import__('pathlib').Path(sys.argv[1]))\n"
        "log.record(SignedMessage(Prepare(0, 5, b'\\x01' * 32), 'node0', b's' * 64))\n"
        "os._exit(137)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(path)], timeout=60)
    assert result.returncode == 137
    (line,) = path.read_text().splitlines()
    assert json.loads(line)["seq"] == 5


def _line(kind: str, view: int | None, seq: int, digest: bytes, pid: int) -> str:
    record = {"kind": kind, "view": view, "seq": seq, "digest": digest.hex(), "pid": pid}
    return json.dumps(record)


def test_two_digests_for_one_view_and_seq_are_a_conflict_across_restarts() -> None:
    lines = [
        _line("prepare", 3, 10, D1, 100),
        _line("prepare", 3, 10, D1, 200),  # the same vote again after a restart: fine
        _line("prepare", 4, 10, D2, 200),  # another view: fine
        _line("commit", 3, 10, D1, 200),
        _line("prepare", 3, 10, D2, 300),
        _line("checkpoint", None, 16, D1, 100),
        _line("checkpoint", None, 16, D2, 300),
    ]
    found = vote_log.conflicts(lines)
    assert len(found) == 2, found
    assert found[0].startswith("prepare view 3 seq 10: signed 0101") and "(pid 300)" in found[0]
    assert found[1].startswith("checkpoint seq 16")


@pytest.mark.parametrize("position", ["last", "middle"])
def test_a_torn_last_line_is_ignored_and_any_other_bad_line_reported(position: str) -> None:
    good = [_line("prepare", 0, 1, D1, 1), _line("commit", 0, 1, D1, 1)]
    lines = [*good, '{"kind": "prep'] if position == "last" else [good[0], "garbage", good[1]]
    found = vote_log.conflicts(lines)
    assert found == ([] if position == "last" else ["line 2 is not a vote record: 'garbage'"])


def test_off_unless_the_environment_names_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(vote_log.ENVIRONMENT_VARIABLE, raising=False)
    assert vote_log.from_environment("node0") is None
    monkeypatch.setenv(vote_log.ENVIRONMENT_VARIABLE, str(tmp_path / "v"))
    log = vote_log.from_environment("node0")
    assert log is not None and log.path == tmp_path / "v" / "node0.jsonl"
    log.close()
