"""A record of every vote a node signs and sends, for crash tests and forensics.

Theory of operation
-------------------
* **Off unless asked for at start.**  ``IBLEDGER_VOTE_LOG_DIR``, read once when the runtime is
  built, names a directory; the node then appends one JSON line per PRE-PREPARE (also those in
  its NEW-VIEWs), PREPARE, COMMIT and CHECKPOINT it sends to ``<dir>/<node id>.jsonl``.  As
  with failpoints, nothing from the network or a configuration file turns it on.  Off, the
  runtime holds ``None`` and pays one ``is None`` test per sent message.
* **Written before the vote leaves.**  The line is handed to the operating system (a line-
  buffered file) before the message reaches the peer queues, so a process that dies at any
  later point, ``kill -9`` included, leaves every vote it sent on record.  (A power loss could
  drop the tail; the crash tests end processes, not machines.)
* **What it proves.**  PBFT's safety after a restart rests on a replica never signing two
  digests for one (view, sequence number), nor two checkpoints for one sequence number
  (Castro and Liskov, TOCS 2002 section 6).  ``conflicts`` reads a node's file, across all its
  restarts, and lists every such pair: the check the crash campaigns run after each fault.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from ibledger.consensus import Checkpoint, Commit, NewView, Prepare, PrePrepare, SignedMessage

ENVIRONMENT_VARIABLE = "IBLEDGER_VOTE_LOG_DIR"


class VoteLog:
    """Appends one line per vote sent; one writer (the replica runtime's task)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[str] = path.open("a", buffering=1, encoding="utf-8")

    def record(self, sm: SignedMessage) -> None:
        # A NEW-VIEW carries the new primary's PRE-PREPAREs for the view (its O set).
        votes = sm.message.pre_prepares if isinstance(sm.message, NewView) else (sm,)
        for vote in votes:
            line = vote_line(vote)
            if line is not None and vote.sender == sm.sender:
                self._file.write(line + "\n")

    def close(self) -> None:
        self._file.close()


def from_environment(node_id: str) -> VoteLog | None:
    directory = os.environ.get(ENVIRONMENT_VARIABLE)
    if not directory:
        return None
    return VoteLog(Path(directory) / f"{node_id}.jsonl")


def vote_line(sm: SignedMessage) -> str | None:
    """The record of a vote, or None for a message that is not one."""
    m = sm.message
    if isinstance(m, PrePrepare | Prepare | Commit):
        kind = type(m).__name__.lower()
        record = {"kind": kind, "view": m.view, "seq": m.seq, "digest": m.digest.hex()}
    elif isinstance(m, Checkpoint):
        value = m.block_digest.hex() + "/" + m.state_root.hex()
        record = {"kind": "checkpoint", "view": None, "seq": m.seq, "digest": value}
    else:
        return None
    record["pid"] = os.getpid()
    return json.dumps(record, sort_keys=True)


def conflicts(lines: Iterable[str]) -> list[str]:
    """Every (kind, view, seq) signed with two different digests, in the words of a report;
    a torn last line (the process died mid-write) is ignored, any other bad line reported."""
    seen: dict[tuple[str, int | None, int], tuple[str, int]] = {}
    found: list[str] = []
    entries = list(lines)
    for number, line in enumerate(entries, 1):
        try:
            record = json.loads(line)
            key = (str(record["kind"]), record["view"], int(record["seq"]))
            digest, pid = str(record["digest"]), int(record["pid"])
        except (ValueError, KeyError, TypeError):
            if number < len(entries):
                found.append(f"line {number} is not a vote record: {line[:80]!r}")
            continue
        first = seen.setdefault(key, (digest, pid))
        if first[0] != digest:
            kind, view, seq = key
            at = f"seq {seq}" if view is None else f"view {view} seq {seq}"
            found.append(
                f"{kind} {at}: signed {first[0][:16]}... (pid {first[1]}) and then "
                f"{digest[:16]}... (pid {pid})"
            )
    return found
