"""The network manifest, ``network.json``: the one reader, for client and operator commands alike.

``ibledger network init`` writes the manifest beside the genesis file; it names the chain, the
genesis file, the consortium CA, every node (its id, API, peer and metrics addresses, directory
and node.toml) and the local identities (participant id, key file, roles). Client commands find
the nodes and sign with its identities; ``network up/down/status`` find the nodes' files. Nodes
never read it: a node knows only its node.toml and the genesis.

Every problem raises ``ManifestError`` (a ``ClientError``) whose message names the file, the
field and the reason, ``network.json: nodes[1].api: must be host:port, ...``; fields the reader
does not use are ignored, so a newer manifest still reads. Paths in the manifest are relative to
its directory and come back absolute.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ibledger.node.addresses import HostPort, describe_value, parse_host_port

from .errors import ClientError

__all__ = [
    "MANIFEST_FILE",
    "Manifest",
    "ManifestError",
    "ManifestIdentity",
    "ManifestNode",
    "load_manifest",
    "read_genesis",
]

MANIFEST_FILE = "network.json"
T = TypeVar("T")


class ManifestError(ClientError):
    """An unusable manifest (code ``MANIFEST_INVALID``; ``NO_NETWORK`` when there is none),
    an unknown identity (``UNKNOWN_IDENTITY``) or an unreadable genesis (``GENESIS_INVALID``)."""

    def __init__(self, code: str, path: Path, field: str | None, message: str) -> None:
        where = f"{path}: {field}: " if field else f"{path}: "
        super().__init__(code, where + message)
        self.path = path
        self.field = field


@dataclass(frozen=True, slots=True)
class ManifestNode:
    id: str
    api: HostPort
    peer: HostPort
    metrics: HostPort
    dir: Path
    config: Path


@dataclass(frozen=True, slots=True)
class ManifestIdentity:
    name: str
    participant: str
    key_file: Path
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Manifest:
    """``network.json`` read and checked; every path absolute."""

    directory: Path
    chain_id: str
    genesis_file: Path
    nodes: tuple[ManifestNode, ...]
    identities: dict[str, ManifestIdentity] = field(compare=False)
    ca_cert: Path | None = None  # the consortium CA that node API certificates chain to
    keys_encrypted: bool = False  # written by ``network init --encrypt``: refuse plaintext keys

    @property
    def path(self) -> Path:
        return self.directory / MANIFEST_FILE

    def node(self, node_id: str) -> ManifestNode | None:
        for node in self.nodes:
            if node.id == node_id:
                return node
        return None

    def identity(self, name: str) -> ManifestIdentity:
        """The identity called ``name`` (exact, else the one case-insensitive match)."""
        if name in self.identities:
            return self.identities[name]
        folded = [entry for key, entry in self.identities.items() if key.lower() == name.lower()]
        if len(folded) == 1:
            return folded[0]
        known = ", ".join(sorted(self.identities)) or "none"
        raise ManifestError(
            "UNKNOWN_IDENTITY", self.path, "identities", f"no identity {name!r} (known: {known})"
        )

    def genesis(self) -> dict[str, Any]:
        """The genesis file the manifest names, parsed (not validated: nodes do that)."""
        return read_genesis(self.genesis_file)


def read_genesis(path: Path | str) -> dict[str, Any]:
    """A genesis file as a JSON object; raises ManifestError ``GENESIS_INVALID``."""
    path = Path(path)
    data = _read_json(path, "GENESIS_INVALID")
    if not isinstance(data, dict):
        raise ManifestError("GENESIS_INVALID", path, None, "is not a JSON object")
    return data


def load_manifest(directory: Path | str) -> Manifest:
    """Read ``network.json`` from a network directory. Raises ManifestError."""
    directory = Path(directory).resolve()
    path = directory / MANIFEST_FILE
    if not path.exists():
        raise ManifestError(
            "NO_NETWORK",
            path,
            None,
            "does not exist: create a network with 'ibledger network init', "
            "or pass --network DIR or --node HOST:PORT",
        )
    require = _requirer(path)
    raw = require("(top level)", _read_json(path, "MANIFEST_INVALID"), dict, "a JSON object")
    for key in ("chain_id", "genesis", "nodes", "identities"):
        if key not in raw:
            raise ManifestError("MANIFEST_INVALID", path, key, "is required")
    chain_id = require("chain_id", raw["chain_id"], str, "a string")
    if not chain_id:
        raise ManifestError("MANIFEST_INVALID", path, "chain_id", "must not be empty")
    genesis = directory / require("genesis", raw["genesis"], str, "a relative path")
    nodes_raw = require("nodes", raw["nodes"], list, "a list")
    if not nodes_raw:
        raise ManifestError("MANIFEST_INVALID", path, "nodes", "must list at least one node")
    nodes: list[ManifestNode] = []
    for index, entry in enumerate(nodes_raw):
        where = f"nodes[{index}]"
        entry = require(where, entry, dict, "an object")
        values: dict[str, Any] = {}
        for key in ("id", "api", "peer", "metrics", "dir", "config"):
            if key not in entry:
                raise ManifestError("MANIFEST_INVALID", path, f"{where}.{key}", "is required")
            values[key] = require(f"{where}.{key}", entry[key], str, "a string")
        for key in ("api", "peer", "metrics"):
            try:
                values[key] = parse_host_port(values[key])
            except ValueError as exc:
                raise ManifestError("MANIFEST_INVALID", path, f"{where}.{key}", str(exc)) from None
        if any(node.id == values["id"] for node in nodes):
            raise ManifestError(
                "MANIFEST_INVALID", path, f"{where}.id", f"{values['id']!r} is listed twice"
            )
        values["dir"] = directory / values["dir"]
        values["config"] = directory / values["config"]
        nodes.append(ManifestNode(**values))
    identities_raw = require("identities", raw["identities"], dict, "an object")
    identities: dict[str, ManifestIdentity] = {}
    for name, entry in identities_raw.items():
        where = f"identities.{name}"
        entry = require(where, entry, dict, "an object")
        for key in ("participant", "key_file", "roles"):
            if key not in entry:
                raise ManifestError("MANIFEST_INVALID", path, f"{where}.{key}", "is required")
        participant = require(f"{where}.participant", entry["participant"], str, "a string")
        key_file = require(f"{where}.key_file", entry["key_file"], str, "a relative path")
        roles = require(f"{where}.roles", entry["roles"], list, "a list of role names")
        if not all(isinstance(role, str) for role in roles):
            raise ManifestError(
                "MANIFEST_INVALID", path, f"{where}.roles", "must list role names as strings"
            )
        identities[name] = ManifestIdentity(name, participant, directory / key_file, tuple(roles))
    ca_cert = None
    if raw.get("ca_cert") is not None:
        ca_cert = directory / require("ca_cert", raw["ca_cert"], str, "a relative path")
    keys_encrypted = raw.get("keys_encrypted", False)
    if not isinstance(keys_encrypted, bool):
        raise ManifestError("MANIFEST_INVALID", path, "keys_encrypted", "must be true or false")
    return Manifest(directory, chain_id, genesis, tuple(nodes), identities, ca_cert, keys_encrypted)


def _requirer(path: Path) -> Callable[[str, Any, type[T], str], T]:
    def require(where: str, value: Any, kind: type[T], what: str) -> T:
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ManifestError(
                "MANIFEST_INVALID", path, where, f"must be {what}, got {describe_value(value)}"
            )
        return value

    return require


def _read_json(path: Path, code: str) -> Any:
    """Strict JSON: a key twice in one object, or NaN/Infinity, is an error, not a guess."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ManifestError(code, path, key, "appears twice in the same JSON object")
            result[key] = value
        return result

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(code, path, None, "does not exist") from None
    except OSError as exc:
        raise ManifestError(code, path, None, f"cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ManifestError(code, path, None, "is not valid JSON: not UTF-8 text") from None
    try:
        return json.loads(text, object_pairs_hook=unique, parse_constant=constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise ManifestError(code, path, None, f"is not valid JSON: {exc.msg} at {where}") from None
    except ValueError as exc:
        raise ManifestError(code, path, None, f"is not valid JSON: {exc}") from None
