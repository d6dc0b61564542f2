"""The consortium PKI: one CA, one TLS certificate per node, and the gRPC credentials built on them.

Theory of operation
-------------------
Peer links are mutually authenticated TLS (docs/design.md sections 3 and 7). The consortium CA is a
self-signed certificate whose private key stays with the operator; it signs one certificate per
node. A node certificate names its node twice: subject CN = node id, and SAN DNS:<node id> (plus
the IP addresses and host names the node listens on). It carries both serverAuth and clientAuth,
because every node is a server for some links and a client for others.

* Key type: ECDSA P-256 with SHA-256 signatures. gRPC's TLS stack (BoringSSL) refuses Ed25519
  certificates: the handshake fails with NO_COMMON_SIGNATURE_ALGORITHMS, so Ed25519 stays the
  consensus signing key only (``keys/validator.key.pem``) and never appears in TLS.
* Servers require a client certificate (``require_client_auth=True``) that chains to the CA;
  a connection without one, with a self-signed one or with one from another CA fails the
  handshake and the client's call ends with UNAVAILABLE.
* Clients dial peers by address (often 127.0.0.1) but verify the certificate against the peer's
  node id: ``channel_options(node_id)`` sets ``grpc.ssl_target_name_override``, so the server's
  certificate must carry SAN DNS:<node id>; a certificate of another node is refused.
* A server maps an authenticated connection to a validator id with ``peer_node_id(context)``,
  which reads the peer's certificate from ``context.auth_context()``. The CN is the identity; the
  SAN must repeat it, so a certificate whose two names disagree is never trusted.

Private keys are PKCS#8 PEM files created with mode 0600 and never overwritten, optionally
encrypted under a passphrase (``keyfile`` owns the format).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .crypto import KeyFileError
from .keyfile import read_key_file, write_key_file
from .validator_set import NODE_ID_PATTERN

if TYPE_CHECKING:
    from .config import NodeConfig, ObserverConfig

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "CA_VALID_DAYS",
    "NODE_CERT_VALID_DAYS",
    "NODE_ID_PATTERN",
    "OBSERVER_ROLE",
    "VALIDATOR_ROLE",
    "CertificateAuthority",
    "NodeCertificate",
    "PkiError",
    "api_server_credentials",
    "certificate_role",
    "certificate_sha256",
    "certificate_verifier",
    "channel_credentials",
    "channel_options",
    "create_ca",
    "issue_node_certificate",
    "load_ca",
    "load_certificate",
    "load_node_certificate",
    "node_id_from_certificate",
    "peer_certificate_sha256",
    "peer_node_id",
    "peer_node_role",
    "public_keys_match",
    "read_certificate",
    "read_private_key",
    "server_credentials",
    "tls_key_signer",
    "verify_node_certificate",
    "write_private_key_pem",
]

CA_CERT_FILE = "ca.crt"
CA_KEY_FILE = "ca.key"
CA_VALID_DAYS = 10 * 365
NODE_CERT_VALID_DAYS = 2 * 365
CLOCK_SKEW_ALLOWANCE = datetime.timedelta(minutes=5)  # not_valid_before is backdated by this

# What a node certificate lets its holder do on the peer port. A validator's certificate has no
# organizational unit; an observer's names ``OU=observer``, and validators let it fetch blocks
# and nothing else (never exchange consensus messages), whatever its common name says.
VALIDATOR_ROLE = "validator"
OBSERVER_ROLE = "observer"
NODE_ROLES = (VALIDATOR_ROLE, OBSERVER_ROLE)


class PkiError(Exception):
    """A certificate or key that cannot be used, with a sentence saying why."""


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def write(self, directory: Path, passphrase: bytes | None = None) -> tuple[Path, Path]:
        """Write ``ca.crt`` and ``ca.key`` (0600, encrypted under ``passphrase`` if given) into
        ``directory``; refuses to overwrite."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / CA_CERT_FILE, directory / CA_KEY_FILE
        write_private_key_pem(key_path, self.private_key, passphrase)
        _write_new(cert_path, self.certificate_pem, 0o644)
        return cert_path, key_path

    def __repr__(self) -> str:  # never print key material
        return f"CertificateAuthority(subject={self.certificate.subject.rfc4514_string()!r})"


@dataclass(frozen=True, slots=True)
class NodeCertificate:
    node_id: str
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def write(self, cert_path: Path, key_path: Path, passphrase: bytes | None = None) -> None:
        """Write the certificate and its key (0600, encrypted under ``passphrase`` if given);
        refuses to overwrite either."""
        write_private_key_pem(key_path, self.private_key, passphrase)
        _write_new(cert_path, self.certificate_pem, 0o644)

    def __repr__(self) -> str:
        return f"NodeCertificate(node_id={self.node_id!r})"


# --- files ---------------------------------------------------------------------------------------


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def write_private_key_pem(
    path: Path, key: ec.EllipticCurvePrivateKey, passphrase: bytes | None = None
) -> None:
    """Write a PKCS#8 PEM key readable by its owner only (0600), encrypted under ``passphrase``
    when one is given (``keyfile`` owns the format)."""
    try:
        write_key_file(path, key, passphrase)
    except KeyFileError as exc:
        raise PkiError(exc.message) from None


def read_private_key(
    path: Path, passphrase: bytes | None = None, *, require_encrypted: bool = False
) -> ec.EllipticCurvePrivateKey:
    """Read a P-256 PEM key, refusing a file its group or other users can open."""
    try:
        key = read_key_file(path, passphrase, require_encrypted=require_encrypted)
    except KeyFileError as exc:
        raise PkiError(exc.message) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise PkiError(f"{path} does not hold an ECDSA P-256 private key")
    return key


def load_certificate(data: bytes | str) -> x509.Certificate:
    """Parse one certificate from PEM (bytes or text) or DER bytes."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    try:
        if b"-----BEGIN CERTIFICATE-----" in raw:
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except ValueError:
        raise PkiError("not a PEM or DER X.509 certificate") from None


def read_certificate(path: Path) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PkiError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return load_certificate(data)
    except PkiError:
        raise PkiError(f"{path} is not a PEM certificate") from None


def load_node_certificate(
    cert_path: Path, key_path: Path, passphrase: bytes | None = None
) -> NodeCertificate:
    """Read a node's certificate and key and check that they belong together."""
    certificate = read_certificate(cert_path)
    private_key = read_private_key(key_path, passphrase)
    if _public_der(certificate.public_key()) != _public_der(private_key.public_key()):
        raise PkiError(f"{key_path} is not the key of {cert_path}")
    return NodeCertificate(node_id_from_certificate(certificate), certificate, private_key)


def load_ca(directory: Path, passphrase: bytes | None = None) -> CertificateAuthority:
    """Read ``ca.crt`` and ``ca.key`` from ``directory`` and check that they belong together."""
    certificate = read_certificate(directory / CA_CERT_FILE)
    private_key = read_private_key(directory / CA_KEY_FILE, passphrase)
    if _public_der(certificate.public_key()) != _public_der(private_key.public_key()):
        raise PkiError(f"{directory / CA_KEY_FILE} is not the key of {directory / CA_CERT_FILE}")
    return CertificateAuthority(certificate, private_key)


def public_keys_match(certificate: x509.Certificate, private_key: Any) -> bool:
    """True when ``private_key`` is the key of ``certificate``."""
    return _public_der(certificate.public_key()) == _public_der(private_key.public_key())


def _public_der(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


# --- issuing -------------------------------------------------------------------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def create_ca(
    common_name: str = "ibledger consortium CA",
    *,
    valid_days: int = CA_VALID_DAYS,
    now: datetime.datetime | None = None,
) -> CertificateAuthority:
    """A new self-signed ECDSA P-256 CA allowed to sign end-entity certificates only."""
    if valid_days < 1:
        raise PkiError("a CA must be valid for at least one day")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = (now or _now()) - CLOCK_SKEW_ALLOWANCE
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(certificate, key)


def _san_entries(node_id: str, hosts: Iterable[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = [x509.DNSName(node_id)]
    seen: set[str] = {node_id.lower()}
    for host in ("127.0.0.1", *hosts):
        text = host.strip("[]")
        if not text or text in ("0.0.0.0", "::") or text.lower() in seen:
            continue  # wildcard listen addresses are not names anyone dials
        seen.add(text.lower())
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(text)))
        except ValueError:
            entries.append(x509.DNSName(text))
    return entries


def issue_node_certificate(
    ca: CertificateAuthority,
    node_id: str,
    *,
    hosts: Sequence[str] = (),
    valid_days: int = NODE_CERT_VALID_DAYS,
    now: datetime.datetime | None = None,
    role: str = VALIDATOR_ROLE,
) -> NodeCertificate:
    """A CA-signed certificate for ``node_id`` (CN and SAN DNS) usable as TLS server and client.

    ``hosts`` are the host names or IP addresses the node listens on; 127.0.0.1 is always added.
    ``role`` is ``validator`` or ``observer`` (written as ``OU=observer``, see NODE_ROLES).
    """
    if role not in NODE_ROLES:
        raise PkiError(f"role {role!r} is not a node role (known: {', '.join(NODE_ROLES)})")
    if NODE_ID_PATTERN.fullmatch(node_id) is None:
        raise PkiError(
            f"node id {node_id!r} must be a DNS label: 1-63 letters, digits or hyphens, "
            "not starting or ending with a hyphen"
        )
    if valid_days < 1:
        raise PkiError("a node certificate must be valid for at least one day")
    key = ec.generate_private_key(ec.SECP256R1())
    start = (now or _now()) - CLOCK_SKEW_ALLOWANCE
    end = min(start + datetime.timedelta(days=valid_days), ca.certificate.not_valid_after_utc)
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, node_id)]
    if role == OBSERVER_ROLE:
        subject.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, OBSERVER_ROLE))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(_san_entries(node_id, hosts)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca.private_key, hashes.SHA256())
    )
    return NodeCertificate(node_id, certificate, key)


# --- identities ----------------------------------------------------------------------------------


def node_id_from_certificate(data: bytes | str | x509.Certificate) -> str:
    """The node id a node certificate names: its CN, which its SAN must repeat as a DNS name.

    Accepts PEM (bytes or text), DER, or a parsed certificate. This does not check the issuer:
    call it on certificates TLS has already verified against the CA (``peer_node_id``), or use
    ``verify_node_certificate`` first.
    """
    certificate = data if isinstance(data, x509.Certificate) else load_certificate(data)
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1 or not isinstance(names[0].value, str):
        raise PkiError("the certificate must have exactly one subject common name")
    node_id = names[0].value
    if NODE_ID_PATTERN.fullmatch(node_id) is None:
        raise PkiError(f"the certificate's common name {node_id!r} is not a node id")
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise PkiError(f"the certificate for {node_id} has no subject alternative names") from None
    if node_id.lower() not in (name.lower() for name in san.get_values_for_type(x509.DNSName)):
        raise PkiError(f"the certificate's alternative names do not include DNS:{node_id}")
    return node_id


def certificate_role(data: bytes | str | x509.Certificate) -> str:
    """``observer`` when the certificate's only organizational unit says so, else ``validator``.

    A certificate with any other organizational unit, or with several, is refused rather than
    guessed at: the role decides what its holder may do on the peer port.
    """
    certificate = data if isinstance(data, x509.Certificate) else load_certificate(data)
    units = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    if not units:
        return VALIDATOR_ROLE
    if len(units) == 1 and units[0].value == OBSERVER_ROLE:
        return OBSERVER_ROLE
    raise PkiError("the certificate's organizational unit must be absent or 'observer'")


def verify_node_certificate(
    certificate: x509.Certificate,
    ca_certificate: x509.Certificate,
    *,
    node_id: str | None = None,
    now: datetime.datetime | None = None,
) -> str:
    """Check issuer signature, validity period, key usages and names; return the node id."""
    try:
        certificate.verify_directly_issued_by(ca_certificate)
    except (ValueError, TypeError, InvalidSignature):
        raise PkiError(
            f"was not issued by the consortium CA ({ca_certificate.subject.rfc4514_string()})"
        ) from None
    moment = now or _now()
    if moment < certificate.not_valid_before_utc:
        raise PkiError(f"is not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    if moment > certificate.not_valid_after_utc:
        raise PkiError(f"expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise PkiError("must have an ECDSA P-256 key (gRPC's TLS refuses Ed25519 certificates)")
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = None
    if usages is not None and not {
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    } <= set(usages):
        raise PkiError("must allow both serverAuth and clientAuth")
    found = node_id_from_certificate(certificate)
    if node_id is not None and found != node_id:
        raise PkiError(f"is the certificate of {found}, not {node_id}")
    return found


def _from_peer_certificate(context: Any, read: Callable[[str], str]) -> str | None:
    """``read`` of the authenticated TLS peer's certificate, or None without a usable one.

    ``context`` is a ``grpc.ServicerContext`` or ``grpc.aio.ServicerContext``; TLS has already
    verified the certificate against the CA when the handler runs.
    """
    pems = context.auth_context().get("x509_pem_cert") or []
    if not pems:
        return None
    try:
        return read(pems[0])
    except PkiError:
        return None


def peer_node_id(context: Any) -> str | None:
    """The node id of the authenticated TLS peer of a gRPC call, or None without one."""
    return _from_peer_certificate(context, node_id_from_certificate)


def peer_node_role(context: Any) -> str | None:
    """The role (``validator`` or ``observer``) of the authenticated TLS peer, or None."""
    return _from_peer_certificate(context, certificate_role)


# --- gRPC credentials ----------------------------------------------------------------------------


def _tls_material(node_config: NodeConfig | ObserverConfig) -> tuple[bytes, bytes, bytes]:
    peer = node_config.peer
    try:
        # The key as loaded (and decrypted) once at startup; it is never re-read from disk.
        return peer.ca_cert.read_bytes(), node_config.tls_key_pem, peer.tls_cert.read_bytes()
    except OSError as exc:
        raise PkiError(f"cannot read TLS files: {exc}") from None


def server_credentials(node_config: NodeConfig | ObserverConfig) -> grpc.ServerCredentials:
    """Server credentials for the peer port: this node's certificate, clients must present one
    issued by the consortium CA."""
    ca_pem, key_pem, cert_pem = _tls_material(node_config)
    return grpc.ssl_server_credentials(
        [(key_pem, cert_pem)], root_certificates=ca_pem, require_client_auth=True
    )


def api_server_credentials(node_config: NodeConfig | ObserverConfig) -> grpc.ServerCredentials:
    """Server credentials for the public API: this node's CA-issued certificate, so clients
    that trust the consortium CA know they talk to a node of the network. Clients prove who
    they are by signing (transactions, queries, read sessions), not with certificates."""
    _, key_pem, cert_pem = _tls_material(node_config)
    return grpc.ssl_server_credentials([(key_pem, cert_pem)], require_client_auth=False)


def channel_credentials(node_config: NodeConfig | ObserverConfig) -> grpc.ChannelCredentials:
    """Client credentials for dialing peers: trust only the consortium CA, present our cert."""
    ca_pem, key_pem, cert_pem = _tls_material(node_config)
    return grpc.ssl_channel_credentials(
        root_certificates=ca_pem, private_key=key_pem, certificate_chain=cert_pem
    )


def channel_options(peer_id: str) -> list[tuple[str, Any]]:
    """Channel options for dialing ``peer_id`` at any address: verify its name, not the host's."""
    return [("grpc.ssl_target_name_override", peer_id)]


def tls_key_signer(private_key_pem: bytes) -> Callable[[bytes], bytes]:
    """Sign with a node's TLS key (ECDSA P-256, SHA-256; DER signatures): what an observer, which
    holds no consensus key, signs its audit log's heads with. `certificate_verifier` checks them
    against its certificate."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError("the TLS key is not an ECDSA key")
    return lambda data: key.sign(data, ec.ECDSA(hashes.SHA256()))


def certificate_verifier(certificate: x509.Certificate) -> Callable[[bytes, bytes], bool]:
    """Check a `tls_key_signer` signature with the certificate's public key."""
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise PkiError("the certificate does not hold an ECDSA key")

    def verify(data: bytes, signature: bytes) -> bool:
        try:
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True

    return verify


def certificate_sha256(data: bytes | str | x509.Certificate) -> str:
    """The SHA-256 of a certificate's DER encoding, in lower-case hex: the name a revocation
    gives it (``openssl x509 -noout -fingerprint -sha256``, without the colons)."""
    certificate = data if isinstance(data, x509.Certificate) else load_certificate(data)
    return certificate.fingerprint(hashes.SHA256()).hex()


def peer_certificate_sha256(context: Any) -> str | None:
    """The fingerprint of the authenticated TLS peer's certificate, or None without one."""
    return _from_peer_certificate(context, certificate_sha256)
