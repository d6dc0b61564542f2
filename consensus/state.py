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
returns them in order. This module is the only place that knows the record format: the replica
writes through the `*_record` functions and reads back through `restore` (`load_records`, then
what still applies above the executed tip, with the log rebuilt by `rebuild_log`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .codec import (
    MessageError,
    decode_block,
    decode_checkpoint_certificate,
    decode_message,
    decode_prepared_certificate,
    encode_block,
    encode_checkpoint_certificate,
    encode_message,
    encode_prepared_certificate,
    pack,
    unpack,
)
from .config import ReplicaConfig
from .effects import Persist
from .log import Slot
from .messages import (
    Block,
    CheckpointCertificate,
    Commit,
    HashFn,
    Message,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    SignedMessage,
    sha256,
)

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


Record = tuple[bytes, bytes]


def pre_prepare_key(seq: int) -> bytes:
    return seq_key(PREFIX_PRE_PREPARE, seq)


def prepared_key(seq: int) -> bytes:
    return seq_key(PREFIX_PREPARED, seq)


def view_record(view: int, active: bool) -> Record:
    return KEY_VIEW, pack([view, active])


def stable_record(cert: CheckpointCertificate) -> Record:
    return KEY_STABLE, encode_checkpoint_certificate(cert)


def new_view_record(sm: SignedMessage) -> Record:
    return KEY_NEW_VIEW, encode_message(sm)


def pre_prepare_record(seq: int, from_new_view: bool, pp: SignedMessage) -> Record:
    return pre_prepare_key(seq), pack([from_new_view, encode_message(pp)])


def prepared_record(cert: PreparedCertificate, block: Block) -> Record:
    return prepared_key(cert.seq), pack([encode_prepared_certificate(cert), encode_block(block)])


@dataclass(slots=True)
class LoadedRecords:
    """The decoded records, unfiltered: the replica decides what still applies."""

    view: int = 0
    view_active: bool = True
    stable: CheckpointCertificate | None = None
    pre_prepares: list[tuple[int, bool, SignedMessage]] = field(default_factory=list)  # by seq
    prepared: list[tuple[PreparedCertificate, Block]] = field(default_factory=list)  # by seq
    new_view: SignedMessage | None = None


def load_records(persisted: PersistedState, hash_fn: HashFn = sha256) -> LoadedRecords:
    """Decode every record (bodies with the chain hash); PersistedStateError if any is corrupt."""
    records = persisted.records
    out = LoadedRecords()
    try:
        if KEY_VIEW in records:
            fields = unpack(records[KEY_VIEW])
            if (
                type(fields) is not tuple
                or len(fields) != 2
                or type(fields[0]) is not int
                or type(fields[1]) is not bool
            ):
                raise PersistedStateError("view record")
            out.view, out.view_active = fields[0], fields[1]
        if KEY_STABLE in records:
            out.stable = decode_checkpoint_certificate(records[KEY_STABLE])
        for key, value in sorted(records.items()):
            if key.startswith(PREFIX_PRE_PREPARE) and len(key) == 10:
                seq = int.from_bytes(key[2:], "big")
                fields = unpack(value)
                if type(fields) is not tuple or len(fields) != 2:
                    raise PersistedStateError("pre-prepare record")
                sm = decode_message(fields[1], hash_fn=hash_fn)
                if not isinstance(sm.message, PrePrepare) or sm.message.seq != seq:
                    raise PersistedStateError("pre-prepare record")
                out.pre_prepares.append((seq, bool(fields[0]), sm))
            elif key.startswith(PREFIX_PREPARED) and len(key) == 10:
                seq = int.from_bytes(key[2:], "big")
                fields = unpack(value)
                if type(fields) is not tuple or len(fields) != 2:
                    raise PersistedStateError("prepared record")
                cert = decode_prepared_certificate(fields[0])
                block = decode_block(fields[1], hash_fn)
                if cert.seq != seq or block.digest != cert.digest:
                    raise PersistedStateError("prepared record")
                out.prepared.append((cert, block))
        if KEY_NEW_VIEW in records:
            out.new_view = decode_message(records[KEY_NEW_VIEW], hash_fn=hash_fn)
    except MessageError as exc:
        raise PersistedStateError(f"corrupt consensus state: {exc}") from exc
    return out


def rebuild_log(
    loaded: LoadedRecords,
    *,
    view: int,
    view_active: bool,
    floor: int,
    own_id: str,
    is_primary: bool,
    prepared: Mapping[int, tuple[PreparedCertificate, Block]],
    sign: Callable[[Message], SignedMessage],
) -> list[Slot]:
    """The slots above `floor` accepted in `view`, in sequence order, with the votes this
    replica had sent for them: a backup's PREPARE, and a COMMIT where the prepared record
    matches. Re-signing the same digest is harmless; a different one is what is forbidden."""
    slots: list[Slot] = []
    for seq, from_new_view, sm in loaded.pre_prepares:
        pp = sm.message
        assert isinstance(pp, PrePrepare)
        if pp.view != view or seq <= floor or pp.block is None:
            continue
        if pp.block.digest != pp.digest:
            raise PersistedStateError("pre-prepare record body")
        slot = Slot(seq, pre_prepare=sm, block=pp.block, from_new_view=from_new_view)
        if view_active and not is_primary:
            slot.own_prepare = sign(Prepare(view, seq, pp.digest))
            slot.prepares[own_id] = slot.own_prepare
        cert = prepared.get(seq)
        if view_active and cert and cert[0].view == view and cert[0].digest == pp.digest:
            slot.prepared = True
            slot.own_commit = sign(Commit(view, seq, pp.digest))
            slot.commits[own_id] = slot.own_commit
        slots.append(slot)
    return slots


@dataclass(slots=True)
class Restored:
    """What a restarted replica takes back: view, h, P above h, its NEW-VIEW, and the log."""

    view: int
    view_active: bool
    stable: CheckpointCertificate
    prepared: dict[int, tuple[PreparedCertificate, Block]]
    new_view: SignedMessage | None
    slots: list[Slot]


def restore(
    persisted: PersistedState,
    *,
    last_executed: int,
    own_id: str,
    cfg: ReplicaConfig,
    sign: Callable[[Message], SignedMessage],
) -> Restored:
    """Decode the records and keep what still applies to a replica whose executor is at
    `last_executed`; PersistedStateError if any record is corrupt."""
    loaded = load_records(persisted, cfg.hash_fn)
    view, active = loaded.view, loaded.view_active
    stable = loaded.stable
    if stable is None or stable.seq < cfg.base.seq:
        stable = cfg.base
    prepared = {c.seq: (c, b) for c, b in loaded.prepared if c.seq > stable.seq}
    nv = loaded.new_view
    if nv is not None and not (isinstance(nv.message, NewView) and nv.message.view == view):
        nv = None
    slots = rebuild_log(
        loaded,
        view=view,
        view_active=active,
        floor=max(last_executed, stable.seq),
        own_id=own_id,
        is_primary=cfg.primary(view) == own_id,
        prepared=prepared,
        sign=sign,
    )
    return Restored(view, active, stable, prepared, nv, slots)
