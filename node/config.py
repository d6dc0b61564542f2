"""Node configuration, genesis and network manifest: typed loaders that validate everything.

Theory of operation
-------------------
A node reads two files at start-up (docs/design.md section 6):

* ``node.toml`` — this node's id, key paths, data directory, listen addresses and limits.
  Relative paths resolve against the directory holding ``node.toml``.  The optional ``[audit]``
  section bounds the audit log kept in ``<data_dir>/audit`` (see ``audit.py``):
  ``segment_bytes_max``, ``segments_max``, ``aggregate_interval_ms``, ``head_interval_ms``.
* the genesis file (JSON), shared byte for byte by every node: chain id, crypto suite, genesis
  time, validators (id, Ed25519 public key, API and peer addresses), consensus parameters, and
  the contract sections (``participants``, ``governance``, ``calendar``, ``parameters``), which
  are validated by ``contracts.runtime.genesis_writes``. ``Genesis.raw`` keeps the parsed
  mapping unchanged: the ledger hashes it and the contracts read it.

``[node] role`` is ``validator`` (the default) or ``observer``. An observer (``ObserverConfig``,
see ``observer.py``) is not in the genesis validator list and holds no validator key; its
``[peer]`` section names only its TLS files (it dials validators to fetch certified blocks and
listens for no peer), its certificate carries the observer role, and its optional
``[observer]`` section names the validators it follows and how often it polls them. Settings an
observer has no use for (``[mempool]``, ``[audit]``, peer listening and queue settings, a
validator key) are errors, not silently ignored.

The network manifest (``network.json``) is a client's file, read by ``cli.manifest`` only.

Every problem raises ``ConfigError(path, field, message)``, whose text names the file, the place
in it and the reason: ``node.toml: [peer] listen: port 70000 is out of range 1-65535`` or
``genesis.json: validators[2].public_key: must be 64 hexadecimal characters``. Loaders check
types (a bool is not an int, a float is not an int), ranges, host:port syntax, that referenced
files exist, unknown keys (a typo is an error, not a silently ignored setting), duplicate JSON
keys (the genesis is hashed, so what a reader sees must be unambiguous), and the cross-file
facts: this node is a genesis validator, its validator key is the one genesis lists, its TLS
certificate is issued by the consortium CA for this node id.

``node.toml``'s sections and settings (types, bounds, defaults) are declared once, as pydantic
models in ``schema.py``, and ``validation.py`` turns pydantic's errors into the messages above.
The genesis is read by ``jsonfile.read_genesis``; its consensus and admission parameters are
schema models too, while its top level and validators are still checked here by hand (their
checks depend on the crypto suite the genesis names).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ibledger.contracts.errors import GenesisError
from ibledger.contracts.runtime import genesis_writes

from .addresses import HostPort, parse_host_port
from .addresses import describe_value as _show
from .audit import (
    AuditSettings,
)
from .crypto import CryptoError, CryptoSuite, KeyPair, load_private_key
from .jsonfile import JsonFileError, read_genesis
from .keyfile import key_file_is_encrypted, private_key_to_pem, read_passphrase_file
from .pki import (
    OBSERVER_ROLE,
    VALIDATOR_ROLE,
    PkiError,
    certificate_role,
    public_keys_match,
    read_certificate,
    read_private_key,
    verify_node_certificate,
)
from .schema import (
    API_ANONYMOUS_STREAMS_DEFAULT,
    API_ANONYMOUS_STREAMS_PER_ADDRESS_DEFAULT,
    API_CONCURRENT_RPCS_DEFAULT,
    API_MESSAGE_BYTES_DEFAULT,
    API_STREAMS_PER_VIEWER_DEFAULT,
    LOG_BACKUPS_DEFAULT,
    LOG_LEVEL_DEFAULT,
    LOG_LEVELS,
    LOG_MAX_BYTES_DEFAULT,
    MEMPOOL_SIZE_DEFAULT,
    PEER_CONSENSUS_QUEUE_BYTES_DEFAULT,
    PEER_INBOUND_BYTES_DEFAULT,
    PEER_MESSAGE_BYTES_DEFAULT,
    PEER_OFFLINE_QUEUE_BYTES_DEFAULT,
    PEER_OUTBOUND_QUEUE_DEFAULT,
    PEER_RELAY_QUEUE_BYTES_DEFAULT,
    AdmissionSection,
    ConsensusSection,
    NodeToml,
    ObserverSection,
    first_error,
    section_error,
)
from .validator_set import (
    GenesisFieldError,
    ValidatorInfo,
    read_suite,
    read_validators,
)

_Model = TypeVar("_Model", bound=BaseModel)

__all__ = [
    "LOG_LEVELS",
    "ApiConfig",
    "ConfigError",
    "ConsensusParams",
    "Genesis",
    "HostPort",
    "LogConfig",
    "MempoolConfig",
    "MetricsConfig",
    "NodeConfig",
    "ObserverConfig",
    "ObserverPeerConfig",
    "ObserverSettings",
    "PeerConfig",
    "ValidatorInfo",
    "format_toml",
    "load_config",
    "load_genesis",
    "load_node_config",
    "parse_host_port",
]

CHAIN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
GENESIS_FIELDS = (
    "admission",
    "calendar",
    "chain_id",
    "consensus",
    "crypto_suite",
    "genesis_time_ms",
    "governance",
    "parameters",
    "participants",
    "validators",
)


class ConfigError(Exception):
    """An unusable configuration file; ``str()`` says which file, which field and why."""

    def __init__(self, path: Path | str, field: str | None, message: str) -> None:
        self.path = Path(path)
        self.field = field
        self.message = message
        where = f"{path}: {field}: " if field else f"{path}: "
        super().__init__(where + message)


# --- values --------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- node.toml -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiConfig:
    listen: HostPort
    max_message_bytes: int = API_MESSAGE_BYTES_DEFAULT
    max_concurrent_rpcs: int = API_CONCURRENT_RPCS_DEFAULT
    tls: bool = True  # serve the node's CA-issued certificate (the [peer] TLS files)
    streams_per_viewer: int = API_STREAMS_PER_VIEWER_DEFAULT
    anonymous_streams_per_address: int = API_ANONYMOUS_STREAMS_PER_ADDRESS_DEFAULT
    anonymous_streams_max: int = API_ANONYMOUS_STREAMS_DEFAULT


@dataclass(frozen=True, slots=True)
class PeerConfig:
    listen: HostPort
    tls_cert: Path
    tls_key: Path
    ca_cert: Path
    max_message_bytes: int = PEER_MESSAGE_BYTES_DEFAULT
    outbound_queue_max: int = PEER_OUTBOUND_QUEUE_DEFAULT
    consensus_queue_bytes_max: int = PEER_CONSENSUS_QUEUE_BYTES_DEFAULT
    relay_queue_bytes_max: int = PEER_RELAY_QUEUE_BYTES_DEFAULT
    offline_queue_bytes_max: int = PEER_OFFLINE_QUEUE_BYTES_DEFAULT
    inbound_bytes_max: int = PEER_INBOUND_BYTES_DEFAULT


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    listen: HostPort


@dataclass(frozen=True, slots=True)
class MempoolConfig:
    size_max: int = MEMPOOL_SIZE_DEFAULT


@dataclass(frozen=True, slots=True)
class LogConfig:
    """``[log]``: level; ``file`` (relative to node.toml; standard error when absent), rotated
    once it reaches ``max_bytes``, keeping ``backups`` older files."""

    level: str = LOG_LEVEL_DEFAULT
    file: Path | None = None
    max_bytes: int = LOG_MAX_BYTES_DEFAULT
    backups: int = LOG_BACKUPS_DEFAULT


@dataclass(frozen=True, slots=True)
class KeysConfig:
    """``[keys]``: whether this node's private keys must be encrypted, and where the passphrase
    may be read from when no other source gives one."""

    encrypted: bool = False
    passphrase_file: Path | None = None


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """A validated ``node.toml`` with its genesis; every path is absolute."""

    path: Path
    node_id: str
    genesis_file: Path
    data_dir: Path
    validator_key: Path
    api: ApiConfig
    peer: PeerConfig
    metrics: MetricsConfig
    mempool: MempoolConfig
    log: LogConfig
    genesis: Genesis
    validator_keypair: KeyPair = field(repr=False)
    tls_key_pem: bytes = field(repr=False)  # decrypted once at load; handed to gRPC's TLS
    keys: KeysConfig = KeysConfig()
    audit: AuditSettings = field(default_factory=AuditSettings)
    vote_record: Path | None = None  # None: beside the validator key (vote_record.default_path)

    @property
    def validator(self) -> ValidatorInfo:
        """This node's entry in the genesis validator list."""
        info = self.genesis.validator(self.node_id)
        assert info is not None  # checked at load time
        return info


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(path, None, "does not exist") from None
    except IsADirectoryError:
        raise ConfigError(path, None, "is a directory, not a TOML file") from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, None, "is not valid TOML: not UTF-8 text") from None


@dataclass(frozen=True, slots=True)
class ObserverPeerConfig:
    """An observer's ``[peer]``: the TLS files it dials validators with (it listens for none)."""

    tls_cert: Path
    tls_key: Path
    ca_cert: Path
    max_message_bytes: int = PEER_MESSAGE_BYTES_DEFAULT


@dataclass(frozen=True, slots=True)
class ObserverSettings:
    """``[observer]``: the validators to fetch certified blocks from, in the order to try them,
    and how often to ask them for their height."""

    validators: tuple[str, ...]
    poll_interval_ms: int


@dataclass(frozen=True, slots=True)
class ObserverConfig:
    """A validated observer ``node.toml`` with its genesis: a node that follows the validators,
    holds no consensus key, and serves the read side of the public API."""

    path: Path
    node_id: str
    genesis_file: Path
    data_dir: Path
    api: ApiConfig
    peer: ObserverPeerConfig
    metrics: MetricsConfig
    log: LogConfig
    genesis: Genesis
    observer: ObserverSettings
    tls_key_pem: bytes = field(repr=False)
    keys: KeysConfig = KeysConfig()


def load_config(
    path: Path | str,
    *,
    passphrase: bytes | None = None,
    ask_passphrase: Callable[[Path], bytes | None] | None = None,
) -> NodeConfig | ObserverConfig:
    """Read and validate ``node.toml`` of either role (``[node] role``): a validator's (its
    genesis, validator key and TLS files) or an observer's (its genesis, the validators it
    follows and its TLS files).

    ``passphrase`` decrypts encrypted private keys; without one, ``[keys] passphrase_file`` is
    read, and then ``ask_passphrase(key file)`` (a terminal prompt) is called, only when a key
    is encrypted. With ``[keys] encrypted = true`` a plaintext key is refused. Raises
    ``ConfigError``.
    """
    path = Path(path)
    document = _read_toml(path)
    try:
        toml = NodeToml.model_validate(document, context={"base": path.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(path, *first_error(NodeToml, exc)) from None
    if toml.node.role == OBSERVER_ROLE:
        return _observer_config(path, document, toml, passphrase, ask_passphrase)
    return _validator_config(path, toml, passphrase, ask_passphrase)


def load_node_config(
    path: Path | str,
    *,
    passphrase: bytes | None = None,
    ask_passphrase: Callable[[Path], bytes | None] | None = None,
) -> NodeConfig:
    """Read and validate a validator's ``node.toml`` (see ``load_config``); an observer's is
    refused with a ConfigError on ``[node] role``."""
    config = load_config(path, passphrase=passphrase, ask_passphrase=ask_passphrase)
    if isinstance(config, ObserverConfig):
        raise ConfigError(
            path, "[node] role", "is 'observer', but a validator's node.toml is needed here"
        )
    return config


def _validator_config(
    path: Path,
    toml: NodeToml,
    passphrase: bytes | None,
    ask_passphrase: Callable[[Path], bytes | None] | None,
) -> NodeConfig:
    node_id = toml.node.id
    genesis_file = toml.node.genesis_file
    data_dir = toml.node.data_dir
    validator_key = toml.node.validator_key
    if validator_key is None:
        raise ConfigError(path, "[node] validator_key", "is required for a validator")
    if toml.peer.listen is None:
        raise ConfigError(path, "[peer] listen", "is required for a validator")
    if toml.observer is not None:
        raise ConfigError(
            path, "[observer]", 'is a section of an observer\'s node.toml (role = "observer") only'
        )
    api = ApiConfig(**dict(toml.api))
    peer = PeerConfig(**(dict(toml.peer) | {"listen": toml.peer.listen}))
    metrics = MetricsConfig(listen=toml.metrics.listen)
    mempool = MempoolConfig(size_max=toml.mempool.size_max)
    log = LogConfig(**dict(toml.log))
    keys = KeysConfig(**dict(toml.keys))
    audit = AuditSettings(**dict(toml.audit))
    passphrases = _PassphraseSource(keys, passphrase, ask_passphrase)

    _check_distinct_listeners(path, api.listen, peer.listen, metrics.listen)
    genesis = load_genesis(genesis_file)
    entry = genesis.validator(node_id)
    by_governance = toml.node.membership == "governance"
    if entry is None and not by_governance:
        raise ConfigError(
            path,
            "[node] id",
            f"{node_id!r} is not a validator in {genesis_file.name} "
            f"(validators: {', '.join(genesis.validator_ids)})",
        )
    try:
        keypair = load_private_key(
            validator_key,
            passphrases.for_key(validator_key),
            require_encrypted=keys.encrypted,
            suite=genesis.crypto_suite,
        )
    except CryptoError as exc:
        raise ConfigError(path, "[node] validator_key", exc.message) from None
    if entry is not None and not by_governance and keypair.public_key != entry.public_key:
        raise ConfigError(
            path,
            "[node] validator_key",
            f"{validator_key} holds public key {keypair.public_key.hex()[:16]}..., but "
            f"{genesis_file.name} lists {entry.public_key.hex()[:16]}... for {node_id}",
        )
    tls_key_pem = _check_tls(
        path, peer.ca_cert, peer.tls_cert, peer.tls_key, node_id, VALIDATOR_ROLE, passphrases
    )
    return NodeConfig(
        path=path.resolve(),
        node_id=node_id,
        genesis_file=genesis_file,
        data_dir=data_dir,
        validator_key=validator_key,
        api=api,
        peer=peer,
        metrics=metrics,
        mempool=mempool,
        log=log,
        genesis=genesis,
        validator_keypair=keypair,
        tls_key_pem=tls_key_pem,
        keys=keys,
        audit=audit,
        vote_record=toml.node.vote_record,
    )


# Settings an observer has no use for: refused rather than silently ignored, so that a copied
# validator node.toml does not look as if it configured something.
_OBSERVER_REFUSED_SECTIONS = {
    "mempool": "an observer admits no transactions",
    "audit": "an observer keeps no audit log (it holds no key to sign its heads)",
}
_OBSERVER_REFUSED_PEER_SETTINGS = (
    "listen",
    "outbound_queue_max",
    "consensus_queue_bytes_max",
    "relay_queue_bytes_max",
    "offline_queue_bytes_max",
    "inbound_bytes_max",
)


def _observer_config(
    path: Path,
    document: Mapping[str, Any],
    toml: NodeToml,
    passphrase: bytes | None,
    ask_passphrase: Callable[[Path], bytes | None] | None,
) -> ObserverConfig:
    node_id = toml.node.id
    if toml.node.validator_key is not None:
        raise ConfigError(
            path,
            "[node] validator_key",
            "an observer holds no consensus key and signs no consensus message; remove it",
        )
    if toml.node.vote_record is not None:
        raise ConfigError(
            path, "[node] vote_record", "an observer signs no vote to keep a record of; remove it"
        )
    for section, why in _OBSERVER_REFUSED_SECTIONS.items():
        if section in document:
            raise ConfigError(path, f"[{section}]", f"{why}; remove this section")
    peer_document = document.get("peer")
    for key in _OBSERVER_REFUSED_PEER_SETTINGS:
        if isinstance(peer_document, Mapping) and key in peer_document:
            raise ConfigError(
                path,
                f"[peer] {key}",
                "an observer takes no peer connections and sends no consensus messages; "
                "remove this setting",
            )
    api = ApiConfig(**dict(toml.api))
    peer = ObserverPeerConfig(
        tls_cert=toml.peer.tls_cert,
        tls_key=toml.peer.tls_key,
        ca_cert=toml.peer.ca_cert,
        max_message_bytes=toml.peer.max_message_bytes,
    )
    metrics = MetricsConfig(listen=toml.metrics.listen)
    log = LogConfig(**dict(toml.log))
    keys = KeysConfig(**dict(toml.keys))
    passphrases = _PassphraseSource(keys, passphrase, ask_passphrase)
    _check_distinct_listeners(path, api.listen, None, metrics.listen)
    genesis = load_genesis(toml.node.genesis_file)
    if genesis.validator(node_id) is not None:
        raise ConfigError(
            path,
            "[node] id",
            f"{node_id!r} is a validator in {toml.node.genesis_file.name}; an observer needs an "
            "id of its own",
        )
    settings = _observer_settings(
        path, toml.observer or ObserverSection(), genesis, toml.node.genesis_file.name
    )
    tls_key_pem = _check_tls(
        path, peer.ca_cert, peer.tls_cert, peer.tls_key, node_id, OBSERVER_ROLE, passphrases
    )
    return ObserverConfig(
        path=path.resolve(),
        node_id=node_id,
        genesis_file=toml.node.genesis_file,
        data_dir=toml.node.data_dir,
        api=api,
        peer=peer,
        metrics=metrics,
        log=log,
        genesis=genesis,
        observer=settings,
        tls_key_pem=tls_key_pem,
        keys=keys,
    )


def _observer_settings(
    path: Path, section: ObserverSection, genesis: Genesis, genesis_name: str
) -> ObserverSettings:
    if section.validators is None:
        return ObserverSettings(genesis.validator_ids, section.poll_interval_ms)
    if not section.validators:
        raise ConfigError(path, "[observer] validators", "must name at least one validator")
    seen: set[str] = set()
    for index, validator_id in enumerate(section.validators):
        where = f"[observer] validators[{index}]"
        if genesis.validator(validator_id) is None:
            raise ConfigError(
                path,
                where,
                f"{validator_id!r} is not a validator in {genesis_name} "
                f"(validators: {', '.join(genesis.validator_ids)})",
            )
        if validator_id in seen:
            raise ConfigError(path, where, f"{validator_id!r} is listed twice")
        seen.add(validator_id)
    return ObserverSettings(tuple(section.validators), section.poll_interval_ms)


class _PassphraseSource:
    """The passphrase for this node's encrypted keys: found once, asked for only if needed."""

    def __init__(
        self,
        keys: KeysConfig,
        given: bytes | None,
        ask: Callable[[Path], bytes | None] | None,
    ) -> None:
        self._keys = keys
        self._value = given
        self._ask = ask

    @property
    def required(self) -> bool:
        return self._keys.encrypted

    def for_key(self, key_file: Path) -> bytes | None:
        if self._value is None and (self._keys.encrypted or key_file_is_encrypted(key_file)):
            if self._keys.passphrase_file is not None:
                self._value = read_passphrase_file(self._keys.passphrase_file)
            elif self._ask is not None:
                self._value = self._ask(key_file)
        return self._value


def _check_distinct_listeners(
    path: Path, api: HostPort, peer: HostPort | None, metrics: HostPort
) -> None:
    seen: dict[tuple[str, int], str] = {}
    for section, address in (("api", api), ("peer", peer), ("metrics", metrics)):
        if address is None or address.port == 0:
            continue  # port 0 asks the OS for a free port: never a clash
        key = (address.host, address.port)
        if key in seen:
            raise ConfigError(
                path, f"[{section}] listen", f"{address} is also [{seen[key]}] listen"
            )
        seen[key] = section


def _check_tls(
    path: Path,
    ca_cert: Path,
    tls_cert: Path,
    tls_key: Path,
    node_id: str,
    role: str,
    passphrases: _PassphraseSource,
) -> bytes:
    def error(key: str, message: str) -> ConfigError:
        return ConfigError(path, f"[peer] {key}", message)

    try:
        ca_certificate = read_certificate(ca_cert)
    except PkiError as exc:
        raise error("ca_cert", str(exc)) from None
    try:
        certificate = read_certificate(tls_cert)
    except PkiError as exc:
        raise error("tls_cert", str(exc)) from None
    try:
        verify_node_certificate(certificate, ca_certificate, node_id=node_id)
        held = certificate_role(certificate)
    except PkiError as exc:
        raise error("tls_cert", f"{tls_cert} {exc}") from None
    if held != role:
        raise error(
            "tls_cert",
            f"{tls_cert} is {'an' if held == OBSERVER_ROLE else 'a'} {held}'s certificate, but "
            f"this node is {'an' if role == OBSERVER_ROLE else 'a'} {role}; "
            + (
                "issue one with 'ibledger network add-observer'"
                if role == OBSERVER_ROLE
                else "a validator's certificate has no organizational unit"
            ),
        )
    try:
        key = read_private_key(
            tls_key,
            passphrases.for_key(tls_key),
            require_encrypted=passphrases.required,
        )
    except (PkiError, CryptoError) as exc:
        raise error("tls_key", str(exc) if isinstance(exc, PkiError) else exc.message) from None
    if not public_keys_match(certificate, key):
        raise error("tls_key", f"{tls_key} is not the key of {tls_cert}")
    return private_key_to_pem(key)


TomlValue = str | int | bool | list[str]


def format_toml(sections: Mapping[str, Mapping[str, TomlValue]]) -> str:
    """Render tables of plain values as TOML (strings and lists of strings are JSON-escaped,
    which TOML accepts)."""
    lines: list[str] = []
    for name, values in sections.items():
        if lines:
            lines.append("")
        lines.append(f"[{name}]")
        for key, value in values.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, int):
                text = str(value)
            else:
                text = json.dumps(value)
            lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"


# --- genesis -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsensusParams:
    batch_size_max: int
    batch_timeout_ms: int
    checkpoint_interval: int
    watermark_window: int
    view_change_timeout_ms: int
    timestamp_skew_ms: int
    tick_ms: int
    eager_blocks: int = 0

    def ticks(self, duration_ms: int) -> int:
        """A duration in whole ticks, rounded up, so that no timeout becomes shorter."""
        return math.ceil(duration_ms / self.tick_ms)


@dataclass(frozen=True, slots=True)
class AdmissionParams:
    # Per sender and node: transactions pending in the mempool (relayed ones included), and a
    # token bucket over what clients submit (refilled at the rate, holding at most the burst).
    sender_burst: int
    sender_pending_max: int
    sender_rate_per_s: int
    tx_expiry_horizon_ms: int  # a transaction may expire at most this far after now / block time


@dataclass(frozen=True, slots=True)
class Genesis:
    path: Path
    chain_id: str
    crypto_suite: str
    genesis_time_ms: int
    validators: tuple[ValidatorInfo, ...]
    consensus: ConsensusParams
    admission: AdmissionParams
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def validator_ids(self) -> tuple[str, ...]:
        return tuple(v.id for v in self.validators)

    def validator(self, node_id: str) -> ValidatorInfo | None:
        for info in self.validators:
            if info.id == node_id:
                return info
        return None


def load_genesis(path: Path | str) -> Genesis:
    """Read and validate a genesis file, including its contract sections. Raises ConfigError."""
    path = Path(path)
    try:
        raw = read_genesis(path)
    except JsonFileError as exc:
        raise ConfigError(path, exc.field, exc.message) from None

    def error(where: str, message: str) -> ConfigError:
        return ConfigError(path, where, message)

    for key in sorted(raw):
        if key not in GENESIS_FIELDS:
            raise error(key, f"is not a genesis field (known: {', '.join(GENESIS_FIELDS)})")
    for key in (
        "chain_id",
        "crypto_suite",
        "genesis_time_ms",
        "validators",
        "consensus",
        "admission",
        "governance",
    ):
        if key not in raw:
            raise error(key, "is required")

    chain_id = raw["chain_id"]
    if not isinstance(chain_id, str) or CHAIN_ID_PATTERN.fullmatch(chain_id) is None:
        raise error(
            "chain_id",
            "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit; "
            f"got {_show(chain_id)}",
        )
    try:
        suite = read_suite(raw)
    except GenesisFieldError as exc:
        raise error(exc.field, exc.message) from None
    suite_name = suite.name
    genesis_time_ms = raw["genesis_time_ms"]
    if not _is_int(genesis_time_ms) or genesis_time_ms < 0:
        raise error(
            "genesis_time_ms",
            "must be a non-negative integer (milliseconds since 1970), "
            f"got {_show(genesis_time_ms)}",
        )

    validators = _validators(path, raw["validators"], suite)
    _check_participant_suites(path, raw.get("participants"), suite_name)
    consensus = _consensus(path, raw)
    admission = AdmissionParams(**dict(_section(path, AdmissionSection, "admission", raw)))
    try:
        genesis_writes(raw)
    except GenesisError as exc:
        raise ConfigError(path, None, str(exc)) from None
    return Genesis(
        path=path.resolve(),
        chain_id=chain_id,
        crypto_suite=suite_name,
        genesis_time_ms=genesis_time_ms,
        validators=validators,
        consensus=consensus,
        admission=admission,
        raw=raw,
    )


def _check_participant_suites(path: Path, participants: Any, suite_name: str) -> None:
    """Every genesis key is of the chain's suite: a key of another could never sign here."""
    if not isinstance(participants, list):
        return  # the contract's genesis check reports the shape
    for index, participant in enumerate(participants):
        entries = participant.get("keys") if isinstance(participant, dict) else None
        for key_index, entry in enumerate(entries if isinstance(entries, list) else ()):
            key_suite = entry.get("suite") if isinstance(entry, dict) else None
            if isinstance(key_suite, str) and key_suite != suite_name:
                raise ConfigError(
                    path,
                    f"participants[{index}].keys[{key_index}].suite",
                    f"is {key_suite!r}, but crypto_suite is {suite_name!r}: every key of a chain "
                    "uses the chain's suite",
                )


def _validators(path: Path, value: Any, suite: CryptoSuite) -> tuple[ValidatorInfo, ...]:
    try:
        return read_validators(value, suite)
    except GenesisFieldError as exc:
        raise ConfigError(path, exc.field, exc.message) from None


def _section(path: Path, model: type[_Model], name: str, raw: dict[str, Any]) -> _Model:
    """A genesis section of parameters, validated by its schema (``schema.py``)."""
    try:
        return model.model_validate(raw[name])
    except ValidationError as exc:
        raise ConfigError(path, *section_error(model, exc, name)) from None


def _consensus(path: Path, raw: dict[str, Any]) -> ConsensusParams:
    params = ConsensusParams(**dict(_section(path, ConsensusSection, "consensus", raw)))
    if params.watermark_window % params.checkpoint_interval:
        raise ConfigError(
            path,
            "consensus.watermark_window",
            f"{params.watermark_window} must be a multiple of checkpoint_interval "
            f"({params.checkpoint_interval})",
        )
    if params.watermark_window < 2 * params.checkpoint_interval:
        raise ConfigError(
            path,
            "consensus.watermark_window",
            f"{params.watermark_window} must be at least twice checkpoint_interval "
            f"({params.checkpoint_interval}), or the primary stalls at every checkpoint",
        )
    if params.view_change_timeout_ms < 2 * params.tick_ms:
        raise ConfigError(
            path,
            "consensus.view_change_timeout_ms",
            f"{params.view_change_timeout_ms} must be at least two ticks "
            f"(tick_ms = {params.tick_ms})",
        )
    if params.batch_timeout_ms >= params.view_change_timeout_ms:
        raise ConfigError(
            path,
            "consensus.batch_timeout_ms",
            f"{params.batch_timeout_ms} must be shorter than view_change_timeout_ms "
            f"({params.view_change_timeout_ms}), or backups suspect a primary that is batching",
        )
    return params
