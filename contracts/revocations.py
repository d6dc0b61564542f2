"""Revoked TLS certificates: the consortium's revocation list, changed only by governance.

Theory of operation
-------------------
A certificate is named by the SHA-256 of its DER encoding, in lower-case hexadecimal (what
``openssl x509 -noout -fingerprint -sha256`` prints, without the colons). The governed action
``pki.revoke_certificate`` (a proposal approved by M of N consortium admins, like every change
to another party's standing) adds one, with a reason; it takes effect at the height of the block
that executes the approval, which consensus fixes for every replica. From that block on every
node refuses peer calls made with the certificate, including streams opened before it
(``node/peer.py``), so a validator or observer whose key leaked is cut off the peer network.
There is no un-revoke: the party gets a new certificate from the CA instead.

A revoked validator certificate costs the network that validator (one of the f it tolerates)
until the node has a new certificate; the validator's signing key and its place in the set are
untouched, since changing those is a change of membership.

State keys::

    pki/revoked/<sha256 hex>    {reason, height}
"""

from __future__ import annotations

import re

from .args import Args
from .core import Env
from .errors import ContractError

__all__ = [
    "FINGERPRINT_PATTERN",
    "GOVERNED_ACTIONS",
    "REASON_MAX",
    "REVOKED_PREFIX",
    "gov_revoke_certificate",
    "revoked_key",
]

REVOKED_PREFIX = b"pki/revoked/"
FINGERPRINT_PATTERN = re.compile(r"[0-9a-f]{64}")
REASON_MAX = 200
HISTORY_SCOPE = "pki/revoked"


def revoked_key(fingerprint: str) -> bytes:
    return REVOKED_PREFIX + fingerprint.encode()


def gov_revoke_certificate(env: Env, args: Args) -> None:
    fingerprint = args.str_("certificate_sha256", pattern=FINGERPRINT_PATTERN, max_len=64)
    reason = args.str_("reason", max_len=REASON_MAX)
    args.done()
    key = revoked_key(fingerprint)
    if env.store.get(key) is not None:
        raise ContractError(
            "CERTIFICATE_ALREADY_REVOKED", f"Certificate {fingerprint} is already revoked."
        )
    env.store.put(key, {"reason": reason, "height": env.ctx.height})
    env.store.emit(
        "governance.certificate_revoked",
        {"certificate_sha256": fingerprint, "reason": reason},
        [HISTORY_SCOPE],
    )


GOVERNED_ACTIONS = {"pki.revoke_certificate": gov_revoke_certificate}
