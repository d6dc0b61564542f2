"""Failpoints: the spec is checked strictly, an armed point fires on the hit it names (crash,
I/O error or delay), an unarmed node runs past every point, and the ledger's points sit around
its block and checkpoint writes (a crash before the batch leaves the block unwritten, after it
leaves the block on disk)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ibledger.node import failpoints
from ibledger.node.failpoints import FailpointIOError, FailpointSpecError
from ibledger.node.jsonfile import read_genesis
from ibledger.node.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def disarmed() -> Iterator[None]:
    failpoints.arm({})
    yield
    failpoints.arm({})


def test_a_spec_names_points_actions_and_hits() -> None:
    points = failpoints.parse(
        "ledger.before-block-write=crash@3; execute.before-reply=delay:25@2+;"
        "audit.before-write=error"
    )
    crash = points["ledger.before-block-write"]
    assert (crash.action, crash.on_hit, crash.and_later) == ("crash", 3, False)
    delay = points["execute.before-reply"]
    assert (delay.action, delay.delay_ms, delay.on_hit, delay.and_later) == ("delay", 25, 2, True)
    assert points["audit.before-write"].on_hit == 1
    assert failpoints.parse("") == {} and failpoints.parse(" ; ") == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ledger.before-block-wrote=crash", "unknown failpoint 'ledger.before-block-wrote'"),
        ("ledger.before-block-write", "is not NAME=ACTION"),
        ("ledger.before-block-write=explode", "action 'explode' is not crash, error or delay"),
        ("ledger.before-block-write=crash@0", "@N counts from 1"),
        ("ledger.before-block-write=crash@x", "is not crash, error or delay"),
        ("ledger.before-block-write=delay", "is not crash, error or delay"),
        ("ledger.before-block-write=delay:60001", "a delay is at most 60000 ms"),
        ("audit.before-write=error;audit.before-write=crash", "is given twice"),
    ],
)
def test_a_malformed_spec_is_refused_saying_why(spec: str, message: str) -> None:
    with pytest.raises(FailpointSpecError, match=message.replace("(", r"\(")):
        failpoints.parse(spec)


def test_an_error_failpoint_fires_on_its_hit_only() -> None:
    failpoints.arm(failpoints.parse("audit.before-write=error@2"))
    failpoints.hit("audit.before-write")  # the first hit passes
    failpoints.hit("ledger.after-block-write")  # another point is not armed
    with pytest.raises(FailpointIOError, match=r"failpoint audit\.before-write") as raised:
        failpoints.hit("audit.before-write")
    assert isinstance(raised.value, OSError) and raised.value.errno == 5
    failpoints.hit("audit.before-write")  # no "+": the third passes again


def test_a_repeating_failpoint_fires_on_every_later_hit() -> None:
    failpoints.arm(failpoints.parse("audit.before-write=error@2+"))
    failpoints.hit("audit.before-write")
    for _ in range(3):
        with pytest.raises(FailpointIOError):
            failpoints.hit("audit.before-write")


def test_a_delay_failpoint_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(failpoints.time, "sleep", slept.append)
    failpoints.arm(failpoints.parse("execute.before-reply=delay:250"))
    failpoints.hit("execute.before-reply")
    failpoints.hit("execute.before-reply")
    assert slept == [0.25]


def test_unarmed_points_do_nothing_and_arming_resets_the_counts() -> None:
    for name in failpoints.POINTS:
        failpoints.hit(name)
    failpoints.arm(failpoints.parse("audit.before-write=error@2"))
    failpoints.hit("audit.before-write")
    failpoints.arm(failpoints.parse("audit.before-write=error@2"))
    failpoints.hit("audit.before-write")  # counted from 1 again
    with pytest.raises(FailpointIOError):
        failpoints.hit("audit.before-write")


def test_arming_reads_only_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(failpoints.ENVIRONMENT_VARIABLE, raising=False)
    assert failpoints.arm_from_environment() == {}
    monkeypatch.setenv(failpoints.ENVIRONMENT_VARIABLE, "state-transfer.apply=crash")
    assert list(failpoints.arm_from_environment()) == ["state-transfer.apply"]
    monkeypatch.setenv(failpoints.ENVIRONMENT_VARIABLE, "nowhere=crash")
    with pytest.raises(FailpointSpecError):
        failpoints.arm_from_environment()


def test_node_start_refuses_a_malformed_failpoint_spec(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ibledger.cli.main", "node", "start", "--config",
         str(tmp_path / "node.toml")],
        capture_output=True, text=True, timeout=60,
        env={"IBLEDGER_FAILPOINTS": "ledger.nowhere=crash", "PATH": ""},
    )  # fmt: skip
    assert result.returncode != 0
    assert "BAD_FAILPOINT" in result.stderr and "unknown failpoint 'ledger.nowhere'" in (
        result.stderr
    )


_WRITER_WITH_FAILPOINT = textwrap.dedent(
    """
    import sys
    from ibledger.node import failpoints
    from tests.node import ledger_writer
    failpoints.arm(failpoints.parse(sys.argv[1]))
    sys.argv = ["ledger_writer", *sys.argv[2:]]
    ledger_writer.main()
    """
)


@pytest.mark.parametrize(
    ("point", "height_after"),
    [("ledger.before-block-write", 2), ("ledger.after-block-write", 3)],
)
def test_a_crash_around_the_block_batch_leaves_the_block_unwritten_or_whole(
    tmp_path: Path, point: str, height_after: int
) -> None:
    data_dir, genesis_path = tmp_path / "db", tmp_path / "genesis.json"
    result = subprocess.run(
        [sys.executable, "-c", _WRITER_WITH_FAILPOINT, f"{point}=crash@3", str(data_dir),
         str(genesis_path), "10"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == failpoints.CRASH_EXIT_STATUS, result.stderr
    assert result.stdout.split()[-1] == "2", result.stdout  # blocks 1 and 2 were reported
    assert f"failpoint {point} reached: crash" in result.stderr
    with Ledger.open(data_dir, read_genesis(genesis_path), verify="full") as ledger:
        assert ledger.height == height_after  # the whole block or none of it
