"""Identity contract: participants, their roles, identifiers and signing keys.

Theory of operation
-------------------
A participant is registered at genesis or by a consortium admin. It has a role set (ROLES), an
optional LEI / USCC / BIC / CNAPS code (validated strictly, LEI and USCC unique across
participants) and one or more public keys. A key is addressed by its fingerprint, the first 16
bytes of its suite's hash of the key (SHA-256 or SM3; the envelope's signer key id), and is never
re-used, even after revocation, so an old signature can never be attributed to a new owner.

Before any operation the runtime calls ``check_sender``: the payload's sender must be a registered,
active participant and the envelope's key must be one of its active keys. The node calls
``resolve_key`` at admission to find the public key to verify a signature with.

Role prerequisites: an enterprise must carry a USCC and a bank an LEI (docs/domain.md B.2:
parties are keyed by USCC or LEI). At least one active consortium admin always remains, and
never fewer than the genesis admin quorum, or no governance proposal could pass again.

Who may change what: a participant adds and revokes its own keys. Changing another participant's
keys, anyone's roles or activation, and admitting a participant with a governed role
(``GOVERNED_ROLES``) take a governance proposal approved by ``admin_quorum`` active consortium
admins (``governance``); the direct operations refuse them with ``GOVERNANCE_REQUIRED``. The
governed effects live here, in ``GOVERNED_ACTIONS``, so both routes apply the same rules. A single
admin still registers participants without governed roles and edits reference details (name, BIC,
CNAPS, LEI status), which confer no authority.

Ed25519 public keys are checked at registration: canonical encoding, on the curve, and not of
small order (docs/design.md section 7), so a key that admits trivial forgeries is never
accepted.

State keys::

    id/p/<participant id>   participant record
    id/k/<key id hex>       key record {participant, suite, public_key, active}
    id/lei/<LEI>            participant id (uniqueness index)
    id/uscc/<USCC>          participant id (uniqueness index)
    cfg/governance          {admin_quorum} from genesis
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from . import ed25519
from .args import ID_PATTERN, Args, bad
from .codec import canonical_decode
from .core import Env, Participant, Store, TxContext
from .errors import ContractError, GenesisError
from .identifiers import CODES, validate
from .stored import Fields, StoredMap, StoredValue
from .vocabulary import LeiStatus, Role, values

__all__ = [
    "GOVERNANCE_KEY",
    "GOVERNED_ACTIONS",
    "GOVERNED_ROLES",
    "OPERATIONS",
    "ROLES",
    "SUITES",
    "KeyRecord",
    "ParticipantRecord",
    "active_admins",
    "check_sender",
    "ed25519_key_problem",
    "genesis_participant_writes",
    "governance_record",
    "key_fingerprint",
    "load_admin_quorum",
    "load_participant",
    "load_participant_record",
    "require_party",
    "require_role",
    "resolve_key",
]

ROLES: tuple[str, ...] = values(Role)
# Signature suites and their public-key lengths in bytes.
SUITES: dict[str, int] = {"ed25519-sha256": 32, "sm2-sm3": 65}
KEYS_MAX = 16
# Roles that give power over other participants: granting one at registration needs governance,
# or one admin could register puppet admins and outvote the others.
GOVERNED_ROLES: tuple[str, ...] = (Role.CONSORTIUM_ADMIN.value,)
GOVERNANCE_KEY = b"cfg/governance"
_HEX = re.compile(r"(?:[0-9a-f]{2})+")
_LEI_STATUSES = values(LeiStatus)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A registered signing key (``id/k/<key id hex>``)."""

    participant_id: str  # stored as "participant"
    suite: str
    public_key: bytes
    active: bool

    def to_stored(self) -> StoredMap:
        return {
            "participant": self.participant_id,
            "suite": self.suite,
            "public_key": self.public_key,
            "active": self.active,
        }

    @classmethod
    def from_stored(cls, value: object) -> KeyRecord:
        f = Fields(value, "key")
        record = cls(
            f.str_("participant"), f.str_("suite"), f.bytes_("public_key"), f.bool_("active")
        )
        f.done()
        return record


@dataclass(frozen=True, slots=True)
class ParticipantRecord:
    """A participant as stored (``id/p/<participant id>``); ``participant()`` is the view
    handlers authorise with."""

    id: str
    name: str
    roles: tuple[Role, ...]  # sorted, no repeats
    lei: str | None
    lei_status: LeiStatus | None
    uscc: str | None
    bic: str | None
    cnaps: str | None
    active: bool
    keys: tuple[str, ...]  # key ids (hex), sorted

    def has(self, role: Role) -> bool:
        return role in self.roles

    def participant(self) -> Participant:
        return Participant(
            id=self.id,
            name=self.name,
            roles=frozenset(role.value for role in self.roles),
            lei=self.lei,
            uscc=self.uscc,
            bic=self.bic,
            cnaps=self.cnaps,
            active=self.active,
            keys=self.keys,
        )

    def to_stored(self) -> StoredMap:
        return {
            "id": self.id,
            "name": self.name,
            "roles": [role.value for role in self.roles],
            "lei": self.lei,
            "lei_status": None if self.lei_status is None else self.lei_status.value,
            "uscc": self.uscc,
            "bic": self.bic,
            "cnaps": self.cnaps,
            "active": self.active,
            "keys": list(self.keys),
        }

    @classmethod
    def from_stored(cls, value: object) -> ParticipantRecord:
        f = Fields(value, "participant")
        record = cls(
            id=f.str_("id"),
            name=f.str_("name"),
            roles=f.enum_list("roles", Role),
            lei=f.opt_str("lei"),
            lei_status=f.opt_enum("lei_status", LeiStatus),
            uscc=f.opt_str("uscc"),
            bic=f.opt_str("bic"),
            cnaps=f.opt_str("cnaps"),
            active=f.bool_("active"),
            keys=f.str_list("keys"),
        )
        f.done()
        return record


def governance_record(admin_quorum: int) -> StoredMap:
    """The ``cfg/governance`` record."""
    return {"admin_quorum": admin_quorum}


def _stored_admin_quorum(value: object) -> int:
    f = Fields(value, "governance configuration")
    quorum = f.int_("admin_quorum")
    f.done()
    return quorum


# Each suite's key id is the first 16 bytes of its own hash of the key (SM3 on sm2-sm3 chains).
_KEY_ID_HASHES: dict[str, str] = {"ed25519-sha256": "sha256", "sm2-sm3": "sm3"}


def key_fingerprint(public_key: bytes, suite: str = "ed25519-sha256") -> bytes:
    return hashlib.new(_KEY_ID_HASHES[suite], public_key).digest()[:16]


def _p_key(pid: str) -> bytes:
    return b"id/p/" + pid.encode()


def _k_key(key_id: bytes) -> bytes:
    return b"id/k/" + key_id.hex().encode()


def ed25519_key_problem(public_key: bytes) -> str | None:
    """Why an Ed25519 public key must be refused, or None if it is acceptable (``ed25519``)."""
    problem = ed25519.key_problem(public_key)
    return None if problem is None else problem.value


# --- records ---------------------------------------------------------------------------------


# Every transaction reads its sender's participant and key records, and decoding is pure: the
# same stored bytes always give the same frozen record. Decoded records are therefore kept by
# their bytes (a bounded memo no replica can observe: a changed record is other bytes).
RECORD_MEMO_MAX = 8192


@functools.lru_cache(maxsize=RECORD_MEMO_MAX)
def _decoded_participant_record(raw: bytes) -> ParticipantRecord:
    return ParticipantRecord.from_stored(canonical_decode(raw))


@functools.lru_cache(maxsize=RECORD_MEMO_MAX)
def _decoded_participant(raw: bytes) -> Participant:
    return _decoded_participant_record(raw).participant()


@functools.lru_cache(maxsize=RECORD_MEMO_MAX)
def _decoded_key_record(raw: bytes) -> KeyRecord:
    return KeyRecord.from_stored(canonical_decode(raw))


def load_participant_record(store: Store, pid: str) -> ParticipantRecord | None:
    raw = store.get(_p_key(pid))
    return None if raw is None else _decoded_participant_record(bytes(raw))


def load_participant(store: Store, pid: str) -> Participant | None:
    raw = store.get(_p_key(pid))
    return None if raw is None else _decoded_participant(bytes(raw))


def require_party(store: Store, pid: str, field: str) -> Participant:
    """A counterparty named in an operation: registered, active, and carrying a USCC or LEI."""
    party = load_participant(store, pid)
    if party is None or not party.active:
        raise ContractError(
            "PARTY_NOT_REGISTERED", f"The {field} {pid} is not a registered, active participant."
        )
    if party.lei is None and party.uscc is None:
        raise ContractError(
            "PARTY_NOT_REGISTERED", f"The {field} {pid} has neither a USCC nor an LEI on record."
        )
    return party


def require_role(env: Env, *roles: str) -> None:
    if not any(env.sender.has(role) for role in roles):
        raise ContractError(
            "FORBIDDEN",
            f"{env.sender.id} needs the role {' or '.join(roles)} for this operation.",
        )


def resolve_key(store: Store, key_id: bytes) -> KeyRecord | None:
    raw = store.get(_k_key(key_id))
    return None if raw is None else _decoded_key_record(bytes(raw))


def check_sender(store: Store, ctx: TxContext) -> Participant:
    sender = load_participant(store, ctx.sender) if ID_PATTERN.fullmatch(ctx.sender) else None
    if sender is None:
        raise ContractError("UNKNOWN_SENDER", f"Sender {ctx.sender!r} is not a participant.")
    if not sender.active:
        raise ContractError("SENDER_INACTIVE", f"Participant {sender.id} has been deactivated.")
    key = resolve_key(store, ctx.signer_key_id)
    if key is None or key.participant_id != sender.id:
        raise ContractError(
            "SIGNER_NOT_SENDER", f"The signing key is not a key of participant {sender.id}."
        )
    if not key.active:
        raise ContractError("SIGNER_NOT_SENDER", "The signing key has been revoked.")
    return sender


# --- validation shared by genesis and transactions -------------------------------------------


class _Invalid(Exception):
    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message


def _public_key_bytes(value: object, field: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str) and _HEX.fullmatch(value):
        return bytes.fromhex(value)
    raise _Invalid("BAD_ARGUMENT", field, "must be bytes or lower-case hexadecimal text")


def _key_entry(entry: object, field: str) -> tuple[str, bytes]:
    if not isinstance(entry, Mapping):
        raise _Invalid("BAD_ARGUMENT", field, "must be a map with suite and public_key")
    unknown = sorted(set(entry) - {"suite", "public_key"})
    if unknown:
        raise _Invalid("BAD_ARGUMENT", f"{field}.{unknown[0]}", "is not a key field")
    suite = entry.get("suite")
    if not isinstance(suite, str) or suite not in SUITES:
        raise _Invalid("KEY_INVALID", f"{field}.suite", f"must be one of {', '.join(SUITES)}")
    public_key = _public_key_bytes(entry.get("public_key"), f"{field}.public_key")
    if len(public_key) != SUITES[suite]:
        raise _Invalid(
            "KEY_INVALID", f"{field}.public_key", f"must be {SUITES[suite]} bytes for {suite}"
        )
    if suite == "ed25519-sha256":
        problem = ed25519_key_problem(public_key)
        if problem:
            raise _Invalid("KEY_INVALID", f"{field}.public_key", f"is refused: {problem}")
    elif public_key[0] != 0x04:
        raise _Invalid("KEY_INVALID", f"{field}.public_key", "must be an uncompressed SM2 point")
    return suite, public_key


def _roles(value: object, field: str) -> tuple[Role, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise _Invalid("BAD_ARGUMENT", field, "must be a non-empty list of roles")
    roles: set[Role] = set()
    for role in value:
        if not isinstance(role, str) or role not in ROLES:
            raise _Invalid("ROLE_INVALID", field, f"contains {role!r}; roles: {', '.join(ROLES)}")
        if role in roles:
            raise _Invalid("ROLE_INVALID", field, f"lists {role} twice")
        roles.add(Role(role))
    return tuple(sorted(roles))


def _check_role_prerequisites(roles: tuple[Role, ...], lei: str | None, uscc: str | None) -> None:
    if Role.ENTERPRISE in roles and uscc is None:
        raise _Invalid("ROLE_INVALID", "uscc", "is required for the enterprise role")
    if Role.BANK in roles and lei is None:
        raise _Invalid("ROLE_INVALID", "lei", "is required for the bank role")


def _optional_code(entry: Mapping[str, object], name: str) -> str | None:
    value = entry.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        # An identifier gets its own code whatever is wrong with it (A), even its type.
        raise _Invalid(CODES[name], name, "must be text")
    result = validate(name, value, production=True)
    if not result.valid:
        assert result.code is not None
        raise _Invalid(result.code, name, f"is not valid: {result.rule}")
    return value


_PARTICIPANT_FIELDS = ("bic", "cnaps", "id", "keys", "lei", "lei_status", "name", "roles", "uscc")


def _participant_record(entry: object) -> tuple[ParticipantRecord, list[tuple[str, bytes]]]:
    """Validate one participant description; return its record and its keys."""
    if not isinstance(entry, Mapping):
        raise _Invalid("BAD_ARGUMENT", "participant", "must be a map")
    unknown = sorted(set(entry) - set(_PARTICIPANT_FIELDS))
    if unknown:
        raise _Invalid("BAD_ARGUMENT", unknown[0], "is not a participant field")
    pid = entry.get("id")
    if not isinstance(pid, str) or ID_PATTERN.fullmatch(pid) is None:
        raise _Invalid("BAD_ARGUMENT", "id", "must be 1-64 of A-Z a-z 0-9 _ . -")
    if validate("isin", pid).valid:
        # A holder id that is an ISIN names a product (nesting.py), never a participant.
        raise _Invalid("BAD_ARGUMENT", "id", "must not be an ISIN: an ISIN names an instrument")
    name = entry.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 256:
        raise _Invalid("BAD_ARGUMENT", "name", "must be text of 1 to 256 characters")
    roles = _roles(entry.get("roles"), "roles")
    lei = _optional_code(entry, "lei")
    uscc = _optional_code(entry, "uscc")
    bic = _optional_code(entry, "bic")
    cnaps = _optional_code(entry, "cnaps")
    lei_status = entry.get("lei_status")
    if lei_status is not None and (
        not isinstance(lei_status, str) or lei_status not in _LEI_STATUSES
    ):
        raise _Invalid("BAD_ARGUMENT", "lei_status", f"must be one of {', '.join(_LEI_STATUSES)}")
    _check_role_prerequisites(roles, lei, uscc)
    raw_keys = entry.get("keys")
    if not isinstance(raw_keys, list | tuple) or not 1 <= len(raw_keys) <= KEYS_MAX:
        raise _Invalid("BAD_ARGUMENT", "keys", f"must list 1 to {KEYS_MAX} keys")
    keys = [_key_entry(item, f"keys[{i}]") for i, item in enumerate(raw_keys)]
    key_ids = sorted(key_fingerprint(pk, suite).hex() for suite, pk in keys)
    if len(set(key_ids)) != len(key_ids):
        raise _Invalid("KEY_ALREADY_REGISTERED", "keys", "lists the same key twice")
    record = ParticipantRecord(
        id=pid,
        name=name,
        roles=roles,
        lei=lei,
        lei_status=None if lei_status is None else LeiStatus(lei_status),
        uscc=uscc,
        bic=bic,
        cnaps=cnaps,
        active=True,
        keys=tuple(key_ids),
    )
    return record, keys


def _key_record(pid: str, suite: str, public_key: bytes) -> StoredMap:
    return KeyRecord(pid, suite, public_key, True).to_stored()


def _uniqueness_problem(
    store: Store, record: ParticipantRecord, keys: list[tuple[str, bytes]]
) -> tuple[str, str] | None:
    if store.get(_p_key(record.id)) is not None:
        return "DUPLICATE_PARTICIPANT", f"Participant id {record.id} is already registered."
    if record.lei and store.get(b"id/lei/" + record.lei.encode()) is not None:
        return "DUPLICATE_LEI", f"LEI {record.lei} is already registered to a participant."
    if record.uscc and store.get(b"id/uscc/" + record.uscc.encode()) is not None:
        return "DUPLICATE_USCC", f"USCC {record.uscc} is already registered to a participant."
    for suite, public_key in keys:
        if resolve_key(store, key_fingerprint(public_key, suite)) is not None:
            return "KEY_ALREADY_REGISTERED", (
                f"Key {key_fingerprint(public_key, suite).hex()} is already registered."
            )
    return None


def _save(store: Store, record: ParticipantRecord) -> None:
    store.put(_p_key(record.id), record.to_stored())


def _write_participant(
    store: Store, record: ParticipantRecord, keys: list[tuple[str, bytes]]
) -> None:
    _save(store, record)
    if record.lei:
        store.put(b"id/lei/" + record.lei.encode(), record.id)
    if record.uscc:
        store.put(b"id/uscc/" + record.uscc.encode(), record.id)
    for suite, public_key in keys:
        store.put(
            _k_key(key_fingerprint(public_key, suite)), _key_record(record.id, suite, public_key)
        )


def genesis_participant_writes(store: Store, participants: object) -> int:
    """Validate genesis participants and write them into ``store``; raise ``GenesisError``.

    Returns the number of consortium admins, the upper bound of the admin quorum."""
    if not isinstance(participants, list) or not participants:
        raise GenesisError("genesis 'participants' must be a non-empty list")
    admins = 0
    for index, entry in enumerate(participants):
        where = f"participants[{index}]"
        try:
            record, keys = _participant_record(entry)
        except _Invalid as exc:
            raise GenesisError(f"{where}.{exc.field} {exc.message} ({exc.code})") from None
        problem = _uniqueness_problem(store, record, keys)
        if problem is not None:
            raise GenesisError(f"{where}: {problem[1]} ({problem[0]})")
        _write_participant(store, record, keys)
        admins += record.has(Role.CONSORTIUM_ADMIN)
    if admins == 0:
        raise GenesisError("genesis 'participants' must include at least one consortium_admin")
    return admins


# --- operations ------------------------------------------------------------------------------
#
# Each change exists once, as an effect function taking the target record. The direct operations
# decide who may ask for it; the governed actions (run by ``governance`` once a quorum approved)
# apply the same effect with the quorum as the authority.


def _scope(pid: str) -> str:
    return f"p/{pid}"


def load_admin_quorum(store: Store) -> int:
    record = store.get_obj(GOVERNANCE_KEY)
    assert record is not None, "genesis writes cfg/governance"
    return _stored_admin_quorum(record)


def active_admins(store: Store) -> list[str]:
    """Ids of the active participants holding the consortium_admin role, sorted."""
    records = (ParticipantRecord.from_stored(value) for _, value in store.scan_objs(b"id/p/"))
    return [r.id for r in records if r.active and r.has(Role.CONSORTIUM_ADMIN)]


def _governance_required(store: Store, change: str) -> ContractError:
    quorum = load_admin_quorum(store)
    return ContractError(
        "GOVERNANCE_REQUIRED",
        f"{change} needs the approval of {quorum} consortium admin(s): propose it with "
        "governance.propose ('ibledger governance propose').",
    )


def _record(store: Store, pid: str) -> ParticipantRecord:
    record = load_participant_record(store, pid)
    if record is None:
        raise ContractError("UNKNOWN_PARTICIPANT", f"Participant {pid} is not registered.")
    return record


def _own_target(env: Env, args: Args, change: str) -> ParticipantRecord:
    """The sender's own record: a participant changes its own keys, nobody else's."""
    pid: str = args.id_("participant", optional=True) or env.sender.id
    record = _record(env.store, pid)
    if pid != env.sender.id:
        if env.sender.has("consortium_admin"):
            raise _governance_required(env.store, f"{change} of {pid}")
        raise ContractError("FORBIDDEN", f"Only {pid} itself may change its keys.")
    return record


def _governed_target(env: Env, args: Args) -> ParticipantRecord:
    return _record(env.store, args.id_("participant"))


def _registration(env: Env, args: Args) -> tuple[ParticipantRecord, list[tuple[str, bytes]]]:
    raw: dict[str, object] = {}
    for name in _PARTICIPANT_FIELDS:
        if name == "keys":
            raw[name] = args.list_(name, max_items=KEYS_MAX)
        elif name == "roles":
            raw[name] = args.list_(name, max_items=len(ROLES))
        else:
            raw[name] = args.str_(name, optional=name not in ("id", "name"))
    args.done()
    try:
        record, keys = _participant_record({k: v for k, v in raw.items() if v is not None})
    except _Invalid as exc:
        raise ContractError(exc.code, f"Field '{exc.field}' {exc.message}.") from None
    for index, (suite, _) in enumerate(keys):
        _require_chain_suite(env, suite, f"keys[{index}].suite")
    problem = _uniqueness_problem(env.store, record, keys)
    if problem is not None:
        raise ContractError(*problem)
    return record, keys


def _require_chain_suite(env: Env, suite: str, field: str) -> None:
    # A key of another suite could never sign here (the verifier refuses it), so registering
    # one is a mistake worth refusing by name rather than a dead key on record.
    if suite != env.ctx.suite:
        raise ContractError(
            "SUITE_MISMATCH",
            f"Field '{field}' is {suite}, but this chain's genesis names {env.ctx.suite}.",
        )


def _register(env: Env, record: ParticipantRecord, keys: list[tuple[str, bytes]]) -> None:
    _write_participant(env.store, record, keys)
    stored = record.to_stored()
    env.store.emit(
        "identity.registered",
        {"participant": record.id, "roles": stored["roles"], "keys": stored["keys"]},
        [_scope(record.id)],
    )


def op_register(env: Env, args: Args) -> None:
    require_role(env, "consortium_admin")
    record, keys = _registration(env, args)
    governed = sorted(set(record.roles) & set(GOVERNED_ROLES))
    if governed:
        raise _governance_required(
            env.store, f"Registering {record.id} with the role {', '.join(governed)}"
        )
    _register(env, record, keys)


def gov_register(env: Env, args: Args) -> None:
    _register(env, *_registration(env, args))


def _add_key(env: Env, record: ParticipantRecord, args: Args) -> None:
    suite: str = args.str_("suite")
    public_key = args.any_("public_key")
    args.done()
    try:
        suite, public_key = _key_entry({"suite": suite, "public_key": public_key}, "key")
    except _Invalid as exc:
        raise ContractError(exc.code, f"Field '{exc.field}' {exc.message}.") from None
    _require_chain_suite(env, suite, "suite")
    key_id = key_fingerprint(public_key, suite)
    if resolve_key(env.store, key_id) is not None:
        raise ContractError("KEY_ALREADY_REGISTERED", f"Key {key_id.hex()} is already registered.")
    if len(record.keys) >= KEYS_MAX:
        raise ContractError("KEY_LIMIT", f"A participant may hold at most {KEYS_MAX} keys.")
    record = replace(record, keys=tuple(sorted([*record.keys, key_id.hex()])))
    _save(env.store, record)
    env.store.put(_k_key(key_id), _key_record(record.id, suite, public_key))
    env.store.emit(
        "identity.key_added",
        {"participant": record.id, "key_id": key_id.hex(), "suite": suite},
        [_scope(record.id)],
    )


def op_add_key(env: Env, args: Args) -> None:
    _add_key(env, _own_target(env, args, "Adding a key"), args)


def gov_add_key(env: Env, args: Args) -> None:
    _add_key(env, _governed_target(env, args), args)


def _key_by_hex(store: Store, key_hex: str) -> KeyRecord | None:
    stored = store.get_obj(b"id/k/" + key_hex.encode())
    return None if stored is None else KeyRecord.from_stored(stored)


def _revoke_key(env: Env, record: ParticipantRecord, args: Args) -> None:
    key_hex: str = args.str_("key_id", pattern=re.compile(r"[0-9a-f]{32}"), max_len=32)
    args.done()
    key_record = _key_by_hex(env.store, key_hex)
    if key_record is None or key_record.participant_id != record.id:
        raise ContractError("KEY_NOT_FOUND", f"Key {key_hex} is not a key of {record.id}.")
    if not key_record.active:
        raise ContractError("KEY_ALREADY_REVOKED", f"Key {key_hex} has already been revoked.")
    active = []
    for kid in record.keys:
        held = _key_by_hex(env.store, kid)
        assert held is not None, "a participant's key ids all have key records"
        if held.active:
            active.append(kid)
    if active == [key_hex]:
        raise ContractError(
            "KEY_LAST_ACTIVE", f"Key {key_hex} is the last active key of {record.id}."
        )
    env.store.put(b"id/k/" + key_hex.encode(), replace(key_record, active=False).to_stored())
    env.store.emit(
        "identity.key_revoked",
        {"participant": record.id, "key_id": key_hex},
        [_scope(record.id)],
    )


def op_revoke_key(env: Env, args: Args) -> None:
    _revoke_key(env, _own_target(env, args, "Revoking a key"), args)


def gov_revoke_key(env: Env, args: Args) -> None:
    _revoke_key(env, _governed_target(env, args), args)


def _ensure_admins_remain(env: Env, losing: str) -> None:
    """An admin may leave only while at least one, and at least the quorum, remain."""
    remaining = [pid for pid in active_admins(env.store) if pid != losing]
    if not remaining:
        raise ContractError(
            "LAST_ADMIN", f"{losing} is the last active consortium admin and must remain one."
        )
    quorum = load_admin_quorum(env.store)
    if len(remaining) < quorum:
        raise ContractError(
            "ADMIN_QUORUM_UNREACHABLE",
            f"Without {losing}, {len(remaining)} active consortium admin(s) would remain, fewer "
            f"than the admin quorum of {quorum}; no proposal could pass again.",
        )


def gov_update_roles(env: Env, args: Args) -> None:
    record = _governed_target(env, args)
    raw_roles = args.list_("roles", max_items=len(ROLES))
    args.done()
    try:
        roles = _roles(raw_roles, "roles")
        _check_role_prerequisites(roles, record.lei, record.uscc)
    except _Invalid as exc:
        raise ContractError(exc.code, f"Field '{exc.field}' {exc.message}.") from None
    admin = Role.CONSORTIUM_ADMIN
    if record.active and record.has(admin) and admin not in roles:
        _ensure_admins_remain(env, record.id)
    old: list[StoredValue] = [role.value for role in record.roles]
    record = replace(record, roles=roles)
    _save(env.store, record)
    env.store.emit(
        "identity.roles_updated",
        {"participant": record.id, "roles": [role.value for role in roles], "previous_roles": old},
        [_scope(record.id)],
    )


def gov_deactivate(env: Env, args: Args) -> None:
    record = _governed_target(env, args)
    args.done()
    if not record.active:
        raise ContractError("PARTICIPANT_INACTIVE", f"{record.id} is already deactivated.")
    if record.has(Role.CONSORTIUM_ADMIN):
        _ensure_admins_remain(env, record.id)
    _save(env.store, replace(record, active=False))
    env.store.emit("identity.deactivated", {"participant": record.id}, [_scope(record.id)])


def gov_reactivate(env: Env, args: Args) -> None:
    record = _governed_target(env, args)
    args.done()
    if record.active:
        raise ContractError("PARTICIPANT_ACTIVE", f"{record.id} is already active.")
    _save(env.store, replace(record, active=True))
    env.store.emit("identity.reactivated", {"participant": record.id}, [_scope(record.id)])


def _governed_only(change: str) -> Callable[[Env, Args], None]:
    """A direct operation that only names the governance route."""

    def refuse(env: Env, args: Args) -> None:
        require_role(env, "consortium_admin")
        pid: str = args.id_("participant")
        raise _governance_required(env.store, f"{change} {pid}")

    return refuse


def op_update_details(env: Env, args: Args) -> None:
    require_role(env, "consortium_admin")
    record = _governed_target(env, args)
    changed: list[str] = []
    name: str | None = args.str_("name", optional=True)
    if name is not None:
        record = replace(record, name=name)
        changed.append("name")
    codes: dict[str, str | None] = {}
    for field in ("bic", "cnaps"):
        value = args.str_(field, optional=True)
        if value is not None:
            try:
                codes[field] = _optional_code({field: value}, field)
            except _Invalid as exc:
                raise ContractError(exc.code, f"Field '{exc.field}' {exc.message}.") from None
            changed.append(field)
    if "bic" in codes:
        record = replace(record, bic=codes["bic"])
    if "cnaps" in codes:
        record = replace(record, cnaps=codes["cnaps"])
    status: str | None = args.str_("lei_status", optional=True, choices=_LEI_STATUSES)
    if status is not None:
        record = replace(record, lei_status=LeiStatus(status))
        changed.append("lei_status")
    args.done()
    if not changed:
        raise bad("name", "or another detail must be given")
    _save(env.store, record)
    env.store.emit(
        "identity.details_updated",
        {"participant": record.id, "fields": sorted(changed)},
        [_scope(record.id)],
    )


OPERATIONS: dict[str, Callable[[Env, Args], None]] = {
    "identity.register": op_register,
    "identity.add_key": op_add_key,
    "identity.revoke_key": op_revoke_key,
    "identity.update_roles": _governed_only("Changing the roles of"),
    "identity.update_details": op_update_details,
    "identity.deactivate": _governed_only("Deactivating"),
    "identity.reactivate": _governed_only("Reactivating"),
}

# What a governance proposal may do, once approved: the same effects, the quorum as authority.
GOVERNED_ACTIONS: dict[str, Callable[[Env, Args], None]] = {
    "identity.register": gov_register,
    "identity.add_key": gov_add_key,
    "identity.revoke_key": gov_revoke_key,
    "identity.update_roles": gov_update_roles,
    "identity.deactivate": gov_deactivate,
    "identity.reactivate": gov_reactivate,
}
