"""Validator membership: the validator set by epoch, changed only by governance, in force from a
height that consensus fixes for every replica.

Theory of operation
-------------------
Genesis writes epoch 0, the genesis validators in force from height 0, and ``cfg/membership``
(the chain's signature suite and the consensus ``checkpoint_interval`` and
``watermark_window``, which a change needs to place its height). A chain whose genesis lacks
either section (a contract test's: a node requires both) has no membership, and a change is
refused there (``MEMBERSHIP_UNAVAILABLE``).

Three governed actions (proposals approved by M of N consortium admins, ``governance``) change
the set:

* ``membership.add_validator`` {validator, public_key, peer_address, api_address};
* ``membership.remove_validator`` {validator};
* ``membership.rotate_validator_key`` {validator, public_key}.

The approval that executes one, in a block at height h, schedules the next epoch: the whole new
set, in force from height E + 1, where E is the smallest multiple of ``checkpoint_interval`` at
or above h + ``watermark_window``. The old set orders blocks up to E and ends there
(``consensus.Replica.end_at``); the new set starts from the checkpoint at E
(``ReplicaConfig.base``). Why there: a replica accepts nothing above its stable checkpoint plus
the window, and one that has not yet executed h has its stable checkpoint below h, so no
correct replica of the old set can have prepared anything above E when it learns of the
change, and E is a checkpoint, which the new set can start from.

Rules:

* One change at a time: while a scheduled epoch is not yet in force (the height is below its
  E), another change is refused (``MEMBERSHIP_CHANGE_PENDING``), so each epoch is built on the
  one before and a node needs to know only the epochs up to its own height.
* A set holds at most ``VALIDATORS_MAX`` validators; a removal never leaves fewer than
  ``VALIDATORS_MIN`` (``MEMBERSHIP_TOO_SMALL``: below four a BFT set tolerates no fault).
* Ids, keys and addresses are distinct within a set (``VALIDATOR_EXISTS``, ``KEY_IN_USE``,
  ``ADDRESS_IN_USE``); removing or rotating an unknown validator is ``VALIDATOR_UNKNOWN``.
* A key that a validator of any epoch has signed with is never used again
  (``KEY_ALREADY_USED``), so signatures of an old epoch can never count for a new one whatever
  the signing domain.
* Event ``membership.scheduled`` (epoch, from_height, change, validator ids) in the history of
  ``membership``.

State keys::

    cfg/membership              {suite, checkpoint_interval, watermark_window}
    membership/e/<epoch:08d>    {epoch, from_height, scheduled_at, change, validators}
    membership/latest           the highest epoch number
    membership/k/<key hex>      the epoch that first used a validator key
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .args import Args, bad
from .core import Env, Store
from .errors import ContractError, GenesisError
from .identity import SUITES, ed25519_key_problem

__all__ = [
    "CONFIG_KEY",
    "EPOCH_PREFIX",
    "GOVERNED_ACTIONS",
    "LATEST_KEY",
    "VALIDATORS_MAX",
    "VALIDATORS_MIN",
    "Epoch",
    "MembershipConfig",
    "ValidatorEntry",
    "epoch_key",
    "genesis_membership_writes",
    "load_epoch",
    "load_latest_epoch",
    "schedule_height",
]

CONFIG_KEY = b"cfg/membership"
EPOCH_PREFIX = b"membership/e/"
LATEST_KEY = b"membership/latest"
KEY_PREFIX = b"membership/k/"
HISTORY_SCOPE = "membership"
VALIDATORS_MAX = 256
VALIDATORS_MIN = 4
# The node id rule of node/validator_set.py: one DNS label, so it can name a TLS certificate.
VALIDATOR_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_HEX = re.compile(r"(?:[0-9a-f]{2})+")


@dataclass(frozen=True, slots=True)
class MembershipConfig:
    suite: str
    checkpoint_interval: int
    watermark_window: int


@dataclass(frozen=True, slots=True)
class ValidatorEntry:
    id: str
    public_key: bytes
    peer_address: str
    api_address: str

    def to_stored(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "public_key": self.public_key,
            "peer_address": self.peer_address,
            "api_address": self.api_address,
        }


@dataclass(frozen=True, slots=True)
class Epoch:
    """A validator set and the height it is in force from."""

    number: int
    from_height: int
    validators: tuple[ValidatorEntry, ...]

    def validator(self, validator_id: str) -> ValidatorEntry | None:
        return next((v for v in self.validators if v.id == validator_id), None)


def epoch_key(number: int) -> bytes:
    return EPOCH_PREFIX + b"%08d" % number


def schedule_height(height: int, config: MembershipConfig) -> int:
    """E for a change executed at ``height``: the first checkpoint at or above h + window, the
    old set's last block; the new set orders from E + 1."""
    at_least = height + config.watermark_window
    interval = config.checkpoint_interval
    return -(-at_least // interval) * interval


# --- genesis -------------------------------------------------------------------------------------


def genesis_membership_writes(store: Store, genesis: Mapping[str, Any]) -> None:
    """Epoch 0 and ``cfg/membership`` from the genesis ``validators``, ``crypto_suite`` and
    ``consensus`` sections; nothing when genesis lacks validators or consensus."""
    if "validators" not in genesis or "consensus" not in genesis:
        return  # the node requires both; a contract test's genesis may name neither
    suite = genesis.get("crypto_suite", "ed25519-sha256")  # the node's default, as for clients
    if not isinstance(suite, str) or suite not in SUITES:
        raise GenesisError(f"crypto_suite must be one of {', '.join(SUITES)}, got {suite!r}")
    consensus = genesis.get("consensus")
    if not isinstance(consensus, Mapping):
        raise GenesisError("genesis 'consensus' must be a map (the membership needs its window)")
    numbers = {}
    for name in ("checkpoint_interval", "watermark_window"):
        value = consensus.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise GenesisError(f"consensus.{name} must be a positive integer, got {value!r}")
        numbers[name] = value
    config = MembershipConfig(suite, numbers["checkpoint_interval"], numbers["watermark_window"])
    entries = genesis["validators"]
    if not isinstance(entries, list) or not 1 <= len(entries) <= VALIDATORS_MAX:
        raise GenesisError(f"validators must be a list of 1 to {VALIDATORS_MAX} validators")
    validators = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise GenesisError(f"validators[{index}] must be a map")
        try:
            validators.append(
                ValidatorEntry(
                    _validator_id(entry.get("id")),
                    _public_key(entry.get("public_key"), suite),
                    _address(entry.get("peer_address")),
                    _address(entry.get("api_address")),
                )
            )
        except _BadValue as exc:
            raise GenesisError(f"validators[{index}]: {exc.why}") from None
    try:
        _check_distinct(validators)
    except ContractError as exc:
        raise GenesisError(f"validators: {exc.message}") from None
    store.put(
        CONFIG_KEY,
        {
            "suite": config.suite,
            "checkpoint_interval": config.checkpoint_interval,
            "watermark_window": config.watermark_window,
        },
    )
    _save_epoch(store, Epoch(0, 0, tuple(validators)), scheduled_at=0, change={"genesis": True})


# --- reading -------------------------------------------------------------------------------------


def load_config(store: Store) -> MembershipConfig | None:
    raw = store.get_obj(CONFIG_KEY)
    if raw is None:
        return None
    assert isinstance(raw, dict), "cfg/membership is a map"
    return MembershipConfig(
        str(raw["suite"]), int(raw["checkpoint_interval"]), int(raw["watermark_window"])
    )


def load_epoch(store: Store, number: int) -> Epoch | None:
    raw = store.get_obj(epoch_key(number))
    return None if raw is None else epoch_from_stored(raw)


def load_latest_epoch(store: Store) -> Epoch | None:
    latest = store.get_obj(LATEST_KEY)
    return None if latest is None else load_epoch(store, int(latest))  # type: ignore[call-overload]


def epoch_from_stored(raw: object) -> Epoch:
    """An ``Epoch`` from its stored record (written by this module, read back by the node)."""
    if not isinstance(raw, dict):
        raise ValueError("an epoch record is a map")
    validators = raw["validators"]
    if not isinstance(validators, list):
        raise ValueError("an epoch's validators are a list")
    return Epoch(
        int(raw["epoch"]),
        int(raw["from_height"]),
        tuple(
            ValidatorEntry(
                str(v["id"]), bytes(v["public_key"]), str(v["peer_address"]), str(v["api_address"])
            )
            for v in validators
        ),
    )


# --- governed actions ----------------------------------------------------------------------------


def gov_add_validator(env: Env, args: Args) -> None:
    config, current = _open_for_change(env)
    validator_id = _arg(args, "validator", _validator_id)
    public_key = _arg(args, "public_key", lambda v: _public_key(v, config.suite))
    peer_address = _arg(args, "peer_address", _address)
    api_address = _arg(args, "api_address", _address)
    args.done()
    if current.validator(validator_id) is not None:
        raise ContractError("VALIDATOR_EXISTS", f"Validator {validator_id} is already a member.")
    if len(current.validators) >= VALIDATORS_MAX:
        raise ContractError(
            "MEMBERSHIP_TOO_LARGE", f"A validator set holds at most {VALIDATORS_MAX} validators."
        )
    added = ValidatorEntry(validator_id, public_key, peer_address, api_address)
    _schedule(env, config, current, (*current.validators, added), {"add": validator_id})


def gov_remove_validator(env: Env, args: Args) -> None:
    config, current = _open_for_change(env)
    validator_id = _arg(args, "validator", _validator_id)
    args.done()
    _member(current, validator_id)
    if len(current.validators) <= VALIDATORS_MIN:
        raise ContractError(
            "MEMBERSHIP_TOO_SMALL",
            f"Removing {validator_id} would leave {len(current.validators) - 1} validators; a set "
            f"keeps at least {VALIDATORS_MIN} (fewer tolerate no faulty validator).",
        )
    remaining = tuple(v for v in current.validators if v.id != validator_id)
    _schedule(env, config, current, remaining, {"remove": validator_id})


def gov_rotate_validator_key(env: Env, args: Args) -> None:
    config, current = _open_for_change(env)
    validator_id = _arg(args, "validator", _validator_id)
    public_key = _arg(args, "public_key", lambda v: _public_key(v, config.suite))
    args.done()
    old = _member(current, validator_id)
    rotated = tuple(
        ValidatorEntry(v.id, public_key, v.peer_address, v.api_address) if v is old else v
        for v in current.validators
    )
    _schedule(env, config, current, rotated, {"rotate_key": validator_id})


GOVERNED_ACTIONS = {
    "membership.add_validator": gov_add_validator,
    "membership.remove_validator": gov_remove_validator,
    "membership.rotate_validator_key": gov_rotate_validator_key,
}


def _open_for_change(env: Env) -> tuple[MembershipConfig, Epoch]:
    config = load_config(env.store)
    current = load_latest_epoch(env.store)
    if config is None or current is None:
        raise ContractError(
            "MEMBERSHIP_UNAVAILABLE", "This chain's genesis names no validators to change."
        )
    if current.from_height > env.ctx.height:
        raise ContractError(
            "MEMBERSHIP_CHANGE_PENDING",
            f"Epoch {current.number} takes over at height {current.from_height}; the next change "
            "can be made from then on.",
        )
    return config, current


def _member(current: Epoch, validator_id: str) -> ValidatorEntry:
    entry = current.validator(validator_id)
    if entry is None:
        raise ContractError(
            "VALIDATOR_UNKNOWN", f"{validator_id} is not a validator of epoch {current.number}."
        )
    return entry


def _schedule(
    env: Env,
    config: MembershipConfig,
    current: Epoch,
    validators: Sequence[ValidatorEntry],
    change: dict[str, Any],
) -> None:
    _check_distinct(validators)
    previous_keys = {v.public_key for v in current.validators}
    for entry in validators:
        if entry.public_key not in previous_keys and env.store.get(_key_key(entry.public_key)):
            raise ContractError(
                "KEY_ALREADY_USED",
                f"The key for {entry.id} was a validator key before; a validator key is used "
                "for one stretch of membership only.",
            )
    from_height = schedule_height(env.ctx.height, config) + 1
    epoch = Epoch(current.number + 1, from_height, tuple(validators))
    _save_epoch(env.store, epoch, scheduled_at=env.ctx.height, change=change)
    env.store.emit(
        "membership.scheduled",
        {
            "epoch": epoch.number,
            "from_height": epoch.from_height,
            "change": change,
            "validators": [v.id for v in epoch.validators],
        },
        [HISTORY_SCOPE],
    )


def _save_epoch(store: Store, epoch: Epoch, *, scheduled_at: int, change: dict[str, Any]) -> None:
    store.put(
        epoch_key(epoch.number),
        {
            "epoch": epoch.number,
            "from_height": epoch.from_height,
            "scheduled_at": scheduled_at,
            "change": change,
            "validators": [v.to_stored() for v in epoch.validators],
        },
    )
    store.put(LATEST_KEY, epoch.number)
    for entry in epoch.validators:
        if store.get(_key_key(entry.public_key)) is None:
            store.put(_key_key(entry.public_key), epoch.number)


def _key_key(public_key: bytes) -> bytes:
    return KEY_PREFIX + public_key.hex().encode()


# --- validation ----------------------------------------------------------------------------------


class _BadValue(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _arg(args: Args, name: str, check: Any) -> Any:
    try:
        return check(args.any_(name))
    except _BadValue as exc:
        raise bad(name, exc.why) from None


def _validator_id(value: object) -> str:
    if not isinstance(value, str) or VALIDATOR_ID.fullmatch(value) is None:
        raise _BadValue(
            "must be a validator id (1-63 letters, digits or hyphens, not starting or ending "
            "with a hyphen)"
        )
    return value


def _public_key(value: object, suite: str) -> bytes:
    size = SUITES[suite]
    if isinstance(value, str) and _HEX.fullmatch(value):
        value = bytes.fromhex(value)
    if not isinstance(value, bytes) or len(value) != size:
        raise _BadValue(f"must be a {size}-byte {suite} public key (lower-case hexadecimal)")
    if suite == "ed25519-sha256":
        problem = ed25519_key_problem(value)
        if problem:
            raise _BadValue(f"is refused: {problem}")
    elif value[0] != 0x04:
        raise _BadValue("must be an uncompressed SM2 point")
    return value


def _address(value: object) -> str:
    """``host:port`` as node/addresses.py reads it: IPv4, a host name or ``[IPv6]``."""
    match = (
        re.fullmatch(r"(\[[^\]]*\]|[^:\[\]]*):([0-9]{1,5})", value)
        if isinstance(value, str)
        else None
    )
    if match is None or not 1 <= int(match.group(2)) <= 65535:
        raise _BadValue("must be host:port with a port from 1 to 65535, e.g. 10.0.0.5:7100")
    host = match.group(1)
    try:
        if host.startswith("["):
            ipaddress.IPv6Address(host[1:-1])
        elif re.fullmatch(r"[0-9.]+", host):
            ipaddress.IPv4Address(host)
        elif (
            not host
            or len(host) > 253
            or not all(_HOST_LABEL.fullmatch(label) for label in host.split("."))
        ):
            raise ValueError(host)
    except ValueError:
        raise _BadValue(f"has no valid host: {host!r}") from None
    return str(value)


def _check_distinct(validators: Sequence[ValidatorEntry]) -> None:
    ids: dict[str, str] = {}
    keys: dict[bytes, str] = {}
    addresses: dict[str, str] = {}
    for entry in validators:
        if entry.id in ids:
            raise ContractError("VALIDATOR_EXISTS", f"Validator {entry.id} is listed twice.")
        ids[entry.id] = entry.id
        if entry.public_key in keys:
            raise ContractError(
                "KEY_IN_USE", f"{entry.id}'s key is already used by {keys[entry.public_key]}."
            )
        keys[entry.public_key] = entry.id
        for address in (entry.peer_address, entry.api_address):
            if address in addresses:
                raise ContractError(
                    "ADDRESS_IN_USE",
                    f"{entry.id}'s address {address} is already used by {addresses[address]}.",
                )
            addresses[address] = entry.id
