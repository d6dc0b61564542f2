"""``ibledger network rotate-cert NODE``: give one node of a local network a new TLS certificate.

The network's CA issues a new certificate and key for NODE (same node id, role and host names,
so its peers and clients accept it at once: they check the CA and the name, nothing pinned),
the node is stopped and started again with them, and the others run on untouched. The old
certificate is kept as ``tls/node.crt.replaced``; its key is deleted. The old certificate is
still valid until governance revokes it, which the command prints the way to do::

    ibledger governance propose revoke-certificate nodes/NODE/tls/node.crt.replaced \\
        --reason "rotated" --as ADMIN

(``docs/security.md``, "Governance"). With encrypted keys the CA key is decrypted with the
network's passphrase and the new key is encrypted under it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from cryptography import x509

from ibledger.node.pki import (
    PkiError,
    certificate_role,
    certificate_sha256,
    issue_node_certificate,
    load_ca,
    read_certificate,
)

from .manifest import ManifestError, load_manifest
from .network_observer import add_certificate_flags, network_passphrase
from .output import CommandError, emit, plain
from .passphrase import PASSPHRASE_ENV

REPLACED_SUFFIX = ".replaced"
UP_TIMEOUT_S = 60.0


def register(verbs: Any, add_dir: Any) -> None:
    parser = verbs.add_parser(
        "rotate-cert",
        help="issue a node a new TLS certificate and restart that node alone",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dir(parser)
    parser.add_argument("node", metavar="NODE", help="the validator or observer id")
    add_certificate_flags(parser, "the new certificate's lifetime in days")
    parser.set_defaults(handler=rotate_cert)


def _hosts(certificate: x509.Certificate) -> list[str]:
    """The IP addresses and DNS names the old certificate was issued for, but the node id."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    addresses = [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    return addresses + list(names.get_values_for_type(x509.DNSName))


def rotate_cert(options: argparse.Namespace) -> int:
    from . import network  # it imports this module: import late

    directory = network.network_dir(options)
    try:
        manifest = load_manifest(directory)
    except ManifestError as exc:
        raise CommandError("NETWORK_INVALID", exc.message) from None
    process = next((p for p in manifest.processes if p.id == options.node), None)
    if process is None:
        raise CommandError("UNKNOWN_NODE", f"{options.node} is not a node of {directory}")
    if options.cert_days < 1:
        raise CommandError("BAD_ARGUMENT", "--cert-days must be at least 1")
    tls = Path(process.dir) / "tls"
    cert_path, key_path = tls / "node.crt", tls / "node.key"
    passphrase = network_passphrase(manifest, options.passphrase_file)
    try:
        old = read_certificate(cert_path)
        ca = load_ca(directory / "ca", passphrase)
        names = [h for h in _hosts(old) if h != options.node]
        new = issue_node_certificate(
            ca,
            options.node,
            hosts=names,
            valid_days=options.cert_days,
            role=certificate_role(old),
        )
    except PkiError as exc:
        raise CommandError("PKI_ERROR", str(exc)) from None

    stopped = network.stop_node(process)
    replaced = cert_path.with_name(cert_path.name + REPLACED_SUFFIX)
    os.replace(cert_path, replaced)
    key_path.unlink()
    new.write(cert_path, key_path, passphrase)

    command = [sys.executable, "-m", "ibledger.cli.main", "network", "up", "--dir", str(directory)]
    command += ["--timeout", str(UP_TIMEOUT_S)]
    environment = os.environ.copy()
    if passphrase is not None:
        environment[PASSPHRASE_ENV] = passphrase.decode()
    started = subprocess.run(command, capture_output=True, text=True, env=environment)
    if started.returncode != 0:
        raise CommandError(
            "START_FAILED",
            f"{options.node} has its new certificate but did not start again:\n"
            + (started.stderr.strip() or started.stdout.strip()),
        )
    old_fingerprint = certificate_sha256(old)
    summary = {
        "node_id": options.node,
        "certificate": str(cert_path),
        "certificate_sha256": certificate_sha256(new.certificate),
        "replaced": str(replaced),
        "replaced_sha256": old_fingerprint,
        "restarted": stopped,
    }
    text = (
        f"{options.node} has a new certificate ({summary['certificate_sha256'][:16]}...) and "
        f"{'was restarted' if stopped else 'was started'}; the old one "
        f"({old_fingerprint[:16]}...) is valid until revoked:\n"
        f"  ibledger governance propose revoke-certificate {replaced} --reason rotated "
        "--as ADMIN"
    )
    emit(options, summary, text)
    return 0
