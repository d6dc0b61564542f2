"""`make test` runs the suite as two processes (tests/suite.py): a failure in either fails it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import suite

PURE_OK = "def test_pure():\n    assert True\n"
SLOW_OK = "import pytest\n\n@pytest.mark.slow\ndef test_slow():\n    assert True\n"
SLOW_FAILS = "import pytest\n\n@pytest.mark.slow\ndef test_slow():\n    assert False\n"
PURE_FAILS = "def test_pure():\n    assert False\n"


@pytest.mark.parametrize(
    ("pure", "slow", "status"),
    [(PURE_OK, SLOW_OK, 0), (PURE_OK, SLOW_FAILS, 1), (PURE_FAILS, SLOW_OK, 1)],
)
def test_the_status_is_the_first_failure_of_either_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pure: str, slow: str, status: int
) -> None:
    (tmp_path / "test_pure.py").write_text(pure)
    (tmp_path / "test_slow.py").write_text(slow)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: real processes\n")
    assert suite.main([str(tmp_path)]) == status
    out = capsys.readouterr().out
    # Each process ran only its own group, and both logs are printed.
    assert "===== pure =====" in out and "===== real processes =====" in out
    assert out.count("1 passed") + out.count("1 failed") == 2, out
