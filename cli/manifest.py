"""The network manifest, ``network.json``: the one reader, for client and operator commands alike.

``ibledger network init`` writes the manifest beside the genesis file; it names the chain, the
genesis file, the consortium CA, every node (its id, API, peer and metrics addresses, directory
and node.toml) and the local identities (participant id, key file, roles).
``ibledger network add-observer`` adds an entry to ``observers`` (id, API and metrics
addresses, directory, node.toml: an observer has no peer address). ``nodes`` are the validators
only, so client commands, which submit transactions, never pick an observer by themselves;
``network up/down/status/logs`` manage ``Manifest.processes``, validators and observers alike.
Client commands find the nodes and sign with its identities. Nodes never read it: a node knows
only its node.toml and the genesis.

Every problem raises ``ManifestError`` (a ``ClientError``) whose message names the file, the
field and the reason, ``network.json: nodes[1].api: must be host:port, ...``. The file's shape is
declared once as pydantic models (``_ManifestFile``: strict types, the messages written by
``node.validation``); fields the reader does not use are ignored, so a newer manifest still
reads. Paths in the manifest are relative to
its directory and come back absolute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PlainValidator,
    ValidationError,
    ValidationInfo,
)

from ibledger.node.addresses import HostPort, describe_value, parse_host_port
from ibledger.node.jsonfile import JsonFileError, read_json_object
from ibledger.node.jsonfile import read_genesis as read_genesis_document
from ibledger.node.validation import first_error, json_where

from .errors import ClientError

__all__ = [
    "MANIFEST_FILE",
    "Manifest",
    "ManifestError",
    "ManifestIdentity",
    "ManifestNode",
    "ManifestObserver",
    "ManifestProcess",
    "load_manifest",
    "read_genesis",
]

MANIFEST_FILE = "network.json"


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

    @property
    def role(self) -> str:
        return "validator"


@dataclass(frozen=True, slots=True)
class ManifestObserver:
    """A non-voting node that follows the validators (see ``node.observer``)."""

    id: str
    api: HostPort
    metrics: HostPort
    dir: Path
    config: Path

    @property
    def role(self) -> str:
        return "observer"


ManifestProcess = ManifestNode | ManifestObserver


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
    observers: tuple[ManifestObserver, ...] = ()

    @property
    def path(self) -> Path:
        return self.directory / MANIFEST_FILE

    @property
    def processes(self) -> tuple[ManifestProcess, ...]:
        """Every node process of the network: the validators, then the observers."""
        return (*self.nodes, *self.observers)

    def observer(self, observer_id: str) -> ManifestObserver | None:
        for observer in self.observers:
            if observer.id == observer_id:
                return observer
        return None

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
    try:
        return read_genesis_document(path)
    except JsonFileError as exc:
        raise ManifestError("GENESIS_INVALID", path, exc.field, exc.message) from None


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {describe_value(value)}")
    return value


def _non_empty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _path(value: Any, info: ValidationInfo) -> Path:
    if not isinstance(value, str):
        raise ValueError(f"must be a relative path, got {describe_value(value)}")
    directory: Path = info.context["directory"] if info.context else Path.cwd()
    return directory / value


def _optional_path(value: Any, info: ValidationInfo) -> Path | None:
    return None if value is None else _path(value, info)


_Text = Annotated[str, PlainValidator(_string)]
_Path = Annotated[Path, PlainValidator(_path)]
_Address = Annotated[HostPort, PlainValidator(parse_host_port)]
# Fields the reader does not use are ignored, so a newer manifest still reads.
_LENIENT = ConfigDict(strict=True, extra="ignore", frozen=True)


class _NodeEntry(BaseModel):
    model_config = _LENIENT
    id: _Text
    api: _Address
    peer: _Address
    metrics: _Address
    dir: _Path
    config: _Path


class _ObserverEntry(BaseModel):
    model_config = _LENIENT
    id: _Text
    api: _Address
    metrics: _Address
    dir: _Path
    config: _Path


class _IdentityEntry(BaseModel):
    model_config = _LENIENT
    participant: _Text
    key_file: _Path
    roles: list[_Text]


class _ManifestFile(BaseModel):
    """What network.json must hold; paths come back resolved against its directory."""

    model_config = _LENIENT
    chain_id: Annotated[str, PlainValidator(_string), AfterValidator(_non_empty)]
    genesis: _Path
    nodes: list[_NodeEntry]
    identities: dict[str, _IdentityEntry]
    ca_cert: Annotated[Path | None, PlainValidator(_optional_path)] = None
    keys_encrypted: bool = False  # written by ``network init --encrypt``
    observers: list[_ObserverEntry] = []  # written by ``network add-observer``


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
    raw = _read_json(path, "MANIFEST_INVALID")
    try:
        manifest = _ManifestFile.model_validate(raw, context={"directory": directory})
    except ValidationError as exc:
        field, message = first_error(_ManifestFile, exc, json_where, "object")
        raise ManifestError("MANIFEST_INVALID", path, field, message) from None
    if not manifest.nodes:
        raise ManifestError("MANIFEST_INVALID", path, "nodes", "must list at least one node")
    seen: set[str] = set()
    listed = [("nodes", index, entry.id) for index, entry in enumerate(manifest.nodes)]
    listed += [("observers", index, entry.id) for index, entry in enumerate(manifest.observers)]
    for where, index, node_id in listed:
        if node_id in seen:
            raise ManifestError(
                "MANIFEST_INVALID", path, f"{where}[{index}].id", f"{node_id!r} is listed twice"
            )
        seen.add(node_id)
    nodes = tuple(
        ManifestNode(entry.id, entry.api, entry.peer, entry.metrics, entry.dir, entry.config)
        for entry in manifest.nodes
    )
    observers = tuple(
        ManifestObserver(entry.id, entry.api, entry.metrics, entry.dir, entry.config)
        for entry in manifest.observers
    )
    identities = {
        name: ManifestIdentity(name, entry.participant, entry.key_file, tuple(entry.roles))
        for name, entry in manifest.identities.items()
    }
    return Manifest(
        directory,
        manifest.chain_id,
        manifest.genesis,
        nodes,
        identities,
        manifest.ca_cert,
        manifest.keys_encrypted,
        observers,
    )


def _read_json(path: Path, code: str) -> dict[str, Any]:
    """Strict JSON (``node.jsonfile``): a key twice in one object, or NaN/Infinity, is an error,
    not a guess."""
    try:
        return read_json_object(path)
    except JsonFileError as exc:
        raise ManifestError(code, path, exc.field, exc.message) from None
