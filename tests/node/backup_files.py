"""Backup files rewritten record by record, in the documented format (node/backup.py), with a
fresh, valid digest: what a forger (or a bug) could produce, which only a restore's
verification can catch."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from pathlib import Path

from ibledger.node.backup import MAGIC


def reencode(source: Path, out: Path, change: Callable[[dict[bytes, bytes]], None]) -> None:
    """Rewrite a backup with ``change(records)`` applied and a fresh, valid digest: what a forger
    (or a bug) could produce, which only the restore's verification can catch."""
    with source.open("rb") as handle:
        data = handle.read()
    (length,) = struct.unpack(">I", data[len(MAGIC) : len(MAGIC) + 4])
    head = data[: len(MAGIC) + 4 + length]
    position = len(head)
    records: dict[bytes, bytes] = {}
    while data[position] == 1:
        (key_length,) = struct.unpack(">I", data[position + 1 : position + 5])
        key = data[position + 5 : position + 5 + key_length]
        position += 5 + key_length
        (value_length,) = struct.unpack(">I", data[position : position + 4])
        records[key] = data[position + 4 : position + 4 + value_length]
        position += 4 + value_length
    change(records)
    body = head + b"".join(
        b"\x01" + struct.pack(">I", len(k)) + k + struct.pack(">I", len(v)) + v
        for k, v in sorted(records.items())
    )
    body += b"\x00" + struct.pack(">Q", len(records))
    out.write_bytes(body + hashlib.sha256(body).digest())
