"""cli/deploy.py: ``network init --hosts``, parsing and errors, the per-host bundles (and that none
holds another node's private key), and genesis, configs, certificates and manifest agreeing."""

from __future__ import annotations

import ipaddress
import json
import shutil
import stat
import tomllib
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest
from cryptography import x509

from ibledger.cli import deploy
from ibledger.cli.manifest import load_manifest
from ibledger.node.config import load_genesis, load_node_config
from ibledger.node.pki import load_ca, read_certificate, verify_node_certificate

from .conftest import CliRunner

IPAddress = IPv4Address | IPv6Address
HOSTS = "bank-a.example.com,10.0.0.2:8000,[2001:db8::7],bank-a.example.com:7060"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- parsing -------------------------------------------------------------------------------------


def test_hosts_parse_names_addresses_and_base_ports() -> None:
    specs = deploy.parse_hosts(" bank-a.example.com , 10.0.0.2:8000,[2001:db8::7],[::1]:9000,h")
    assert [(s.host, s.base_port) for s in specs] == [
        ("bank-a.example.com", 7050),
        ("10.0.0.2", 8000),
        ("2001:db8::7", 7050),
        ("::1", 9000),
        ("h", 7050),
    ]
    assert specs[2].text == "[2001:db8::7]:7050"
    # Two nodes on one host with port ranges that do not overlap.
    assert len(deploy.parse_hosts("127.0.0.1:7050,127.0.0.1:7053,localhost:7050")) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no host given"),
        ("a,,b", "--hosts entry 2 is empty"),
        ("a,", "--hosts entry 2 is empty"),
        ("a:http", "the port in 'a:http' must be a number"),
        ("a:70000", "port 70000 is out of range"),
        ("a:0", "port 0 is out of range"),
        ("a:65534", "base port 65534 leaves no room"),
        ("0.0.0.0", "listen-everywhere address"),
        ("[::]:7050", "listen-everywhere address"),
        ("2001:db8::7", "write an IPv6 address in brackets"),
        ("999.1.1.1", "'999.1.1.1' is not an IPv4 address"),
        ("[zz::1]", "is not an IPv6 address"),
        ("-bad-.example", "is not a valid host name"),
        ("under_score.example", "is not a valid host name"),
        ("a:7050,b,A:7052", "a:7050 and A:7052 share ports"),
    ],
)
def test_hosts_errors_name_the_entry_and_the_reason(text: str, message: str) -> None:
    with pytest.raises(deploy.HostsError) as caught:
        deploy.parse_hosts(text)
    assert message in str(caught.value)


def test_too_many_hosts_is_refused() -> None:
    with pytest.raises(deploy.HostsError, match="at most 2 hosts, got 3"):
        deploy.parse_hosts("a,b,c", nodes_max=2)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--hosts", "a,b", "--docker"], "--hosts and --docker exclude each other"),
        (["--hosts", "a,b", "--nodes", "3"], "--nodes 3 disagrees with --hosts"),
        (["--hosts", "a,,b"], "--hosts entry 2 is empty"),
        (["--hosts", "a", "--listen", "eth0"], "--listen: 'eth0' is not an IP address"),
        (["--hosts", "a", "--image", "x"], "--image needs --docker"),
        (["--listen", "0.0.0.0"], "--listen needs --hosts or --docker"),
        (["--image", "x"], "--image needs --hosts or --docker"),
        (["--docker", "--listen", "::"], "--listen needs --hosts"),
        (["--docker", "--nodes", "0"], "--nodes must be from 1 to 64"),
        (["--docker", "--image", "bad image"], "--image must be an image reference"),
        (["--docker", "--encrypt"], "leave out --encrypt"),
    ],
)
def test_init_refuses_bad_placement_options(
    tmp_path: Path, cli: CliRunner, arguments: list[str], message: str
) -> None:
    directory = tmp_path / "network"
    code, _, err = cli("network", "init", "--dir", str(directory), *arguments)
    assert code == 1
    assert "BAD_ARGUMENT" in err and message in err, err
    assert not directory.exists() or not any(directory.iterdir())


# --- a network on four hosts ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def hosts_network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from .conftest import run_cli

    directory = tmp_path_factory.mktemp("hosts") / "network"
    assert run_cli("network", "init", "--dir", str(directory), "--hosts", HOSTS) == 0
    return directory


def _san_names(certificate: x509.Certificate) -> tuple[list[str], list[IPAddress]]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)


EXPECTED = [
    ("node0", "bank-a.example.com", 7050, "0.0.0.0"),
    ("node1", "10.0.0.2", 8000, "0.0.0.0"),
    ("node2", "2001:db8::7", 7050, "::"),
    ("node3", "bank-a.example.com", 7060, "0.0.0.0"),
]


def test_genesis_configs_certificates_and_manifest_agree(hosts_network: Path) -> None:
    directory = hosts_network
    genesis = load_genesis(directory / "genesis.json")
    manifest = load_manifest(directory)
    ca = load_ca(directory / "ca")
    assert genesis.validator_ids == tuple(node_id for node_id, *_ in EXPECTED)
    targets = json.loads((directory / "prometheus-targets.json").read_text())
    for (node_id, host, base, listen), node, target in zip(
        EXPECTED, manifest.nodes, targets, strict=True
    ):
        entry = genesis.validator(node_id)
        assert entry is not None and node.id == node_id
        assert (entry.peer_address.host, entry.peer_address.port) == (host, base)
        assert (entry.api_address.host, entry.api_address.port) == (host, base + 1)
        assert (node.peer, node.api) == (entry.peer_address, entry.api_address)
        assert (node.metrics.host, node.metrics.port) == (host, base + 2)
        assert target == {"targets": [str(node.metrics)], "labels": {"node": node_id}}
        for config_path in (node.config, directory / "bundles" / node_id / "node.toml"):
            config = load_node_config(config_path)
            assert config.node_id == node_id
            # Bound on every interface (of the host's address family), advertised by name.
            assert (config.peer.listen.host, config.peer.listen.port) == (listen, base)
            assert (config.api.listen.host, config.api.listen.port) == (listen, base + 1)
            assert (config.metrics.listen.host, config.metrics.listen.port) == (listen, base + 2)
            certificate = read_certificate(config.peer.tls_cert)
            verify_node_certificate(certificate, ca.certificate, node_id=node_id)
            dns, ips = _san_names(certificate)
            assert node_id in dns  # what peers verify (the name override)
            if host[0].isdigit() or ":" in host:
                assert ipaddress.ip_address(host) in ips and host not in dns
            else:
                assert host in dns


def _private_key_files(directory: Path) -> dict[Path, bytes]:
    """Every private key the network holds, outside the bundles."""
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and "bundles" not in path.relative_to(directory).parts:
            data = path.read_bytes()
            if b"PRIVATE KEY-----" in data:
                found[path.relative_to(directory)] = data
    return found


def test_each_bundle_holds_its_node_and_no_other_private_key(hosts_network: Path) -> None:
    directory = hosts_network
    keys = _private_key_files(directory)
    # The CA key, 4 x 2 node keys and the demo identities' keys.
    assert Path("ca/ca.key") in keys and len(keys) >= 1 + 4 * 2 + 9
    genesis = (directory / "genesis.json").read_bytes()
    ca_cert = (directory / "ca/ca.crt").read_bytes()
    assert sorted(p.name for p in (directory / "bundles").iterdir()) == [e[0] for e in EXPECTED]
    assert _mode(directory / "bundles") == 0o700
    for node_id, host, base, _ in EXPECTED:
        bundle = directory / "bundles" / node_id
        files = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
        assert files == {
            "node.toml",
            "genesis.json",
            "ca.crt",
            "keys/validator.key.pem",
            "tls/node.crt",
            "tls/node.key",
            "README.txt",
        }
        assert (bundle / "data").is_dir() and not any((bundle / "data").iterdir())
        assert (bundle / "genesis.json").read_bytes() == genesis  # byte for byte
        assert (bundle / "ca.crt").read_bytes() == ca_cert
        own = {
            Path(f"nodes/{node_id}/keys/validator.key.pem"): "keys/validator.key.pem",
            Path(f"nodes/{node_id}/tls/node.key"): "tls/node.key",
        }
        for source, inside in own.items():
            assert (bundle / inside).read_bytes() == keys[source]
            assert _mode(bundle / inside) == 0o600
        for sub in ("keys", "tls"):
            assert _mode(bundle / sub) == 0o700
        # No other private key: neither the CA's, nor another node's, nor an identity's; and
        # no file but the two own key files holds a private key at all.
        for name in files:
            data = (bundle / name).read_bytes()
            for source, key in keys.items():
                if source not in own:
                    assert key not in data and data not in key, (node_id, name, source)
            assert (b"PRIVATE KEY-----" in data) == (name in own.values()), (node_id, name)

        readme = (bundle / "README.txt").read_text()
        assert f"for the host {host}" in readme
        assert "ibledger node start --config node.toml" in readme
        metrics = f"{'[' + host + ']' if ':' in host else host}:{base + 2}"
        assert f"http://{metrics}/healthz" in readme and f"http://{metrics}/readyz" in readme
        for port in (base, base + 1, base + 2):
            assert f"     {port} " in readme
        for other, other_host, other_base, _ in EXPECTED:
            peer = f"{'[' + other_host + ']' if ':' in other_host else other_host}:{other_base}"
            assert (f"{other:<8} {peer}\n" in readme) == (other != node_id)  # peers it dials


def test_bundle_paths_stay_inside_the_bundle(hosts_network: Path) -> None:
    bundle = hosts_network / "bundles" / "node1"
    with (bundle / "node.toml").open("rb") as handle:
        document = tomllib.load(handle)
    paths = [
        document["node"]["genesis_file"],
        document["node"]["data_dir"],
        document["node"]["validator_key"],
        document["peer"]["tls_cert"],
        document["peer"]["tls_key"],
        document["peer"]["ca_cert"],
        document["log"]["file"],
    ]
    for path in paths:
        assert not Path(path).is_absolute() and ".." not in Path(path).parts, path
    # The bundle moved elsewhere still loads: nothing in it points outside it.
    moved = hosts_network.parent / "elsewhere" / "node1"
    shutil.copytree(bundle, moved)
    assert load_node_config(moved / "node.toml").node_id == "node1"


def test_force_replaces_a_hosts_network_and_default_init_writes_no_bundles(
    tmp_path: Path, cli: CliRunner
) -> None:
    directory = tmp_path / "network"
    code, out, err = cli("network", "init", "--dir", str(directory), "--hosts", "h1,h2", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["deployment"] == "hosts"
    assert summary["bundles"] == ["bundles/node0", "bundles/node1"]
    code, _, err = cli("network", "init", "--dir", str(directory), "--nodes", "1", "--force")
    assert code == 0, err
    assert not (directory / "bundles").exists()
    manifest = load_manifest(directory)
    assert [node.id for node in manifest.nodes] == ["node0"]
    assert manifest.nodes[0].api.host == "127.0.0.1"  # the default, unchanged
    assert load_node_config(manifest.nodes[0].config).api.listen.host == "127.0.0.1"


def test_encrypted_bundles_keep_their_keys_encrypted(tmp_path: Path, cli: CliRunner) -> None:
    pass_file = tmp_path / "pass"
    pass_file.write_text("bundle passphrase\n")
    pass_file.chmod(0o600)
    directory = tmp_path / "network"
    code, _, err = cli("network", "init", "--dir", str(directory), "--hosts", "h1",
                       "--encrypt", "--passphrase-file", str(pass_file))  # fmt: skip
    assert code == 0, err
    bundle = directory / "bundles/node0"
    for name in ("keys/validator.key.pem", "tls/node.key"):
        assert (bundle / name).read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert "--passphrase-file" in (bundle / "README.txt").read_text()
    config = load_node_config(bundle / "node.toml", passphrase=b"bundle passphrase")
    assert config.keys.encrypted
