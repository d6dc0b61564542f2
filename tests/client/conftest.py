"""A small consortium on disk (keys, genesis, network manifest) served by a fake node, and a
runner that calls the ``ibledger`` CLI in-process."""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from ibledger.cli import main as cli_main
from ibledger.cli.client import Client
from ibledger.contracts.testing import fabricate_lei, fabricate_uscc, timestamp_ms_of
from ibledger.node.crypto import KeyPair, generate_keypair, write_private_key
from ibledger.node.ledger import Ledger

from .fake_node import FakeNode, serve

CHAIN_ID = "ibledger-client-test"
GENESIS_TIME_MS = timestamp_ms_of("2026-01-01")
BUSINESS_DAY = "2026-03-02"  # a Monday: the fake node's blocks carry this date

IDENTITIES: dict[str, tuple[list[str], dict[str, str]]] = {
    "ADMIN": (["consortium_admin"], {}),
    "ADMIN2": (["consortium_admin"], {}),
    "ADMIN3": (["consortium_admin"], {}),
    "ICBC": (["bank"], {"lei": "5493002ERZU2K9PZDL40", "uscc": "91100000100003962T"}),
    "CIB": (["bank"], {"lei": "300300C1030935001303"}),
    "SPDB": (["bank"], {"lei": "300300C1031031001330", "uscc": "91310000631295002H"}),
    "HUAWEI": (["enterprise"], {"uscc": "914403001922038216"}),
    "SUPPLIER": (["enterprise"], {"uscc": fabricate_uscc(2)}),
    "PBOC": (["central_bank"], {"lei": fabricate_lei(2)}),
    "CSDC": (["registrar"], {"lei": fabricate_lei(1)}),
    "REGULATOR": (["regulator"], {}),
}
VALIDATORS = ("v0", "v1", "v2", "v3")


@dataclass
class Network:
    directory: Path
    genesis: dict[str, Any]
    keys: dict[str, KeyPair]
    validator_keys: dict[str, KeyPair]
    node: FakeNode
    ledger: Ledger
    address: str
    servers: list[grpc.Server] = field(default_factory=list)

    def client(self, identity: str | None = "ICBC") -> Client:
        return Client.from_network(self.directory, identity)

    def write_manifest(self, addresses: list[str]) -> None:
        manifest = {
            "chain_id": CHAIN_ID,
            "genesis": "genesis.json",
            "created_by": "tests",  # an extra field a reader must tolerate
            "nodes": [
                {
                    "id": f"node{i}",
                    "api": address,
                    "peer": "127.0.0.1:1",
                    "metrics": "127.0.0.1:2",
                    "dir": f"nodes/node{i}",
                    "config": f"nodes/node{i}/node.toml",
                }
                for i, address in enumerate(addresses)
            ],
            "identities": {
                name: {
                    "participant": name,
                    "key_file": f"identities/{name}.key.pem",
                    "roles": roles,
                }
                for name, (roles, _) in IDENTITIES.items()
            },
        }
        (self.directory / "network.json").write_text(json.dumps(manifest, indent=2))


def make_genesis(keys: dict[str, KeyPair], validators: dict[str, KeyPair]) -> dict[str, Any]:
    return {
        "chain_id": CHAIN_ID,
        "crypto_suite": "ed25519-sha256",
        "genesis_time_ms": GENESIS_TIME_MS,
        "participants": [
            {
                "id": name,
                "name": f"{name} (test)",
                "roles": roles,
                **codes,
                "keys": [{"suite": "ed25519-sha256", "public_key": keys[name].public_key.hex()}],
            }
            for name, (roles, codes) in IDENTITIES.items()
        ],
        "governance": {"admin_quorum": 2},
        "validators": [
            {
                "id": rid,
                "public_key": keypair.public_key.hex(),
                "api_address": f"127.0.0.1:{7000 + index}",
                "peer_address": f"127.0.0.1:{7100 + index}",
            }
            for index, (rid, keypair) in enumerate(validators.items())
        ],
    }


@pytest.fixture
def network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Network]:
    home = tmp_path / "home"
    directory = home / "network"
    (directory / "identities").mkdir(parents=True)
    monkeypatch.setenv("IBLEDGER_HOME", str(home))
    monkeypatch.delenv("IBLEDGER_AS", raising=False)
    monkeypatch.delenv("IBLEDGER_PASSPHRASE", raising=False)
    # Clients and the fake node share one clock, as on a real network: the business day its
    # blocks carry (expiries are checked against block time, within the chain's horizon).
    monkeypatch.setenv(
        "IBLEDGER_CLOCK_OFFSET_MS", str(timestamp_ms_of(BUSINESS_DAY) - int(time.time() * 1000))
    )
    keys = {name: generate_keypair() for name in IDENTITIES}
    for name, keypair in keys.items():
        write_private_key(directory / "identities" / f"{name}.key.pem", keypair)
    validators = {rid: generate_keypair() for rid in VALIDATORS}
    genesis = make_genesis(keys, validators)
    (directory / "genesis.json").write_text(json.dumps(genesis, indent=2))
    ledger = Ledger.open(tmp_path / "ledger", genesis, verifier_workers=1)
    node = FakeNode(ledger, validators, clock_ms=timestamp_ms_of(BUSINESS_DAY))
    server, address = serve(node)
    net = Network(directory, genesis, keys, validators, node, ledger, address, [server])
    net.write_manifest([address])
    try:
        yield net
    finally:
        for running in net.servers:
            running.stop(None)
        ledger.close()


@pytest.fixture
def unused_port() -> int:
    """A loopback port with nothing listening (bound and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def error(self) -> Any:
        return json.loads(self.err)


@pytest.fixture
def cli(network: Network, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``ibledger ARGS...`` in-process through the real entry point."""

    def run(*argv: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = cli_main.main(list(argv))
            except SystemExit as exc:  # argparse usage errors and --help
                code = int(exc.code or 0)
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


def package_no(serial: int, kind_digit: str = "5") -> str:
    """A 30-digit bill number registered on the fake node's business day."""
    return f"{kind_digit}102100099996{BUSINESS_DAY.replace('-', '')}{serial:08d}0"
