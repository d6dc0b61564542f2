"""The vote record: how far a validator may have voted, kept beside its key, outside its data
directory, so that a validator whose data directory was lost cannot sign a second digest.

Theory of operation
-------------------
PBFT's safety after a restart rests on the consensus records in the data directory: a replica
that voted for digest d at (view, sequence number) remembers it and never votes for another
(Castro and Liskov, TOCS 2002 section 6).  When the data directory itself is lost (a disk
replaced, ``rm -rf``, a ledger rebuilt from a backup older than its last vote) those records go
with it, and the restarted validator would answer an equivocating primary with a conflicting
vote: with f others faulty, enough for two quorums on two blocks.  TESTING B14.

* **What is kept.**  Two copies of a *reservation*, a height no vote of this validator key was
  signed above:

  - the vote record, one small JSON file (by default ``<validator key file>.votes``; ``[node]
    vote_record`` moves it) outside the data directory, owner-only, replaced atomically (a
    temporary file, fsync, rename, fsync of the directory), with the reservation and a
    ``floor``, at or below which the validator must not vote (0 when nothing was forgotten);
  - the ledger's copy (``m/vote_reserved``: the key id and the height), in the data directory,
    never in a backup.

  Before a PRE-PREPARE, PREPARE, COMMIT or NEW-VIEW for block s leaves the node, both cover s:
  the reservation moves ``RESERVE_BLOCKS`` ahead at a time, the ledger's copy first and then the
  record, each synced, so the files are written once per that many blocks and a crash between
  the two leaves the record behind the ledger (no vote had left), never ahead of it.

* **At start** (``VoteRecord.open``):

  - no record: the first start of this key; it is written from the ledger's copy;
  - the record is not ahead of the ledger's copy: the ledger saw every vote, its consensus
    records are the ones that voted, and the recorded floor stands (it stops mattering once the
    node has executed past it);
  - the record is ahead: the ledger did not see every vote (the data directory was wiped or
    replaced, restored from a backup, or copied from an older state or from another
    validator, whose copy names another key).  The record's reservation becomes the floor.  The
    node says so, and the core signs no vote until it has executed past the floor
    (``ReplicaConfig.vote_floor``): it follows by state transfer meanwhile.  The floor is
    recorded first, so a crash before it catches up keeps it.

* **Limits.**  Lose the record with the data directory (the key copied alone to a new disk)
  and nothing tells a fresh start from amnesia: keep the file with the key (Tendermint keeps its
  ``priv_validator_state.json`` the same way).  A record that does not parse stops the node
  with its path: guessing would either block it for good or drop the protection.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ibledger.consensus import Commit, NewView, Prepare, PrePrepare, SignedMessage

from .backup import sync_directory

log = logging.getLogger("ibledger.node")

FORMAT = 1
RESERVE_BLOCKS = 16
RECORD_BYTES_MAX = 4096


class VoteRecordError(Exception):
    """The vote record cannot be read or written."""


class ReservationLedger(Protocol):
    """The ledger's copy of the reservation (``Ledger.vote_reservation``)."""

    def vote_reservation(self, key_id: bytes) -> int: ...

    def record_vote_reservation(self, key_id: bytes, height: int) -> None: ...


def default_path(validator_key: Path) -> Path:
    return validator_key.with_name(validator_key.name + ".votes")


def voted_seq(sm: SignedMessage) -> int | None:
    """The highest block a message this node sends votes on, or None for one that votes on none."""
    message = sm.message
    if isinstance(message, PrePrepare | Prepare | Commit):
        return message.seq
    if isinstance(message, NewView):
        seqs = [pp.message.seq for pp in message.pre_prepares if isinstance(pp.message, PrePrepare)]
        return max(seqs, default=None)
    return None


def _write_synced(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    sync_directory(path.parent)


@dataclass(frozen=True, slots=True)
class _Fields:
    reserved: int
    floor: int


def _read(path: Path) -> _Fields | None:
    try:
        with path.open("rb") as file:
            data = file.read(RECORD_BYTES_MAX + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise VoteRecordError(f"cannot read the vote record {path}: {exc}") from None
    try:
        if len(data) > RECORD_BYTES_MAX:
            raise ValueError("too large")
        document = json.loads(data)
        fields = _Fields(int(document["reserved"]), int(document["floor"]))
        if document.get("format") != FORMAT or fields.reserved < 0 or fields.floor < 0:
            raise ValueError("unknown format or a negative height")
    except (ValueError, KeyError, TypeError) as exc:
        raise VoteRecordError(
            f"the vote record {path} is damaged ({exc}); it guards against signing a second "
            "vote after a lost data directory. If this validator's data directory is the one "
            "that last voted, move the file aside and start again; otherwise restore the file"
        ) from None
    return fields


class VoteRecord:
    """The reservation of one validator key; written by the replica runtime's task only."""

    def __init__(
        self, path: Path, ledger: ReservationLedger, key_id: bytes, fields: _Fields
    ) -> None:
        self.path = path
        self._ledger = ledger
        self._key_id = key_id
        self._fields = fields

    @property
    def floor(self) -> int:
        return self._fields.floor

    @property
    def reserved(self) -> int:
        return self._fields.reserved

    @classmethod
    def open(cls, path: Path, ledger: ReservationLedger, key_id: bytes) -> VoteRecord:
        """Read (or first write) the record of key ``key_id`` against ``ledger``'s copy."""
        recorded = _read(path)
        seen = ledger.vote_reservation(key_id)
        if recorded is not None and recorded.reserved > seen:
            floor = max(recorded.floor, recorded.reserved)
            record = cls(path, ledger, key_id, _Fields(floor, floor))
            record._write()
            # Then the ledger's copy, so that the next start finds the floor already in place
            # (the other order, cut by a crash, would leave a ledger that vouches for votes it
            # never saw and a record without the floor).
            ledger.record_vote_reservation(key_id, floor)
            log.warning(
                "this validator's ledger has not seen every vote it signed (its data directory "
                "was lost, replaced or restored): it votes again once it has executed past them",
                extra={"event": "vote-floor", "vote_floor": floor, "record": str(path)},
            )
            return record
        fields = _Fields(seen, 0 if recorded is None else recorded.floor)
        record = cls(path, ledger, key_id, fields)
        if fields != recorded:
            record._write()
        return record

    def covers(self, seq: int) -> bool:
        return seq <= self._fields.reserved

    def reserve(self, seq: int) -> None:
        """Durably record, in the ledger and then in the file, that votes up to ``seq`` (and a
        run of blocks beyond) may be signed."""
        if self.covers(seq):
            return
        reserved = seq + RESERVE_BLOCKS
        self._ledger.record_vote_reservation(self._key_id, reserved)
        self._fields = _Fields(reserved, self._fields.floor)
        self._write()

    def _write(self) -> None:
        fields = self._fields
        document = {"format": FORMAT, "reserved": fields.reserved, "floor": fields.floor}
        try:
            _write_synced(self.path, json.dumps(document, sort_keys=True) + "\n")
        except OSError as exc:
            raise VoteRecordError(f"cannot write the vote record {self.path}: {exc}") from None
