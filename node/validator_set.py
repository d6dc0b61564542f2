"""The ``validators`` section of a genesis document, read once for the node and for clients.

A node reads it to know its peers; a client reads it to check commit certificates offline. Both
must agree on every rule (who is a validator, under which key), so both call ``read_validators``
here. The module is client-safe: it imports only addresses and the crypto suites.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .addresses import HostPort, parse_host_port
from .addresses import describe_value as _show
from .crypto import CryptoError, CryptoSuite, get_suite

__all__ = [
    "NODE_ID_PATTERN",
    "NODE_ID_RULE",
    "VALIDATORS_MAX",
    "VALIDATOR_FIELDS",
    "GenesisFieldError",
    "ValidatorInfo",
    "read_suite",
    "read_validators",
]

# A node id must be usable as a DNS name in the certificate and in ssl_target_name_override:
# one DNS label (letters, digits, hyphens; no leading or trailing hyphen), at most 63 characters.
NODE_ID_PATTERN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
NODE_ID_RULE = "1-63 letters, digits or hyphens, not starting or ending with a hyphen"
VALIDATORS_MAX = 256
VALIDATOR_FIELDS = ("api_address", "id", "peer_address", "public_key")
_HEX = re.compile(r"[0-9a-f]*")


class GenesisFieldError(Exception):
    """A genesis field that breaks a rule: ``field`` is its path (``validators[2].id``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class ValidatorInfo:
    id: str
    public_key: bytes
    api_address: HostPort
    peer_address: HostPort


def read_suite(genesis: Mapping[str, Any]) -> CryptoSuite:
    """The chain's crypto suite (``crypto_suite``, required)."""
    if "crypto_suite" not in genesis:
        raise GenesisFieldError("crypto_suite", "is required")
    name = genesis["crypto_suite"]
    if not isinstance(name, str):
        raise GenesisFieldError("crypto_suite", f"must be a string, got {_show(name)}")
    try:
        return get_suite(name)
    except CryptoError as exc:
        raise GenesisFieldError("crypto_suite", exc.message) from None


def read_validators(value: Any, suite: CryptoSuite) -> tuple[ValidatorInfo, ...]:
    """Every validator with its id, public key of ``suite`` and addresses; ids, keys and
    addresses distinct. Raises ``GenesisFieldError`` naming the first field that is wrong."""
    if not isinstance(value, list) or not 1 <= len(value) <= VALIDATORS_MAX:
        raise GenesisFieldError("validators", f"must be a list of 1 to {VALIDATORS_MAX} validators")
    result: list[ValidatorInfo] = []
    ids: dict[str, str] = {}
    keys: dict[bytes, str] = {}
    addresses: dict[HostPort, str] = {}
    for index, entry in enumerate(value):
        where = f"validators[{index}]"
        if not isinstance(entry, dict):
            raise GenesisFieldError(where, f"must be an object with {', '.join(VALIDATOR_FIELDS)}")
        for key in sorted(entry):
            if key not in VALIDATOR_FIELDS:
                raise GenesisFieldError(
                    f"{where}.{key}",
                    f"is not a validator field (known: {', '.join(VALIDATOR_FIELDS)})",
                )
        for key in VALIDATOR_FIELDS:
            if key not in entry:
                raise GenesisFieldError(f"{where}.{key}", "is required")
        node_id = entry["id"]
        if not isinstance(node_id, str) or NODE_ID_PATTERN.fullmatch(node_id) is None:
            raise GenesisFieldError(
                f"{where}.id", f"must be a node id ({NODE_ID_RULE}), got {_show(node_id)}"
            )
        if node_id in ids:
            raise GenesisFieldError(f"{where}.id", f"{node_id!r} is already used by {ids[node_id]}")
        ids[node_id] = where
        public_key = _public_key(f"{where}.public_key", entry["public_key"], suite)
        if public_key in keys:
            raise GenesisFieldError(f"{where}.public_key", f"is the same key as {keys[public_key]}")
        keys[public_key] = where
        parsed: dict[str, HostPort] = {}
        for key in ("api_address", "peer_address"):
            try:
                address = parse_host_port(entry[key])
            except ValueError as exc:
                raise GenesisFieldError(f"{where}.{key}", str(exc)) from None
            if address in addresses:
                raise GenesisFieldError(
                    f"{where}.{key}", f"{address} is already used as {addresses[address]}"
                )
            addresses[address] = f"{where}.{key}"
            parsed[key] = address
        result.append(
            ValidatorInfo(node_id, public_key, parsed["api_address"], parsed["peer_address"])
        )
    return tuple(result)


def _public_key(where: str, value: Any, suite: CryptoSuite) -> bytes:
    size = suite.public_key_size
    if not isinstance(value, str) or len(value) != 2 * size or not _HEX.fullmatch(value):
        raise GenesisFieldError(
            where,
            f"must be {2 * size} lower-case hexadecimal characters (a {size}-byte "
            f"{suite.name} public key), got {_show(value)}",
        )
    public_key = bytes.fromhex(value)
    try:
        suite.check_public_key(public_key)
    except CryptoError as exc:
        raise GenesisFieldError(where, exc.message) from None
    return public_key
