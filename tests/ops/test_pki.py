"""node/pki.py: the consortium CA, node certificates, and mutual TLS with a real grpc.aio server.

The server is node0 of a network written by ``network init``, listening on 127.0.0.1 port 0 with
``server_credentials`` (client certificates required). Its GetStatus handler answers with the node
id it reads from the caller's certificate through ``peer_node_id(context)``. Every refused client
must fail with UNAVAILABLE, and the server must serve the next good call.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ibledger.node.config import NodeConfig, load_node_config
from ibledger.node.pki import (
    OBSERVER_ROLE,
    VALIDATOR_ROLE,
    PkiError,
    certificate_role,
    certificate_verifier,
    channel_credentials,
    channel_options,
    create_ca,
    issue_node_certificate,
    load_ca,
    node_id_from_certificate,
    peer_node_id,
    server_credentials,
    tls_key_signer,
    verify_node_certificate,
)
from ibledger.proto import ledger_pb2, ledger_pb2_grpc

CALL_TIMEOUT_S = 5.0


class PeerEcho(ledger_pb2_grpc.LedgerServicer):
    """Answers GetStatus with the caller's node id as TLS authenticated it."""

    def __init__(self) -> None:
        self.seen_pems: list[bytes] = []

    async def GetStatus(
        self, request: ledger_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> ledger_pb2.NodeStatus:
        self.seen_pems.extend(context.auth_context().get("x509_pem_cert", []))
        return ledger_pb2.NodeStatus(node_id=peer_node_id(context) or "")


def _pem(key: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _cert_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _self_signed(node_id: str, key: Any, algorithm: Any) -> x509.Certificate:
    """A leaf certificate signed by its own key, with node-like names and usages."""
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(node_id), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(key, algorithm)
    )


@pytest.fixture
def configs(template_network: Path) -> dict[str, NodeConfig]:
    return {
        node_id: load_node_config(template_network / f"nodes/{node_id}/node.toml")
        for node_id in ("node0", "node1")
    }


@pytest.fixture
async def server(configs: dict[str, NodeConfig]) -> AsyncIterator[tuple[int, PeerEcho]]:
    servicer = PeerEcho()
    grpc_server = grpc.aio.server()
    ledger_pb2_grpc.add_LedgerServicer_to_server(servicer, grpc_server)
    port = grpc_server.add_secure_port("127.0.0.1:0", server_credentials(configs["node0"]))
    await grpc_server.start()
    yield port, servicer
    await grpc_server.stop(0)


async def _call(
    port: int, credentials: grpc.ChannelCredentials, expect_server: str = "node0"
) -> ledger_pb2.NodeStatus:
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{port}", credentials, options=channel_options(expect_server)
    ) as channel:
        reply: ledger_pb2.NodeStatus = await ledger_pb2_grpc.LedgerStub(channel).GetStatus(
            ledger_pb2.GetStatusRequest(), timeout=CALL_TIMEOUT_S
        )
        return reply


async def _refused(port: int, credentials: grpc.ChannelCredentials, **kwargs: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _call(port, credentials, **kwargs)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_ca_signed_client_is_accepted_and_identified(
    server: tuple[int, PeerEcho], configs: dict[str, NodeConfig]
) -> None:
    port, servicer = server
    reply = await _call(port, channel_credentials(configs["node1"]))
    assert reply.node_id == "node1"
    # The raw material the transport sees: the peer's PEM certificate maps to its node id.
    assert servicer.seen_pems
    assert node_id_from_certificate(servicer.seen_pems[-1]) == "node1"


async def test_refused_clients_and_the_server_keeps_serving(
    server: tuple[int, PeerEcho], configs: dict[str, NodeConfig], template_network: Path
) -> None:
    port, _ = server
    ca_pem = (template_network / "ca/ca.crt").read_bytes()
    good = channel_credentials(configs["node1"])

    no_client_cert = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    self_signed = grpc.ssl_channel_credentials(
        ca_pem, _pem(key), _cert_pem(_self_signed("node1", key, hashes.SHA256()))
    )
    other = issue_node_certificate(create_ca("another consortium"), "node1")
    other_ca = grpc.ssl_channel_credentials(ca_pem, _pem(other.private_key), other.certificate_pem)
    for refused in (no_client_cert, self_signed, other_ca):
        await _refused(port, refused)
        assert (await _call(port, good)).node_id == "node1"


async def test_client_verifies_the_server_node_id(
    server: tuple[int, PeerEcho], configs: dict[str, NodeConfig]
) -> None:
    port, _ = server
    credentials = channel_credentials(configs["node1"])
    # node0 answers on this port; a client expecting node2 there must refuse the handshake.
    await _refused(port, credentials, expect_server="node2")
    assert (await _call(port, credentials, expect_server="node0")).node_id == "node1"


async def test_grpc_tls_refuses_ed25519_certificates(tmp_path: Path) -> None:
    """Why the PKI uses ECDSA P-256: BoringSSL in grpc finds no common signature algorithm."""
    ca_key = ed25519.Ed25519PrivateKey.generate()
    ca_cert = _self_signed("edca", ca_key, None)
    leaf_key = ed25519.Ed25519PrivateKey.generate()
    leaf = _self_signed("node0", leaf_key, None)
    grpc_server = grpc.aio.server()
    ledger_pb2_grpc.add_LedgerServicer_to_server(PeerEcho(), grpc_server)
    port = grpc_server.add_secure_port(
        "127.0.0.1:0",
        grpc.ssl_server_credentials([(_pem(leaf_key), _cert_pem(leaf))], _cert_pem(leaf)),
    )
    await grpc_server.start()
    try:
        credentials = grpc.ssl_channel_credentials(_cert_pem(leaf), _pem(leaf_key), _cert_pem(leaf))
        await _refused(port, credentials)
    finally:
        await grpc_server.stop(0)
    assert ca_cert.signature_hash_algorithm is None  # really Ed25519-signed


def test_node_certificate_contents(tmp_path: Path) -> None:
    ca = create_ca("test CA")
    cert = issue_node_certificate(ca, "node7", hosts=["10.0.0.7", "node7.bank.example"])
    certificate = cert.certificate
    assert certificate.subject.rfc4514_string() == "CN=node7"
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["node7", "node7.bank.example"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1",
        "10.0.0.7",
    ]
    usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime == datetime.timedelta(days=730)
    short = issue_node_certificate(ca, "node7", valid_days=30).certificate
    assert short.not_valid_after_utc - short.not_valid_before_utc == datetime.timedelta(days=30)
    assert verify_node_certificate(certificate, ca.certificate, node_id="node7") == "node7"


def test_node_id_from_pem_der_and_text() -> None:
    cert = issue_node_certificate(create_ca(), "node3")
    der = cert.certificate.public_bytes(serialization.Encoding.DER)
    assert node_id_from_certificate(cert.certificate_pem) == "node3"
    assert node_id_from_certificate(cert.certificate_pem.decode()) == "node3"
    assert node_id_from_certificate(der) == "node3"


def test_node_id_requires_matching_san() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "node1")])
    mismatched = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("node2")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(PkiError, match="do not include DNS:node1"):
        node_id_from_certificate(_cert_pem(mismatched))
    with pytest.raises(PkiError, match="not a PEM or DER"):
        node_id_from_certificate(b"garbage")


def test_verify_rejects_expired_and_foreign(tmp_path: Path) -> None:
    ca = create_ca()
    cert = issue_node_certificate(ca, "node0", valid_days=1)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=2)
    with pytest.raises(PkiError, match="expired on"):
        verify_node_certificate(cert.certificate, ca.certificate, now=later)
    with pytest.raises(PkiError, match="was not issued by the consortium CA"):
        verify_node_certificate(cert.certificate, create_ca("other").certificate)
    with pytest.raises(PkiError, match="is the certificate of node0, not node1"):
        verify_node_certificate(cert.certificate, ca.certificate, node_id="node1")
    with pytest.raises(PkiError, match="must be a DNS label"):
        issue_node_certificate(ca, "node_0")


def test_ca_files_round_trip(tmp_path: Path) -> None:
    ca = create_ca("round trip CA")
    _, key_path = ca.write(tmp_path / "ca")
    assert key_path.stat().st_mode & 0o777 == 0o600
    loaded = load_ca(tmp_path / "ca")
    assert loaded.certificate == ca.certificate
    with pytest.raises(FileExistsError):
        ca.write(tmp_path / "ca")  # never overwrites a key
    for mode in (0o644, 0o640):
        key_path.chmod(mode)
        with pytest.raises(PkiError, match="open to its group or to every user"):
            load_ca(tmp_path / "ca")
    assert "PRIVATE" not in repr(loaded)


def test_certificate_role_marks_observers_only() -> None:
    ca = create_ca()
    validator = issue_node_certificate(ca, "node0")
    observer = issue_node_certificate(ca, "observer1", role=OBSERVER_ROLE)
    assert certificate_role(validator.certificate) == VALIDATOR_ROLE
    assert certificate_role(observer.certificate) == OBSERVER_ROLE
    assert certificate_role(observer.certificate_pem) == OBSERVER_ROLE
    # The role is an extra name, not a second identity: the node id is still the CN.
    assert verify_node_certificate(observer.certificate, ca.certificate) == "observer1"
    with pytest.raises(PkiError, match="role 'auditor' is not a node role"):
        issue_node_certificate(ca, "node1", role="auditor")


def test_certificate_role_refuses_other_organizational_units() -> None:
    ca = create_ca()
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "node5"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "validators"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(ca.private_key, hashes.SHA256())
    )
    with pytest.raises(PkiError, match="organizational unit must be absent or 'observer'"):
        certificate_role(certificate)


def test_a_tls_key_signs_what_its_certificate_verifies_and_no_other() -> None:
    """An observer signs its audit heads with its TLS key; its certificate checks them."""
    ca = create_ca()
    mine = issue_node_certificate(ca, "observer0", role=OBSERVER_ROLE)
    other = issue_node_certificate(ca, "node0")
    pem = mine.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signature = tls_key_signer(pem)(b"head 7")
    assert certificate_verifier(mine.certificate)(b"head 7", signature)
    assert not certificate_verifier(mine.certificate)(b"head 8", signature)
    assert not certificate_verifier(other.certificate)(b"head 7", signature)
    assert not certificate_verifier(mine.certificate)(b"head 7", b"\x00" * 8)
