"""What ``node.toml`` may hold, declared once as pydantic models, and its errors in our words.

The schema says, per section and setting, the type, the bounds and the default; pydantic checks
it in strict mode (a boolean is not an integer, ``"4MB"`` is not a number, a float is not an
integer) and forbids keys the schema does not declare (a typo is an error, not a silently ignored
setting).  What pydantic reports (a location, an error type, the input) is turned into the
project's one error style by ``validation.explain``: the section and the setting, then the
reason, e.g. ``[peer] listen: port 70000 is out of range 0-65535`` or
``[api] max_message_bytes: must be from 1024 to 268435456, got 1``; ``config.load_node_config``
adds the file.

Paths are resolved against the directory holding ``node.toml`` (passed as the validation
context ``{"base": Path}``) and the files a node must read are checked to exist here; the facts
that span files (the node is a genesis validator, its key is the one genesis lists, its TLS
certificate is the CA's for this node id) are checked by ``config.py`` after the schema.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
)

from . import validation
from .addresses import HostPort, describe_value, parse_host_port
from .audit import (
    AGGREGATE_INTERVAL_MS_DEFAULT,
    HEAD_INTERVAL_MS_DEFAULT,
    SEGMENT_BYTES_DEFAULT,
    SEGMENTS_DEFAULT,
)
from .validator_set import NODE_ID_PATTERN, NODE_ID_RULE

__all__ = [
    "NODE_ID_RULE",
    "NODE_ROLES",
    "AdmissionSection",
    "ConsensusSection",
    "NodeToml",
    "ObserverSection",
    "first_error",
    "section_error",
    "toml_where",
]

MESSAGE_BYTES_MAX = 256 * 1024 * 1024
API_MESSAGE_BYTES_DEFAULT = 4 * 1024 * 1024
API_CONCURRENT_RPCS_DEFAULT = 1024
API_STREAMS_PER_VIEWER_DEFAULT = 16
API_ANONYMOUS_STREAMS_PER_ADDRESS_DEFAULT = 8
API_ANONYMOUS_STREAMS_DEFAULT = 64
PEER_MESSAGE_BYTES_DEFAULT = 16 * 1024 * 1024
PEER_OUTBOUND_QUEUE_DEFAULT = 10_000
PEER_CONSENSUS_QUEUE_BYTES_DEFAULT = 64 * 1024 * 1024
PEER_RELAY_QUEUE_BYTES_DEFAULT = 16 * 1024 * 1024
PEER_OFFLINE_QUEUE_BYTES_DEFAULT = 8 * 1024 * 1024
PEER_INBOUND_BYTES_DEFAULT = 32 * 1024 * 1024
MEMPOOL_SIZE_DEFAULT = 50_000
LogLevel = Literal["debug", "info", "warning", "error"]
LOG_LEVELS: tuple[LogLevel, ...] = get_args(LogLevel)
LOG_LEVEL_DEFAULT: LogLevel = "info"
LOG_MAX_BYTES_DEFAULT = 16 * 1024 * 1024
LOG_BACKUPS_DEFAULT = 5
NodeRole = Literal["validator", "observer"]
NODE_ROLES: tuple[NodeRole, ...] = get_args(NodeRole)
OBSERVER_POLL_INTERVAL_MS_DEFAULT = 200


# --- value types ---------------------------------------------------------------------------------


def _address(value: Any) -> HostPort:
    if isinstance(value, HostPort):
        return value
    return parse_host_port(value, allow_zero=True)  # its ValueError is the message


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a non-empty string, got {describe_value(value)}")
    return value


def _resolved(value: Any, info: ValidationInfo) -> Path:
    base = info.context["base"] if info.context else Path.cwd()
    return Path(os.path.normpath(Path(base) / _text(value)))


def _existing_file(value: Any, info: ValidationInfo) -> Path:
    path = _resolved(value, info)
    if not path.is_file():
        raise ValueError(
            f"{path} {'is a directory, not a file' if path.is_dir() else 'does not exist'}"
        )
    return path


def _directory(value: Any, info: ValidationInfo) -> Path:
    path = _resolved(value, info)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} exists and is not a directory")
    return path


def _node_id(value: str) -> str:
    if NODE_ID_PATTERN.fullmatch(value) is None:
        raise ValueError(f"{value!r} is not a node id: {NODE_ID_RULE}")
    return value


Address = Annotated[HostPort, PlainValidator(_address)]
OptionalAddress = Annotated[HostPort | None, PlainValidator(_address)]
ExistingFile = Annotated[Path, PlainValidator(_existing_file)]
OptionalExistingFile = Annotated[Path | None, PlainValidator(_existing_file)]
OptionalFile = Annotated[Path | None, PlainValidator(_resolved)]
Directory = Annotated[Path, PlainValidator(_directory)]
NodeId = Annotated[str, PlainValidator(_text), AfterValidator(_node_id)]


class _Section(BaseModel):
    model_config = validation.STRICT


# --- node.toml -----------------------------------------------------------------------------------


class NodeSection(_Section):
    """``role`` is ``validator`` (the default) or ``observer``; a validator needs
    ``validator_key`` and an observer must not have one (``config.py`` says so)."""

    id: NodeId
    role: NodeRole = "validator"
    genesis_file: ExistingFile
    data_dir: Directory
    validator_key: OptionalExistingFile = None
    # "genesis": the node is a genesis validator with the key genesis lists, checked at load.
    # "governance": it joined, or its key was rotated, by a membership change; the node checks
    # its id and key against the validator set its ledger records when it starts.
    membership: Literal["genesis", "governance"] = "genesis"
    # How far this validator may have voted, kept outside data_dir (vote_record.py); by
    # default beside the validator key, as "<key file>.votes".
    vote_record: OptionalFile = None


class ApiSection(_Section):
    listen: Address
    max_message_bytes: Annotated[int, Field(ge=1024, le=MESSAGE_BYTES_MAX)] = (
        API_MESSAGE_BYTES_DEFAULT
    )
    max_concurrent_rpcs: Annotated[int, Field(ge=1, le=100_000)] = API_CONCURRENT_RPCS_DEFAULT
    tls: bool = True  # serve the node's CA-issued certificate (the [peer] TLS files)
    streams_per_viewer: Annotated[int, Field(ge=1, le=10_000)] = API_STREAMS_PER_VIEWER_DEFAULT
    anonymous_streams_per_address: Annotated[int, Field(ge=0, le=10_000)] = (
        API_ANONYMOUS_STREAMS_PER_ADDRESS_DEFAULT
    )
    anonymous_streams_max: Annotated[int, Field(ge=0, le=100_000)] = API_ANONYMOUS_STREAMS_DEFAULT


_QueueBytes = Annotated[int, Field(ge=1 << 20, le=1 << 34)]


class PeerSection(_Section):
    listen: OptionalAddress = None  # required for a validator; an observer listens for no peer
    tls_cert: ExistingFile
    tls_key: ExistingFile
    ca_cert: ExistingFile
    max_message_bytes: Annotated[int, Field(ge=1024, le=MESSAGE_BYTES_MAX)] = (
        PEER_MESSAGE_BYTES_DEFAULT
    )
    outbound_queue_max: Annotated[int, Field(ge=1, le=10_000_000)] = PEER_OUTBOUND_QUEUE_DEFAULT
    consensus_queue_bytes_max: _QueueBytes = PEER_CONSENSUS_QUEUE_BYTES_DEFAULT
    relay_queue_bytes_max: _QueueBytes = PEER_RELAY_QUEUE_BYTES_DEFAULT
    offline_queue_bytes_max: _QueueBytes = PEER_OFFLINE_QUEUE_BYTES_DEFAULT
    inbound_bytes_max: _QueueBytes = PEER_INBOUND_BYTES_DEFAULT


class MetricsSection(_Section):
    listen: Address


class MempoolSection(_Section):
    size_max: Annotated[int, Field(ge=1, le=10_000_000)] = MEMPOOL_SIZE_DEFAULT


class LogSection(_Section):
    """The level; the file (relative to node.toml; standard error when absent), rotated once it
    reaches ``max_bytes``, keeping ``backups`` older files."""

    level: LogLevel = LOG_LEVEL_DEFAULT
    file: OptionalFile = None
    max_bytes: Annotated[int, Field(ge=64 * 1024, le=2**40)] = LOG_MAX_BYTES_DEFAULT
    backups: Annotated[int, Field(ge=0, le=1000)] = LOG_BACKUPS_DEFAULT


class KeysSection(_Section):
    """Whether this node's private keys must be encrypted, and where the passphrase may be read
    from when no other source gives one."""

    encrypted: bool = False
    passphrase_file: OptionalFile = None


class AuditSection(_Section):
    segment_bytes_max: Annotated[int, Field(ge=64 * 1024, le=1 << 34)] = SEGMENT_BYTES_DEFAULT
    segments_max: Annotated[int, Field(ge=2, le=1_000_000)] = SEGMENTS_DEFAULT
    aggregate_interval_ms: Annotated[int, Field(ge=100, le=3_600_000)] = (
        AGGREGATE_INTERVAL_MS_DEFAULT
    )
    head_interval_ms: Annotated[int, Field(ge=1_000, le=86_400_000)] = HEAD_INTERVAL_MS_DEFAULT


class ObserverSection(_Section):
    """An observer's settings: the validators it fetches certified blocks from (default: every
    genesis validator) and how often it asks them for their height."""

    validators: list[NodeId] | None = None
    poll_interval_ms: Annotated[int, Field(ge=10, le=60_000)] = OBSERVER_POLL_INTERVAL_MS_DEFAULT


class NodeToml(_Section):
    """The whole file; the sections with every setting defaulted may be left out."""

    node: NodeSection
    api: ApiSection
    peer: PeerSection
    metrics: MetricsSection
    mempool: MempoolSection = MempoolSection()
    log: LogSection = LogSection()
    keys: KeysSection = KeysSection()
    audit: AuditSection = AuditSection()
    observer: ObserverSection | None = None


# --- genesis.json: the consensus and admission parameters ----------------------------------------
# Every field is required, because a default that changed between releases would let two nodes
# read the same genesis differently. (The rest of the genesis is still checked in config.py and,
# for the contract sections, by contracts.runtime.genesis_writes.)


class ConsensusSection(BaseModel):
    model_config = validation.STRICT
    UNKNOWN: ClassVar[str] = "a consensus parameter"

    batch_size_max: Annotated[int, Field(ge=1, le=100_000)]
    batch_timeout_ms: Annotated[int, Field(ge=0, le=60_000)]
    checkpoint_interval: Annotated[int, Field(ge=1, le=100_000)]
    watermark_window: Annotated[int, Field(ge=2, le=1_000_000)]
    view_change_timeout_ms: Annotated[int, Field(ge=1, le=3_600_000)]
    timestamp_skew_ms: Annotated[int, Field(ge=0, le=3_600_000)]
    tick_ms: Annotated[int, Field(ge=1, le=10_000)]
    # Optional so that genesis files written before it keep their meaning (always wait).
    eager_blocks: Annotated[int, Field(ge=0, le=64)] = 0


class AdmissionSection(BaseModel):
    """Admission limits every replica applies alike (the expiry horizon is checked again when a
    block executes): required for the same reason as the consensus parameters."""

    model_config = validation.STRICT
    UNKNOWN: ClassVar[str] = "an admission parameter"

    sender_burst: Annotated[int, Field(ge=1, le=10_000_000)]
    sender_pending_max: Annotated[int, Field(ge=1, le=10_000_000)]
    sender_rate_per_s: Annotated[int, Field(ge=1, le=1_000_000)]
    tx_expiry_horizon_ms: Annotated[int, Field(ge=60_000, le=30 * 24 * 3600 * 1000)]


def section_error(
    model: type[BaseModel], exc: ValidationError, name: str
) -> tuple[str | None, str]:
    """The error to report for the genesis section ``name``, its field named ``name.key``."""

    def where(loc: tuple[int | str, ...]) -> str | None:
        return validation.json_where((name, *loc))

    return validation.first_error(model, exc, where, "object")


# --- errors in the project's words ---------------------------------------------------------------


def toml_where(loc: tuple[int | str, ...]) -> str | None:
    """A location in node.toml as its messages name it: ``[section] setting``."""
    if not loc:
        return None
    section = f"[{loc[0]}]"
    return f"{section} {'.'.join(str(part) for part in loc[1:])}" if len(loc) > 1 else section


def first_error(model: type[BaseModel], exc: ValidationError) -> tuple[str | None, str]:
    """The error to report for node.toml (see ``validation.first_error``), with the section
    words: a section the file should not have or lacks is a *section*, not a setting."""
    field, message = validation.first_error(model, exc, toml_where)
    if field is not None and " " not in field:  # a whole section
        message = message.replace("is not a known setting", "is not a known section")
        message = message.replace("is required", "section is missing")
    return field, message
