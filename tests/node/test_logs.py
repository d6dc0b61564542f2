"""Node logs: every line is one JSON object, events keep their fields, and the file rotates by
size so a long-running node cannot fill its disk."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from ibledger.node.logs import configure


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:], root.level = handlers, level


@pytest.mark.usefixtures("restore_logging")
def test_lines_are_json_with_event_fields_and_the_file_rotates(tmp_path: Path) -> None:
    path = tmp_path / "node.log"
    configure("node7", "debug", file=path, max_bytes=4096, backups=2)
    log = logging.getLogger("ibledger.test")
    log.info("view changed", extra={"event": "view-change", "cause": "request-timeout", "s": None})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("something failed", extra={"hash": b"\x01\x02"})
    for n in range(200):
        log.debug("block committed", extra={"event": "block", "height": n})
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["node.log", "node.log.1", "node.log.2"]
    assert all(f.stat().st_size <= 4096 + 512 for f in files)
    entries = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert all(e["node"] == "node7" and e["ts"].endswith("Z") for e in entries)
    heights = sorted(e["height"] for e in entries if e.get("event") == "block")
    assert heights[-1] == 199  # the newest lines are kept, the oldest rotated away
    assert not (tmp_path / "node.log.3").exists()


@pytest.mark.usefixtures("restore_logging")
def test_a_traceback_stays_inside_its_line(tmp_path: Path) -> None:
    path = tmp_path / "node.log"
    configure("node7", "info", file=path)
    log = logging.getLogger("ibledger.test")
    log.info("view changed", extra={"event": "view-change", "cause": "joined-peers", "s": None})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("something failed", extra={"hash": b"\x01\x02"})
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert (first["event"], first["cause"], first["s"]) == ("view-change", "joined-peers", None)
    assert second["level"] == "error" and "ValueError: boom" in second["exc"]
    assert second["hash"] == "0102"
