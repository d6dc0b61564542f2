"""kill -9 in the middle of thousands of block writes: the reopened chain verifies, keeps every
height the writer reported as written, and holds no half-written block."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import plyvel
import pytest

from ibledger.node import storage_keys as keys
from ibledger.node.jsonfile import read_genesis
from ibledger.node.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]


def _run_and_kill(data_dir: Path, genesis_path: Path, kill_after_blocks: int) -> int:
    """Start a writer, SIGKILL it once it has reported ``kill_after_blocks`` blocks written (it
    goes on writing while the signal is sent, so the kill lands at an arbitrary point of a
    write); the last height it reported."""
    writer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.node.ledger_writer",
            str(data_dir),
            str(genesis_path),
            "20000",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    last_written = [0]
    ready = threading.Event()
    enough = threading.Event()

    def read() -> None:
        assert writer.stdout is not None
        for line in writer.stdout:
            if line.startswith("ready"):
                ready.set()
            elif line.startswith("written "):
                last_written[0] = int(line.split()[1])
                if last_written[0] >= kill_after_blocks:
                    enough.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert ready.wait(120), "the writer did not start"
    # The deadline only bounds a hang: a loaded machine writes slower, never less.
    assert enough.wait(600), f"the writer reported only {last_written[0]} blocks"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(10)
    reader.join(10)
    return last_written[0]


@pytest.mark.parametrize("kill_after_blocks", [25, 400, 2000])
def test_kill_minus_nine_mid_write_loses_nothing_reported(
    tmp_path: Path, kill_after_blocks: int
) -> None:
    data_dir, genesis_path = tmp_path / "db", tmp_path / "genesis.json"
    reported = _run_and_kill(data_dir, genesis_path, kill_after_blocks)
    assert reported >= kill_after_blocks
    genesis = read_genesis(genesis_path)
    with Ledger.open(data_dir, genesis, verify="full") as ledger:  # verifies the whole chain
        height = ledger.height
    assert height >= reported, (height, reported)
    print(f"killed after {reported} reported blocks; reopened at height {height}")
    assert height < 20000, "the writer was killed before it finished"
    # No trace of a block above the tip, under any per-height prefix.
    db = plyvel.DB(str(data_dir))
    try:
        for prefix in (keys.BLOCK, keys.CERTIFICATE, keys.RESULTS, keys.WRITE_SET):
            heights = [
                keys.decode_height(k[len(prefix) :])
                for k in db.iterator(prefix=prefix, include_value=False)
            ]
            assert heights == list(range(0 if prefix != keys.CERTIFICATE else 1, height + 1))
        indexed = {
            json.dumps(k.hex()) for k in db.iterator(prefix=keys.TX_INDEX, include_value=False)
        }
        assert len(indexed) == 2 * height
    finally:
        db.close()
