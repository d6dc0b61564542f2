"""node/config.py: node.toml, genesis and manifest loading, and every validation message.

Each bad case starts from a valid network written by ``network init``, changes one thing, and
checks that the loader names the file, the field and the reason exactly.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ibledger.cli.manifest import ManifestError, load_manifest
from ibledger.node.config import (
    ConfigError,
    HostPort,
    format_toml,
    load_genesis,
    load_node_config,
    parse_host_port,
)
from ibledger.node.jsonfile import read_genesis, write_json
from ibledger.node.pki import create_ca, issue_node_certificate, load_ca

NODE0 = Path("nodes/node0/node.toml")


def _toml_path(network: Path) -> Path:
    return network / NODE0


def set_toml(network: Path, section: str, key: str, value: Any) -> None:
    path = _toml_path(network)
    document = tomllib.loads(path.read_text())
    if value is None:
        del document[section][key]
    else:
        document.setdefault(section, {})[key] = value
    path.write_text(format_toml(document))


def drop_section(network: Path, section: str) -> None:
    path = _toml_path(network)
    document = tomllib.loads(path.read_text())
    del document[section]
    path.write_text(format_toml(document))


def edit_genesis(network: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = network / "genesis.json"
    genesis = read_genesis(path)
    change(genesis)
    write_json(path, genesis)


def _api_of(network: Path) -> str:
    return str(tomllib.loads(_toml_path(network).read_text())["api"]["listen"])


def _other_ca_cert(network: Path) -> None:
    other = create_ca("someone else's CA")
    cert = issue_node_certificate(other, "node0")
    cert.write(network / "nodes/node0/tls/other.crt", network / "nodes/node0/tls/other.key")
    set_toml(network, "peer", "tls_cert", "tls/other.crt")
    set_toml(network, "peer", "tls_key", "tls/other.key")


def _foreign_key(network: Path) -> None:
    cert = issue_node_certificate(load_ca(network / "ca"), "node0")
    cert.write(network / "nodes/node0/tls/again.crt", network / "nodes/node0/tls/again.key")
    set_toml(network, "peer", "tls_cert", "tls/again.crt")  # the key stays tls/node.key


def _expired_cert(network: Path) -> None:
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=400)
    cert = issue_node_certificate(load_ca(network / "ca"), "node0", valid_days=1, now=long_ago)
    cert.write(network / "nodes/node0/tls/old.crt", network / "nodes/node0/tls/old.key")
    set_toml(network, "peer", "tls_cert", "tls/old.crt")
    set_toml(network, "peer", "tls_key", "tls/old.key")


# (case id, change, field, message as a regular expression)
NODE_CASES: list[tuple[str, Callable[[Path], object], str | None, str]] = [
    (
        "port-out-of-range",
        lambda n: set_toml(n, "peer", "listen", "127.0.0.1:70000"),
        "[peer] listen",
        r"port 70000 is out of range 0-65535",
    ),
    (
        "address-without-port",
        lambda n: set_toml(n, "api", "listen", "localhost"),
        "[api] listen",
        r"must be host:port, e\.g\. 127\.0\.0\.1:7100, got 'localhost'",
    ),
    (
        "bad-ipv4",
        lambda n: set_toml(n, "metrics", "listen", "127.0.0.300:9000"),
        "[metrics] listen",
        r"'127\.0\.0\.300' is not an IPv4 address",
    ),
    (
        "integer-as-text",
        lambda n: set_toml(n, "api", "max_message_bytes", "4MB"),
        "[api] max_message_bytes",
        r"must be an integer, got the text '4MB'",
    ),
    (
        "boolean-is-not-integer",
        lambda n: set_toml(n, "peer", "outbound_queue_max", True),
        "[peer] outbound_queue_max",
        r"must be an integer, got a boolean \(true\)",
    ),
    (
        "out-of-range",
        lambda n: set_toml(n, "mempool", "size_max", 0),
        "[mempool] size_max",
        r"must be from 1 to 10000000, got 0",
    ),
    (
        "audit-too-few-segments",
        lambda n: set_toml(n, "audit", "segments_max", 1),
        "[audit] segments_max",
        r"must be from 2 to 1000000, got 1",
    ),
    (
        "unknown-setting",
        lambda n: set_toml(n, "peer", "listn", "127.0.0.1:1"),
        "[peer] listn",
        r"is not a known setting \(known: ca_cert, consensus_queue_bytes_max, "
        r"inbound_bytes_max, listen, max_message_bytes, offline_queue_bytes_max, "
        r"outbound_queue_max, relay_queue_bytes_max, tls_cert, tls_key\)",
    ),
    (
        "keys-encrypted-not-a-boolean",
        lambda n: set_toml(n, "keys", "encrypted", "yes"),
        "[keys] encrypted",
        r"must be true or false, got the text 'yes'",
    ),
    (
        "unknown-section",
        lambda n: set_toml(n, "consensus", "tick_ms", 10),
        "[consensus]",
        r"is not a known section \(known: api, audit, keys, log, mempool, metrics, node, observer, "
        r"peer\)",
    ),
    (
        "missing-section",
        lambda n: drop_section(n, "metrics"),
        "[metrics]",
        r"section is missing",
    ),
    (
        "missing-required",
        lambda n: set_toml(n, "node", "data_dir", None),
        "[node] data_dir",
        r"is required",
    ),
    (
        "bad-log-level",
        lambda n: set_toml(n, "log", "level", "verbose"),
        "[log] level",
        r"must be one of debug, info, warning, error, got the text 'verbose'",
    ),
    (
        "missing-key-file",
        lambda n: set_toml(n, "node", "validator_key", "keys/missing.pem"),
        "[node] validator_key",
        r".*/nodes/node0/keys/missing\.pem does not exist",
    ),
    (
        "listen-clash",
        lambda n: set_toml(n, "peer", "listen", _api_of(n)),
        "[peer] listen",
        r"127\.0\.0\.1:\d+ is also \[api\] listen",
    ),
    (
        "not-a-validator",
        lambda n: set_toml(n, "node", "id", "node9"),
        "[node] id",
        r"'node9' is not a validator in genesis\.json \(validators: node0, node1, node2, node3\)",
    ),
    (
        "bad-node-id",
        lambda n: set_toml(n, "node", "id", "node_0"),
        "[node] id",
        r"'node_0' is not a node id: 1-63 letters, digits or hyphens, .*",
    ),
    (
        "wrong-validator-key",
        lambda n: set_toml(n, "node", "validator_key", "../node1/keys/validator.key.pem"),
        "[node] validator_key",
        r".*/node1/keys/validator\.key\.pem holds public key [0-9a-f]{16}\.\.\., but "
        r"genesis\.json lists [0-9a-f]{16}\.\.\. for node0",
    ),
    (
        "validator-key-world-readable",
        lambda n: os.chmod(n / "nodes/node0/keys/validator.key.pem", 0o644),
        "[node] validator_key",
        r".*validator\.key\.pem is open to its group or to every user \(mode 644\); "
        r"run: chmod 600 .*",
    ),
    (
        "validator-key-group-readable",
        lambda n: os.chmod(n / "nodes/node0/keys/validator.key.pem", 0o640),
        "[node] validator_key",
        r".*validator\.key\.pem is open to its group or to every user \(mode 640\); "
        r"run: chmod 600 .*",
    ),
    (
        "tls-cert-of-another-node",
        lambda n: set_toml(n, "peer", "tls_cert", "../node1/tls/node.crt"),
        "[peer] tls_cert",
        r".*/node1/tls/node\.crt is the certificate of node1, not node0",
    ),
    (
        "tls-cert-from-another-ca",
        _other_ca_cert,
        "[peer] tls_cert",
        r".*/tls/other\.crt was not issued by the consortium CA "
        r"\(CN=ibledger-local consortium CA\)",
    ),
    (
        "tls-key-not-matching",
        _foreign_key,
        "[peer] tls_key",
        r".*/tls/node\.key is not the key of .*/tls/again\.crt",
    ),
    (
        "tls-cert-expired",
        _expired_cert,
        "[peer] tls_cert",
        r".*/tls/old\.crt expired on \d{4}-\d\d-\d\d \d\d:\d\d UTC",
    ),
    (
        "tls-key-world-readable",
        lambda n: os.chmod(n / "nodes/node0/tls/node.key", 0o604),
        "[peer] tls_key",
        r".*/tls/node\.key is open to its group or to every user \(mode 604\).*",
    ),
    (
        "tls-key-group-readable",
        lambda n: os.chmod(n / "nodes/node0/tls/node.key", 0o640),
        "[peer] tls_key",
        r".*/tls/node\.key is open to its group or to every user \(mode 640\).*",
    ),
    (
        "toml-syntax",
        lambda n: _toml_path(n).write_text("[node]\nid = node0\n"),
        None,
        r"is not valid TOML: .*\(at line 2, column 6\)",
    ),
]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [case[1:] for case in NODE_CASES],
    ids=[case[0] for case in NODE_CASES],
)
def test_bad_node_config(
    network_copy: Path, change: Callable[[Path], object], field: str | None, message: str
) -> None:
    change(network_copy)
    with pytest.raises(ConfigError) as caught:
        load_node_config(_toml_path(network_copy))
    assert caught.value.field == field, str(caught.value)
    assert re.fullmatch(message, caught.value.message), caught.value.message
    prefix = f"{_toml_path(network_copy)}: " + (f"{field}: " if field else "")
    assert str(caught.value) == prefix + caught.value.message


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change that sets (or with ``...`` deletes) a dotted path; ``[i]`` indexes a list."""

    def change(genesis: dict[str, Any]) -> None:
        target: Any = genesis
        parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
        for part in parts[:-1]:
            target = target[int(part[1:-1])] if part.startswith("[") else target[part]
        last = parts[-1]
        key: Any = int(last[1:-1]) if last.startswith("[") else last
        if value is ...:
            del target[key]
        else:
            target[key] = value

    return change


def _copy_validator_field(
    field: str, source: int, target: int, target_field: str
) -> Callable[[dict[str, Any]], None]:
    def change(genesis: dict[str, Any]) -> None:
        genesis["validators"][target][target_field] = genesis["validators"][source][field]

    return change


def _drop_admin(genesis: dict[str, Any]) -> None:
    genesis["participants"] = [
        p for p in genesis["participants"] if "consortium_admin" not in p["roles"]
    ]


SMALL_ORDER_KEY = "01" + "00" * 31  # the identity point

GENESIS_CASES: list[tuple[str, Callable[[dict[str, Any]], None], str | None, str]] = [
    (
        "chain-id-syntax",
        _set("chain_id", "bad chain"),
        "chain_id",
        r"must be 1-64 letters, digits, '\.', '_' or '-', starting with a letter or digit; "
        r"got the text 'bad chain'",
    ),
    (
        "unknown-suite",
        _set("crypto_suite", "sm9"),
        "crypto_suite",
        r"unknown crypto suite 'sm9' \(known: ed25519-sha256, sm2-sm3\)",
    ),
    (
        "negative-time",
        _set("genesis_time_ms", -1),
        "genesis_time_ms",
        r"must be a non-negative integer \(milliseconds since 1970\), got -1",
    ),
    (
        "unknown-field",
        _set("validator", []),
        "validator",
        r"is not a genesis field \(known: admission, calendar, chain_id, .*\)",
    ),
    (
        "duplicate-validator-id",
        _set("validators[1].id", "node0"),
        "validators[1].id",
        r"'node0' is already used by validators\[0\]",
    ),
    (
        "validator-id-not-dns",
        _set("validators[3].id", "-node3"),
        "validators[3].id",
        r"must be a node id \(1-63 letters, digits or hyphens, .*\), got the text '-node3'",
    ),
    (
        "address-reused",
        _copy_validator_field("api_address", 0, 2, "peer_address"),
        "validators[2].peer_address",
        r"127\.0\.0\.1:\d+ is already used as validators\[0\]\.api_address",
    ),
    (
        "address-syntax",
        _set("validators[1].api_address", "127.0.0.1:0"),
        "validators[1].api_address",
        r"port 0 is out of range 1-65535",
    ),
    (
        "public-key-not-hex",
        _set("validators[1].public_key", "zz" * 32),
        "validators[1].public_key",
        r"must be 64 lower-case hexadecimal characters \(a 32-byte ed25519-sha256 public "
        r"key\), got the text 'zzzz.*'",
    ),
    (
        "public-key-small-order",
        _set("validators[2].public_key", SMALL_ORDER_KEY),
        "validators[2].public_key",
        r"the public key is a small-order point: anyone could forge its signatures",
    ),
    (
        "public-key-reused",
        _copy_validator_field("public_key", 0, 3, "public_key"),
        "validators[3].public_key",
        r"is the same key as validators\[0\]",
    ),
    (
        "unknown-validator-field",
        _set("validators[0].address", "127.0.0.1:1"),
        "validators[0].address",
        r"is not a validator field \(known: api_address, id, peer_address, public_key\)",
    ),
    (
        "watermark-not-multiple",
        _set("consensus.watermark_window", 100),
        "consensus.watermark_window",
        r"100 must be a multiple of checkpoint_interval \(64\)",
    ),
    (
        "watermark-too-small",
        _set("consensus.watermark_window", 64),
        "consensus.watermark_window",
        r"64 must be at least twice checkpoint_interval \(64\), .*",
    ),
    (
        "expiry-horizon-out-of-range",
        _set("admission.tx_expiry_horizon_ms", 2**63 - 1),
        "admission.tx_expiry_horizon_ms",
        r"must be from 60000 to 2592000000, got 9223372036854775807",
    ),
    (
        "tick-out-of-range",
        _set("consensus.tick_ms", 0),
        "consensus.tick_ms",
        r"must be from 1 to 10000, got 0",
    ),
    (
        "fractional-parameter",
        _set("consensus.batch_size_max", 1.5),
        "consensus.batch_size_max",
        r"must be an integer, got a number with a fraction \(1\.5\)",
    ),
    (
        "missing-parameter",
        _set("consensus.view_change_timeout_ms", ...),
        "consensus.view_change_timeout_ms",
        r"is required",
    ),
    (
        "batch-timeout-too-long",
        _set("consensus.batch_timeout_ms", 5000),
        "consensus.batch_timeout_ms",
        r"5000 must be shorter than view_change_timeout_ms \(2000\), .*",
    ),
    (
        "bad-lei",
        _set("participants[1].lei", "5493002ERZU2K9PZDL41"),
        None,
        r"participants\[1\]\.lei is not valid: .*\(LEI_INVALID\)",
    ),
    (
        "no-governance",
        _set("governance", ...),
        "governance",
        r"is required",
    ),
    (
        "quorum-above-admins",
        _set("governance.admin_quorum", 2),
        None,
        r"governance\.admin_quorum must be an integer from 1 to 1 \(the number of genesis "
        r"consortium admins\), got 2",
    ),
    (
        "no-admin",
        _drop_admin,
        None,
        r"genesis 'participants' must include at least one consortium_admin",
    ),
    (
        "bad-calendar",
        _set("calendar", {"holidays": ["2026-02-30"]}),
        None,
        r"calendar\.holidays\[0\] = '2026-02-30' is not a YYYY-MM-DD date",
    ),
]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [case[1:] for case in GENESIS_CASES],
    ids=[case[0] for case in GENESIS_CASES],
)
def test_bad_genesis(
    network_copy: Path,
    change: Callable[[dict[str, Any]], None],
    field: str | None,
    message: str,
) -> None:
    edit_genesis(network_copy, change)
    with pytest.raises(ConfigError) as caught:
        load_genesis(network_copy / "genesis.json")
    assert caught.value.field == field, str(caught.value)
    assert re.fullmatch(message, caught.value.message), caught.value.message


def test_genesis_duplicate_json_key(tmp_path: Path) -> None:
    path = tmp_path / "genesis.json"
    path.write_text('{"chain_id": "a", "chain_id": "b"}')
    with pytest.raises(ConfigError, match=r"genesis\.json: chain_id: appears twice"):
        load_genesis(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", r"is not valid JSON: Expecting property name .* at line 1 column 2"),
        ('{"genesis_time_ms": NaN}', r"is not valid JSON: NaN is not a JSON number"),
        ("[]", r"must hold a JSON object"),
    ],
)
def test_genesis_not_json(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "genesis.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_genesis(path)
    assert re.fullmatch(message, caught.value.message), caught.value.message


def test_error_text_names_the_file_as_given(
    network_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_toml(network_copy, "peer", "listen", "127.0.0.1:99999")
    monkeypatch.chdir(network_copy / "nodes/node0")
    with pytest.raises(ConfigError) as caught:
        load_node_config("node.toml")
    assert str(caught.value) == "node.toml: [peer] listen: port 99999 is out of range 0-65535"


def test_node_config_values_and_relative_paths(network_copy: Path) -> None:
    config = load_node_config(_toml_path(network_copy))
    node_dir = (network_copy / "nodes/node0").resolve()
    assert config.node_id == "node0"
    assert config.genesis_file == (network_copy / "genesis.json").resolve()
    assert config.data_dir == node_dir / "data"
    assert config.peer.ca_cert == (network_copy / "ca/ca.crt").resolve()
    assert config.peer.tls_cert == node_dir / "tls/node.crt"
    assert config.api.max_message_bytes == 4 * 1024 * 1024
    assert config.peer.max_message_bytes == 16 * 1024 * 1024
    assert config.mempool.size_max == 50_000
    assert config.log.level == "info"
    assert config.validator.public_key == config.validator_keypair.public_key
    assert config.genesis.consensus.ticks(config.genesis.consensus.view_change_timeout_ms) == 200
    assert config.genesis.raw["chain_id"] == config.genesis.chain_id == "ibledger-local"
    assert "seed" not in repr(config)


def test_a_validator_added_by_governance_is_checked_against_its_ledger_not_genesis(
    network_copy: Path,
) -> None:
    # Not in genesis, or with a key other than genesis lists: the node checks its id and key
    # against the validator set its ledger records when it starts (node/server.py).
    set_toml(network_copy, "node", "id", "node9")
    with pytest.raises(ConfigError, match="'node9' is not a validator in genesis"):
        load_node_config(_toml_path(network_copy))
    set_toml(network_copy, "node", "membership", "governance")
    # The id is no longer refused; what the CA certified still must match it.
    with pytest.raises(ConfigError, match="is the certificate of node0, not node9"):
        load_node_config(_toml_path(network_copy))
    set_toml(network_copy, "node", "id", "node0")
    set_toml(network_copy, "node", "validator_key", "../node1/keys/validator.key.pem")
    config = load_node_config(_toml_path(network_copy))  # a rotated key: not genesis's
    assert config.validator_keypair.public_key != config.validator.public_key
    set_toml(network_copy, "node", "membership", "elected")
    with pytest.raises(ConfigError, match=r"\[node\] membership"):
        load_node_config(_toml_path(network_copy))


def test_optional_sections_take_defaults(network_copy: Path) -> None:
    drop_section(network_copy, "mempool")
    drop_section(network_copy, "log")
    set_toml(network_copy, "api", "max_concurrent_rpcs", None)
    config = load_node_config(_toml_path(network_copy))
    assert config.mempool.size_max == 50_000
    assert config.log.level == "info"
    assert config.api.max_concurrent_rpcs == 1024
    assert config.audit.segments_max == 16
    assert config.audit.aggregate_interval_ms == 10_000


def test_the_audit_section_sets_the_log_bounds(network_copy: Path) -> None:
    set_toml(network_copy, "audit", "segment_bytes_max", 1 << 20)
    set_toml(network_copy, "audit", "head_interval_ms", 5_000)
    config = load_node_config(_toml_path(network_copy))
    assert config.audit.segment_bytes_max == 1 << 20
    assert config.audit.head_interval_ms == 5_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:7100", HostPort("127.0.0.1", 7100)),
        ("node0.example:7200", HostPort("node0.example", 7200)),
        ("[::1]:7300", HostPort("::1", 7300)),
    ],
)
def test_host_port(text: str, expected: HostPort) -> None:
    assert parse_host_port(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[fe80::zz]:1", r"\[fe80::zz\] is not an IPv6 address"),
        ("bad_host:1", r"'bad_host' is not a valid host name"),
        (":7100", r"the host is missing in ':7100'"),
        (7100, r"must be a \"host:port\" string, got 7100"),
    ],
)
def test_host_port_errors(text: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_host_port(text)
    assert re.fullmatch(message, str(caught.value)), str(caught.value)


def test_manifest_errors(network_copy: Path) -> None:
    path = network_copy / "network.json"
    manifest = json.loads(path.read_text())
    manifest["nodes"][1]["api"] = "127.0.0.1"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ManifestError) as caught:
        load_manifest(network_copy)
    assert caught.value.field == "nodes[1].api" and caught.value.code == "MANIFEST_INVALID"
    assert "network.json: nodes[1].api: must be host:port" in caught.value.message
    manifest["nodes"][1]["api"] = "127.0.0.1:7100"
    path.write_text(json.dumps(manifest).replace('"chain_id"', '"chain_id": "x", "chain_id"', 1))
    with pytest.raises(ManifestError, match="chain_id: appears twice"):
        load_manifest(network_copy)
    path.unlink()
    with pytest.raises(ManifestError, match="does not exist: create a network with") as gone:
        load_manifest(network_copy)
    assert gone.value.code == "NO_NETWORK"
