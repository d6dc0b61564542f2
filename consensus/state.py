"""Durable consensus state: the key/value records a replica needs to recover.

Theory of operation
-------------------
Castro-Liskov (TOCS 2002 section 6, and OSDI'99 section 4.2's requirement that a replica never
sends conflicting messages) require that what backs a vote is stable before the vote leaves. The
replica expresses that as `Persist` effects with key/value updates; the node applies each one
atomically (one LevelDB WriteBatch under its consensus prefix) before sending anything that
follows it. On restart the node reads every record back into a `PersistedState` and passes it to
`Replica(...)`. The records are:

- `view`: [view, active]; active is false after the replica sent VIEW-CHANGE for that view, so it
  never returns to an older view;
- `stable`: the stable checkpoint certificate (low watermark);
- `pp` + seq: the pre-prepare accepted in the current view at seq (what the PREPARE signed);
- `pc` + seq: the highest-view prepared certificate at seq with its block (what COMMIT signed
  and what VIEW-CHANGE must report);
- `nv`: the NEW-VIEW that started the current view, kept to help lagging peers.

Values are canonical msgpack; sequence numbers in keys are 8-byte big-endian so a prefix scan
returns them in order.
"""

from __future__ import annotations

from collections.abc import Mapping

from .codec import MessageError
from .effects import Persist

KEY_VIEW = b"view"
KEY_STABLE = b"stable"
KEY_NEW_VIEW = b"nv"
PREFIX_PRE_PREPARE = b"pp"
PREFIX_PREPARED = b"pc"


class PersistedStateError(MessageError):
    """The persisted records are corrupt; the node must not start this replica from them."""


def seq_key(prefix: bytes, seq: int) -> bytes:
    return prefix + seq.to_bytes(8, "big")


class PersistedState:
    """All consensus records of one replica (the node's view of its `cons/` namespace)."""

    __slots__ = ("records",)

    def __init__(self, records: Mapping[bytes, bytes] | None = None) -> None:
        self.records: dict[bytes, bytes] = dict(records or {})

    def apply(self, persist: Persist) -> None:
        """Apply one Persist effect (all of its updates, as one atomic write)."""
        for key, value in persist.updates:
            if value is None:
                self.records.pop(key, None)
            else:
                self.records[key] = value

    def copy(self) -> PersistedState:
        return PersistedState(self.records)

    def __len__(self) -> int:
        return len(self.records)
