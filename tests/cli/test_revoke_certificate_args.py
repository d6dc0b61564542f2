"""`governance propose revoke-certificate` checks its arguments before anything is signed."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ibledger.cli.cmd_governance import _revoke_certificate
from ibledger.cli.output import CommandError
from ibledger.node.pki import certificate_sha256, create_ca, issue_node_certificate


def _options(certificate: str, reason: str = "rotated") -> argparse.Namespace:
    return argparse.Namespace(certificate=certificate, reason=reason)


def test_a_pem_file_or_a_fingerprint_in_any_common_spelling_names_the_certificate(
    tmp_path: Path,
) -> None:
    issued = issue_node_certificate(create_ca(), "node3")
    pem = tmp_path / "node.crt"
    pem.write_bytes(issued.certificate_pem)
    fingerprint = certificate_sha256(issued.certificate)
    colons = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    for given in (str(pem), fingerprint, colons):
        action, args = _revoke_certificate(_options(given))
        assert action == "pki.revoke_certificate"
        assert args == {"certificate_sha256": fingerprint, "reason": "rotated"}


@pytest.mark.parametrize(
    ("given", "reason", "code"),
    [
        ("no/such/file.crt", "x", "BAD_ARGUMENT"),
        ("ab" * 32, "x" * 201, "BAD_ARGUMENT"),
        ("ab" * 32, "", "BAD_ARGUMENT"),
    ],
)
def test_bad_arguments_are_refused_before_signing(given: str, reason: str, code: str) -> None:
    with pytest.raises(CommandError) as refused:
        _revoke_certificate(_options(given, reason))
    assert refused.value.code == code


def test_a_file_that_is_not_a_certificate_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.crt"
    junk.write_text("not a certificate")
    with pytest.raises(CommandError) as refused:
        _revoke_certificate(_options(str(junk)))
    assert refused.value.code == "BAD_CERTIFICATE"
