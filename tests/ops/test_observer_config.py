"""Observer nodes at the edge: ``network add-observer`` and every check ``load_config`` makes on an
observer's node.toml (role, validators followed, settings an observer has no use for, its
certificate's role), plus the validator side of the same checks.

Each bad case starts from an observer written by ``network add-observer`` into a copy of the
template network, changes one thing, and checks the field and the message exactly.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ibledger.cli.manifest import load_manifest
from ibledger.node.config import (
    ConfigError,
    ObserverConfig,
    format_toml,
    load_config,
    load_node_config,
)
from ibledger.node.keyfile import key_file_is_encrypted
from ibledger.node.pki import (
    OBSERVER_ROLE,
    VALIDATOR_ROLE,
    certificate_role,
    issue_node_certificate,
    load_ca,
    read_certificate,
)

from .conftest import CliRunner, run_cli

OBSERVER = "observer1"


@pytest.fixture
def observer_network(network_copy: Path) -> Path:
    assert run_cli("network", "add-observer", "--network", str(network_copy)) == 0
    return network_copy


def _observer_toml(network: Path) -> Path:
    return network / "nodes" / OBSERVER / "node.toml"


def edit_observer(network: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = _observer_toml(network)
    document = tomllib.loads(path.read_text())
    change(document)
    path.write_text(format_toml(document))


def _set(section: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        if value is None:
            del document[section][key]
        else:
            document.setdefault(section, {})[key] = value

    return change


def _validator_certificate(network: Path) -> Callable[[dict[str, Any]], None]:
    """A certificate for the observer's id, but without the observer role."""
    cert = issue_node_certificate(load_ca(network / "ca"), OBSERVER)
    tls = network / "nodes" / OBSERVER / "tls"
    cert.write(tls / "plain.crt", tls / "plain.key")

    def change(document: dict[str, Any]) -> None:
        document["peer"]["tls_cert"] = "tls/plain.crt"
        document["peer"]["tls_key"] = "tls/plain.key"

    return change


def test_add_observer_writes_a_loadable_observer(observer_network: Path) -> None:
    config = load_config(_observer_toml(observer_network))
    assert isinstance(config, ObserverConfig)
    assert config.node_id == OBSERVER
    assert config.observer.validators == ("node0", "node1", "node2", "node3")
    assert certificate_role(read_certificate(config.peer.tls_cert)) == OBSERVER_ROLE
    manifest = load_manifest(observer_network)
    assert [o.id for o in manifest.observers] == [OBSERVER]
    assert [n.id for n in manifest.nodes] == ["node0", "node1", "node2", "node3"]
    assert [p.id for p in manifest.processes][-1] == OBSERVER
    targets = json.loads((observer_network / "prometheus-targets.json").read_text())
    assert targets[-1]["labels"] == {"node": OBSERVER, "role": OBSERVER_ROLE}
    observer = manifest.observer(OBSERVER)
    assert observer is not None
    used = {a.port for p in manifest.processes for a in (p.api, p.metrics)}
    assert len(used) == 2 * len(manifest.processes)  # no port shared with a validator


def test_validators_keep_loading_as_validators(observer_network: Path) -> None:
    config = load_config(observer_network / "nodes/node0/node.toml")
    assert not isinstance(config, ObserverConfig)
    assert certificate_role(read_certificate(config.peer.tls_cert)) == VALIDATOR_ROLE


def test_a_validator_vote_record_path_is_read_relative_to_its_node_toml(
    observer_network: Path,
) -> None:
    assert load_config(observer_network / "nodes/node0/node.toml").vote_record is None  # type: ignore[union-attr]
    _edit_validator(observer_network, _set("node", "vote_record", "../records/node0.votes"))
    config = load_config(observer_network / "nodes/node0/node.toml")
    assert not isinstance(config, ObserverConfig)
    assert config.vote_record == observer_network / "nodes/records/node0.votes"


def test_load_node_config_refuses_an_observer(observer_network: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_node_config(_observer_toml(observer_network))
    assert caught.value.field == "[node] role"


def test_a_second_observer_gets_the_next_name(observer_network: Path, cli: CliRunner) -> None:
    code, out, _ = cli("network", "add-observer", "--dir", str(observer_network), "--json")
    assert code == 0
    assert json.loads(out)["node_id"] == "observer2"


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        ("node1", "NODE_EXISTS", "'node1' is already the id of a validator of this network"),
        (OBSERVER, "NODE_EXISTS", f"'{OBSERVER}' is already the id of an observer"),
        ("dr_site", "BAD_ARGUMENT", "'dr_site' is not a node id"),
    ],
)
def test_add_observer_refuses_bad_names(
    observer_network: Path, cli: CliRunner, name: str, code: str, message: str
) -> None:
    before = (observer_network / "network.json").read_text()
    status, _, err = cli("network", "add-observer", "--dir", str(observer_network), "--name", name)
    assert status != 0
    assert f"{code}: " in err and message in err, err
    assert (observer_network / "network.json").read_text() == before


# (case id, change (given the network), field, message as a regular expression)
OBSERVER_CASES: list[tuple[str, Callable[[Path], Callable[[dict[str, Any]], None]], str, str]] = [
    (
        "unknown-role",
        lambda n: _set("node", "role", "auditor"),
        "[node] role",
        r"must be one of validator, observer, got the text 'auditor'",
    ),
    (
        "observer-with-validator-key",
        lambda n: _set("node", "validator_key", "../node0/keys/validator.key.pem"),
        "[node] validator_key",
        r"an observer holds no consensus key and signs no consensus message; remove it",
    ),
    (
        "observer-with-vote-record",
        lambda n: _set("node", "vote_record", "keys/votes"),
        "[node] vote_record",
        r"an observer signs no vote to keep a record of; remove it",
    ),
    (
        "observer-listening-for-peers",
        lambda n: _set("peer", "listen", "127.0.0.1:1"),
        "[peer] listen",
        r"an observer takes no peer connections and sends no consensus messages; "
        r"remove this setting",
    ),
    (
        "observer-with-peer-queue",
        lambda n: _set("peer", "outbound_queue_max", 10),
        "[peer] outbound_queue_max",
        r"an observer takes no peer connections .*",
    ),
    (
        "observer-with-mempool",
        lambda n: _set("mempool", "size_max", 10),
        "[mempool]",
        r"an observer admits no transactions; remove this section",
    ),
    (
        "observer-with-audit",
        lambda n: _set("audit", "segments_max", 4),
        "[audit]",
        r"an observer keeps no audit log .*; remove this section",
    ),
    (
        "observer-with-a-validator-id",
        lambda n: _set("node", "id", "node2"),
        "[node] id",
        r"'node2' is a validator in genesis\.json; an observer needs an id of its own",
    ),
    (
        "follows-an-unknown-validator",
        lambda n: _set("observer", "validators", ["node0", "node9"]),
        "[observer] validators[1]",
        r"'node9' is not a validator in genesis\.json \(validators: node0, node1, node2, node3\)",
    ),
    (
        "follows-a-validator-twice",
        lambda n: _set("observer", "validators", ["node0", "node0"]),
        "[observer] validators[1]",
        r"'node0' is listed twice",
    ),
    (
        "follows-nobody",
        lambda n: _set("observer", "validators", []),
        "[observer] validators",
        r"must name at least one validator",
    ),
    (
        "follows-a-bad-id",
        lambda n: _set("observer", "validators", ["node_0"]),
        "[observer] validators.0",
        r"'node_0' is not a node id: .*",
    ),
    (
        "poll-too-fast",
        lambda n: _set("observer", "poll_interval_ms", 1),
        "[observer] poll_interval_ms",
        r"must be from 10 to 60000, got 1",
    ),
    (
        "unknown-observer-setting",
        lambda n: _set("observer", "follow", True),
        "[observer] follow",
        r"is not a known setting \(known: poll_interval_ms, validators\)",
    ),
    (
        "certificate-without-the-observer-role",
        _validator_certificate,
        "[peer] tls_cert",
        r".*/tls/plain\.crt is a validator's certificate, but this node is an observer; "
        r"issue one with 'ibledger network add-observer'",
    ),
    (
        "certificate-of-a-validator",
        lambda n: _set("peer", "tls_cert", "../node0/tls/node.crt"),
        "[peer] tls_cert",
        r".*/node0/tls/node\.crt is the certificate of node0, not observer1",
    ),
]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [case[1:] for case in OBSERVER_CASES],
    ids=[case[0] for case in OBSERVER_CASES],
)
def test_bad_observer_config(
    observer_network: Path,
    change: Callable[[Path], Callable[[dict[str, Any]], None]],
    field: str,
    message: str,
) -> None:
    edit_observer(observer_network, change(observer_network))
    with pytest.raises(ConfigError) as caught:
        load_config(_observer_toml(observer_network))
    assert caught.value.field == field, str(caught.value)
    assert re.fullmatch(message, caught.value.message), caught.value.message


def test_observer_without_observer_section_follows_every_validator(
    observer_network: Path,
) -> None:
    edit_observer(observer_network, lambda document: document.pop("observer"))
    config = load_config(_observer_toml(observer_network))
    assert isinstance(config, ObserverConfig)
    assert config.observer.validators == ("node0", "node1", "node2", "node3")


def _edit_validator(network: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = network / "nodes/node0/node.toml"
    document = tomllib.loads(path.read_text())
    change(document)
    path.write_text(format_toml(document))


def _observer_certificate_for_node0(network: Path) -> Callable[[dict[str, Any]], None]:
    cert = issue_node_certificate(load_ca(network / "ca"), "node0", role=OBSERVER_ROLE)
    tls = network / "nodes/node0/tls"
    cert.write(tls / "observer.crt", tls / "observer.key")

    def change(document: dict[str, Any]) -> None:
        document["peer"]["tls_cert"] = "tls/observer.crt"
        document["peer"]["tls_key"] = "tls/observer.key"

    return change


VALIDATOR_CASES: list[tuple[str, Callable[[Path], Callable[[dict[str, Any]], None]], str, str]] = [
    (
        "validator-without-key",
        lambda n: _set("node", "validator_key", None),
        "[node] validator_key",
        r"is required for a validator",
    ),
    (
        "validator-without-peer-listen",
        lambda n: _set("peer", "listen", None),
        "[peer] listen",
        r"is required for a validator",
    ),
    (
        "validator-with-observer-section",
        lambda n: _set("observer", "poll_interval_ms", 100),
        "[observer]",
        r"is a section of an observer's node\.toml \(role = \"observer\"\) only",
    ),
    (
        "validator-with-an-observer-certificate",
        _observer_certificate_for_node0,
        "[peer] tls_cert",
        r".*/tls/observer\.crt is an observer's certificate, but this node is a validator; "
        r"a validator's certificate has no organizational unit",
    ),
]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [case[1:] for case in VALIDATOR_CASES],
    ids=[case[0] for case in VALIDATOR_CASES],
)
def test_bad_validator_role_config(
    network_copy: Path,
    change: Callable[[Path], Callable[[dict[str, Any]], None]],
    field: str,
    message: str,
) -> None:
    _edit_validator(network_copy, change(network_copy))
    with pytest.raises(ConfigError) as caught:
        load_config(network_copy / "nodes/node0/node.toml")
    assert caught.value.field == field, str(caught.value)
    assert re.fullmatch(message, caught.value.message), caught.value.message


def test_add_observer_to_an_encrypted_network(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CA key is decrypted with the network's passphrase, the observer's TLS key is
    encrypted under it, and its node.toml says keys must be encrypted."""
    monkeypatch.delenv("IBLEDGER_PASSPHRASE", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    passphrase = b"one passphrase for the network"
    pass_file = tmp_path / "pass"
    pass_file.write_bytes(passphrase + b"\n")
    pass_file.chmod(0o600)
    network = tmp_path / "network"
    init = ["network", "init", "--dir", str(network), "--nodes", "4", "--encrypt"]
    assert cli(*init, "--passphrase-file", str(pass_file))[0] == 0
    code, _, err = cli("network", "add-observer", "--network", str(network))
    assert code != 0 and "PASSPHRASE_REQUIRED: " in err, err
    assert not (network / "nodes" / OBSERVER).exists()
    code, _, err = cli(
        "network", "add-observer", "--network", str(network), "--passphrase-file", str(pass_file)
    )
    assert code == 0, err
    key_file = network / "nodes" / OBSERVER / "tls" / "node.key"
    assert key_file_is_encrypted(key_file)
    config = load_config(_observer_toml(network), passphrase=passphrase)
    assert isinstance(config, ObserverConfig) and config.keys.encrypted
    with pytest.raises(ConfigError) as caught:
        load_config(_observer_toml(network), passphrase=b"not the passphrase")
    assert caught.value.field == "[peer] tls_key"


def test_add_observer_refuses_a_passphrase_for_a_plaintext_network(
    observer_network: Path, cli: CliRunner, tmp_path: Path
) -> None:
    pass_file = tmp_path / "pass"
    pass_file.write_bytes(b"unused\n")
    pass_file.chmod(0o600)
    code, _, err = cli(
        "network", "add-observer", "--dir", str(observer_network), "--passphrase-file",
        str(pass_file),
    )  # fmt: skip
    assert code != 0
    assert "BAD_ARGUMENT: --passphrase-file is for a network whose keys are encrypted" in err
