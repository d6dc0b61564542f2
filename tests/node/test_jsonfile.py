"""The one genesis reader and the one genesis overlay: strict JSON, used by node and client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ibledger.cli.manifest import ManifestError
from ibledger.cli.manifest import read_genesis as client_read_genesis
from ibledger.node.config import ConfigError, load_genesis
from ibledger.node.jsonfile import (
    JsonFileError,
    overlay,
    read_genesis,
    read_json_object,
    update_genesis,
)


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ('{"a": 1, "a": 2}', "a", "appears twice in the same JSON object"),
        ('{"a": {"b": 1, "b": 1}}', "b", "appears twice in the same JSON object"),
        ('{"a": NaN}', None, "is not valid JSON: NaN is not a JSON number"),
        ('{"a": -Infinity}', None, "is not valid JSON: -Infinity is not a JSON number"),
        ('{"a": 1', None, "is not valid JSON: Expecting ',' delimiter at line 1 column 8"),
        ("[1, 2]", None, "must hold a JSON object"),
    ],
)
def test_strict_json(tmp_path: Path, text: str, field: str | None, message: str) -> None:
    path = tmp_path / "genesis.json"
    path.write_text(text)
    with pytest.raises(JsonFileError) as raised:
        read_json_object(path)
    assert (raised.value.field, raised.value.message) == (field, message)
    # The node's loader and the client's reader say the same thing, each in its own error type.
    with pytest.raises(ConfigError) as config:
        load_genesis(path)
    assert (config.value.field, config.value.message) == (field, message)
    with pytest.raises(ManifestError) as client:
        client_read_genesis(path)
    assert client.value.code == "GENESIS_INVALID"
    assert client.value.field == field and str(path) in client.value.message


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(JsonFileError, match="does not exist"):
        read_genesis(tmp_path / "missing.json")
    with pytest.raises(JsonFileError, match="is a directory, not a JSON file"):
        read_genesis(tmp_path)
    (tmp_path / "latin1.json").write_bytes(b'{"name": "\xe9"}')
    with pytest.raises(JsonFileError, match="not UTF-8 text"):
        read_genesis(tmp_path / "latin1.json")


def test_overlay_merges_objects_and_replaces_the_rest() -> None:
    document = {
        "chain_id": "a",
        "consensus": {"tick_ms": 10, "batch_size_max": 500},
        "participants": [{"id": "X"}],
    }
    changes = {
        "consensus": {"tick_ms": 20},
        "participants": [{"id": "Y"}],
        "admission": {"sender_burst": 5},
    }
    assert overlay(document, changes) == {
        "chain_id": "a",
        "consensus": {"tick_ms": 20, "batch_size_max": 500},
        "participants": [{"id": "Y"}],  # a list replaces, never appends
        "admission": {"sender_burst": 5},
    }
    assert document["consensus"] == {"tick_ms": 10, "batch_size_max": 500}  # not modified
    assert overlay(document, {}) == document


def test_update_genesis_rewrites_in_the_network_layout(tmp_path: Path) -> None:
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps({"chain_id": "a", "participants": [{"name": "中国银行"}]}))
    updated = update_genesis(path, {"admission": {"sender_burst": 5}})
    assert (
        read_genesis(path)
        == updated
        == {
            "chain_id": "a",
            "participants": [{"name": "中国银行"}],
            "admission": {"sender_burst": 5},
        }
    )
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps(updated, indent=2, ensure_ascii=False) + "\n"
    assert "中国银行" in text
