"""The process clock: commands read the offset on every call; a node fixes it at start."""

from __future__ import annotations

import pytest

from ibledger.node import clock


@pytest.fixture(autouse=True)
def unfixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "_fixed_offset_ms", None)


def test_a_command_reads_the_offset_on_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.OFFSET_VARIABLE, "86400000")
    assert clock.offset_ms() == 86_400_000
    monkeypatch.setenv(clock.OFFSET_VARIABLE, "-5")
    assert clock.offset_ms() == -5
    monkeypatch.delenv(clock.OFFSET_VARIABLE)
    assert clock.offset_ms() == 0


def test_a_node_fixes_the_offset_it_started_with(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.OFFSET_VARIABLE, "3600000")
    assert clock.fix_offset() == 3_600_000
    monkeypatch.setenv(clock.OFFSET_VARIABLE, "7")
    assert clock.offset_ms() == 3_600_000
    before = clock.now_ms()
    assert clock.fix_offset() == 7  # fixing again reads the environment afresh
    assert clock.now_ms() < before


def test_a_bad_offset_is_refused_with_the_variable_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.OFFSET_VARIABLE, "soon")
    with pytest.raises(ValueError, match=clock.OFFSET_VARIABLE):
        clock.fix_offset()
    assert clock._fixed_offset_ms is None
