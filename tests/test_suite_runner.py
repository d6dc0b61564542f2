"""`make test` runs the suite as several processes (tests/suite.py): a failure in any fails it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import suite

PURE_OK = "def test_pure():\n    assert True\n"
SLOW_OK = "import pytest\n\n@pytest.mark.slow\ndef test_slow():\n    assert True\n"
SLOW_FAILS = "import pytest\n\n@pytest.mark.slow\ndef test_slow():\n    assert False\n"
PURE_FAILS = "def test_pure():\n    assert False\n"
NETNS_OK = (
    "import pytest\n\n@pytest.mark.slow\n@pytest.mark.netns\ndef test_ns():\n    assert True\n"
)
NETNS_FAILS = NETNS_OK.replace("assert True", "assert False")


@pytest.mark.parametrize(
    ("pure", "slow", "netns", "status"),
    [
        (PURE_OK, SLOW_OK, NETNS_OK, 0),
        (PURE_OK, SLOW_FAILS, NETNS_OK, 1),
        (PURE_FAILS, SLOW_OK, NETNS_OK, 1),
        (PURE_OK, SLOW_OK, NETNS_FAILS, 1),
    ],
)
def test_the_status_is_the_first_failure_of_any_process(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    pure: str,
    slow: str,
    netns: str,
    status: int,
) -> None:
    (tmp_path / "test_pure.py").write_text(pure)
    (tmp_path / "test_slow.py").write_text(slow)
    (tmp_path / "test_ns.py").write_text(netns)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    slow: real processes\n    netns: namespaces\n"
    )
    assert suite.main([str(tmp_path)]) == status
    out = capsys.readouterr().out
    # Each process ran only its own group, and both logs are printed.
    assert "===== pure =====" in out and "===== real processes =====" in out
    assert "===== network namespaces =====" in out
    assert out.count("1 passed") + out.count("1 failed") == 3, out
