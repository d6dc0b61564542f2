"""node.toml's schema (pydantic, strict, no unknown keys) and its errors in the project's words.

tests/ops/test_config.py checks every message through load_node_config on a real network; these
check the schema directly, for the cases the hand-written reader never had to spell out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ibledger.node.addresses import HostPort
from ibledger.node.config import ConfigError, load_node_config
from ibledger.node.config import _consensus as consensus_of
from ibledger.node.schema import NodeToml, first_error


@pytest.fixture
def base(tmp_path: Path) -> Path:
    for name in ("genesis.json", "validator.pem", "node.crt", "node.key", "ca.crt"):
        (tmp_path / name).write_text("")
    return tmp_path


def _valid() -> dict[str, Any]:
    return {
        "node": {
            "id": "node0",
            "genesis_file": "genesis.json",
            "data_dir": "data",
            "validator_key": "validator.pem",
        },
        "api": {"listen": "127.0.0.1:7100"},
        "peer": {
            "listen": "127.0.0.1:7200",
            "tls_cert": "node.crt",
            "tls_key": "node.key",
            "ca_cert": "ca.crt",
        },
        "metrics": {"listen": "127.0.0.1:9100"},
    }


def _error(base: Path, document: dict[str, Any]) -> tuple[str | None, str]:
    with pytest.raises(ValidationError) as raised:
        NodeToml.model_validate(document, context={"base": base})
    return first_error(NodeToml, raised.value)


def test_a_valid_file_resolves_paths_and_takes_defaults(base: Path) -> None:
    toml = NodeToml.model_validate(_valid(), context={"base": base})
    assert toml.node.genesis_file == base / "genesis.json"
    assert toml.node.data_dir == base / "data"
    assert toml.api.listen == HostPort("127.0.0.1", 7100)
    assert toml.api.max_message_bytes == 4 * 1024 * 1024 and toml.api.tls is True
    assert toml.log.level == "info" and toml.keys.passphrase_file is None
    assert toml.audit.segments_max >= 2


def _with(section: str, key: str, value: Any) -> dict[str, Any]:
    document = _valid()
    document.setdefault(section, {})[key] = value
    return document


@pytest.mark.parametrize(
    ("document", "field", "message"),
    [
        (
            _with("api", "max_message_bytes", 1.5),
            "[api] max_message_bytes",
            "must be an integer, got a number with a fraction (1.5)",
        ),
        (
            _with("api", "max_message_bytes", 1023),
            "[api] max_message_bytes",
            "must be from 1024 to 268435456, got 1023",
        ),
        (
            _with("peer", "inbound_bytes_max", 1 << 35),
            "[peer] inbound_bytes_max",
            f"must be from {1 << 20} to {1 << 34}, got {1 << 35}",
        ),
        (_with("api", "tls", 1), "[api] tls", "must be true or false, got 1"),
        (
            _with("node", "genesis_file", ""),
            "[node] genesis_file",
            "must be a non-empty string, got the text ''",
        ),
        (
            _with("keys", "passphrase_file", 5),
            "[keys] passphrase_file",
            "must be a non-empty string, got 5",
        ),
        (
            _with("log", "level", 3),
            "[log] level",
            "must be one of debug, info, warning, error, got 3",
        ),
        (
            _with("audit", "segment_byte_max", 1),
            "[audit] segment_byte_max",
            "is not a known setting (known: aggregate_interval_ms, head_interval_ms, "
            "segment_bytes_max, segments_max)",
        ),
        (
            _with("metrics", "listen", ["127.0.0.1:9100"]),
            "[metrics] listen",
            'must be a "host:port" string, got a list',
        ),
        ({**_valid(), "api": 3}, "[api]", "must be a table, got 3"),
        ({**_valid(), "mempool": "big"}, "[mempool]", "must be a table, got the text 'big'"),
    ],
)
def test_messages(base: Path, document: dict[str, Any], field: str | None, message: str) -> None:
    assert _error(base, document) == (field, message)


def test_a_node_data_dir_that_is_a_file(base: Path) -> None:
    (base / "data").write_text("")
    assert _error(base, _valid()) == (
        "[node] data_dir",
        f"{base / 'data'} exists and is not a directory",
    )


def test_the_first_error_reported(base: Path) -> None:
    # Several problems: an unknown section first, then a missing one, then settings in the
    # schema's order.
    document = _with("api", "max_message_bytes", "4MB")
    document["consensus"] = {"tick_ms": 10}
    del document["metrics"]
    assert _error(base, document)[0] == "[consensus]"
    del document["consensus"]
    assert _error(base, document) == ("[metrics]", "section is missing")
    document["metrics"] = {"listen": "127.0.0.1:9100"}
    document["peer"]["outbound_queue_max"] = 0
    assert _error(base, document) == (
        "[api] max_message_bytes",
        "must be an integer, got the text '4MB'",
    )


def test_load_node_config_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('[node]\nid = "node0"\n[api]\nlisten = "127.0.0.1:1"\n')
    with pytest.raises(ConfigError) as raised:
        load_node_config(path)
    assert str(raised.value) == f"{path}: [peer]: section is missing"
    path.write_text(path.read_text() + '[peer]\n[metrics]\nlisten = "127.0.0.1:2"\n')
    with pytest.raises(ConfigError) as raised:
        load_node_config(path)
    assert str(raised.value) == f"{path}: [node] genesis_file: is required"


# --- the genesis parameter sections ---------------------------------------------------------


def _consensus() -> dict[str, Any]:
    return {
        "batch_size_max": 500,
        "batch_timeout_ms": 50,
        "checkpoint_interval": 64,
        "watermark_window": 256,
        "view_change_timeout_ms": 2000,
        "timestamp_skew_ms": 5000,
        "tick_ms": 10,
    }


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        (
            {**_consensus(), "tick": 10},
            "consensus.tick",
            "is not a consensus parameter (known: batch_size_max, batch_timeout_ms, "
            "checkpoint_interval, eager_blocks, tick_ms, timestamp_skew_ms, "
            "view_change_timeout_ms, watermark_window)",
        ),
        (
            {**_consensus(), "tick_ms": True},
            "consensus.tick_ms",
            "must be an integer, got a boolean (true)",
        ),
        (
            {**_consensus(), "tick_ms": "10"},
            "consensus.tick_ms",
            "must be an integer, got the text '10'",
        ),
        (
            {**_consensus(), "batch_timeout_ms": -1},
            "consensus.batch_timeout_ms",
            "must be from 0 to 60000, got -1",
        ),
        ([1, 2], "consensus", "must be an object, got a list"),
    ],
)
def test_genesis_consensus_messages(tmp_path: Path, value: Any, field: str, message: str) -> None:

    with pytest.raises(ConfigError) as raised:
        consensus_of(tmp_path / "genesis.json", {"consensus": value})
    assert (raised.value.field, raised.value.message) == (field, message)
    assert str(raised.value).startswith(f"{tmp_path / 'genesis.json'}: {field}: ")
