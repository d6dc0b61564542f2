"""A ledger writer process for the crash test: appends blocks and reports each synced height.

    python -m tests.node.ledger_writer DATA_DIR GENESIS_JSON BLOCKS

It prints ``written <height>`` after ``append_block`` returns, i.e. after the block's WriteBatch
was written with sync=True, and flushes, so whatever the parent read was durable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ibledger.node.ledger import Ledger

from .conftest import Directory, make_genesis, register_tx


def main() -> None:
    data_dir, genesis_path, blocks = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    directory = Directory()
    genesis = make_genesis(directory)
    genesis_path.write_text(json.dumps(genesis))
    with Ledger.open(data_dir, genesis, verifier_workers=1) as ledger:
        print("ready", flush=True)
        for height in range(1, blocks + 1):
            envelopes = [register_tx(directory, f"R{height}-{i}", nonce=i) for i in range(2)]
            header = ledger.next_header(ledger.tip_timestamp_ms + 1000, envelopes)
            ledger.append_block(header, envelopes, certificate=b"c%d" % height)
            print(f"written {height}", flush=True)


if __name__ == "__main__":
    main()
