"""network.json's schema (pydantic, strict) and its messages: the file, the field, the reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ibledger.cli.manifest import ManifestError, load_manifest
from ibledger.node.addresses import HostPort


def _manifest() -> dict[str, Any]:
    node = {"api": "127.0.0.1:7100", "peer": "127.0.0.1:7200", "metrics": "127.0.0.1:9100"}
    return {
        "chain_id": "ibledger-local",
        "genesis": "genesis.json",
        "ca_cert": "ca/ca.crt",
        "nodes": [
            {"id": "node0", **node, "dir": "nodes/node0", "config": "nodes/node0/node.toml"},
            {
                "id": "node1",
                "api": "127.0.0.1:7101",
                "peer": "127.0.0.1:7201",
                "metrics": "127.0.0.1:9101",
                "dir": "nodes/node1",
                "config": "nodes/node1/node.toml",
            },
        ],
        "identities": {
            "ADMIN": {"participant": "ADMIN", "key_file": "identities/admin.pem", "roles": []},
        },
        "written_by": "a newer release",  # unknown fields are ignored
    }


def _write(directory: Path, manifest: dict[str, Any]) -> None:
    (directory / "network.json").write_text(json.dumps(manifest))


def test_a_manifest_reads_with_absolute_paths(tmp_path: Path) -> None:
    _write(tmp_path, _manifest())
    manifest = load_manifest(tmp_path)
    root = tmp_path.resolve()
    assert manifest.chain_id == "ibledger-local" and manifest.genesis_file == root / "genesis.json"
    assert manifest.ca_cert == root / "ca/ca.crt" and manifest.keys_encrypted is False
    node = manifest.nodes[1]
    assert (node.id, node.api, node.config) == (
        "node1",
        HostPort("127.0.0.1", 7101),
        root / "nodes/node1/node.toml",
    )
    assert manifest.identity("admin").key_file == root / "identities/admin.pem"


def _set(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    manifest = _manifest()
    target: Any = manifest
    for part in path[:-1]:
        target = target[part]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return manifest


@pytest.mark.parametrize(
    ("manifest", "field", "message"),
    [
        (_set(("chain_id",), KeyError), "chain_id", "is required"),
        (_set(("chain_id",), ""), "chain_id", "must not be empty"),
        (_set(("chain_id",), 7), "chain_id", "must be a string, got 7"),
        (_set(("genesis",), None), "genesis", "must be a relative path, got nothing"),
        (_set(("nodes",), {}), "nodes", "must be a list, got a table"),
        (_set(("nodes",), []), "nodes", "must list at least one node"),
        (_set(("nodes", 1), "node1"), "nodes[1]", "must be an object, got the text 'node1'"),
        (_set(("nodes", 1, "dir"), KeyError), "nodes[1].dir", "is required"),
        (
            _set(("nodes", 1, "peer"), "127.0.0.1:99999"),
            "nodes[1].peer",
            "port 99999 is out of range 1-65535",
        ),
        (_set(("nodes", 1, "id"), "node0"), "nodes[1].id", "'node0' is listed twice"),
        (
            _set(("identities", "ADMIN", "roles"), ["admin", 3]),
            "identities.ADMIN.roles[1]",
            "must be a string, got 3",
        ),
        (
            _set(("identities", "ADMIN", "key_file"), ["a.pem"]),
            "identities.ADMIN.key_file",
            "must be a relative path, got a list",
        ),
        (_set(("identities",), []), "identities", "must be an object, got a list"),
        (
            _set(("keys_encrypted",), "yes"),
            "keys_encrypted",
            "must be true or false, got the text 'yes'",
        ),
    ],
)
def test_messages(tmp_path: Path, manifest: dict[str, Any], field: str, message: str) -> None:
    _write(tmp_path, manifest)
    with pytest.raises(ManifestError) as raised:
        load_manifest(tmp_path)
    assert raised.value.code == "MANIFEST_INVALID"
    assert raised.value.field == field
    assert raised.value.message == f"{tmp_path.resolve() / 'network.json'}: {field}: {message}"
