"""``ibledger governance``: changes to another participant's identity, approved by M admins.

A consortium admin proposes a change (add or revoke another participant's key, set roles,
deactivate, reactivate, register a participant with the consortium_admin role), the revocation
of a node's TLS certificate, a change of the validator set (add or remove a validator, rotate
a validator's key), or a new admin quorum; other admins approve or reject it, and once
the approvals of active admins reach the admin quorum (set in genesis as
governance.admin_quorum, changed by set-quorum) the change is made in that same transaction. The
proposer may withdraw a proposal; unanswered ones expire. The proposal id is the id of the
proposing transaction.
"""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ibledger.contracts.revocations import REASON_MAX
from ibledger.contracts.vocabulary import ProposalStatus, values
from ibledger.node import clock

from .client import Client, TxReceipt
from .client_options import (
    add_client_flags,
    renamed,
    render,
    subcommands,
    submit,
    table,
    usage,
    with_client,
)
from .cmd_participant import ROLES, identifier_flags, key_flags, keys_of, registration_args
from .output import emit, plain

# The record's own "id", as the JSON output names it (cli.convention).
ID_KEY = {"id": "proposal"}

HOUR_MS = 3_600_000
EXPIRY_HOURS_DEFAULT = 72
EXPIRY_HOURS_MAX = 30 * 24
STATUSES = values(ProposalStatus)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "governance",
        help="propose, approve and inspect identity changes that need M consortium admins",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = subcommands(parser)

    propose = verbs.add_parser(
        "propose",
        help="propose an identity change (counts as your approval)",
        description="Propose a change; it is made once enough admins approve. Prints the "
        "proposal id the other admins approve.",
    )
    actions = subcommands(propose, "CHANGE")

    add_key = actions.add_parser("add-key", help="add a signing key to a participant")
    add_key.add_argument("participant_id", metavar="ID")
    key_flags(add_key)
    _propose_flags(add_key, _add_key)

    revoke = actions.add_parser("revoke-key", help="revoke a participant's key")
    revoke.add_argument("participant_id", metavar="ID")
    revoke.add_argument("key_id", metavar="KEY_ID")
    _propose_flags(revoke, _revoke_key)

    roles = actions.add_parser("set-roles", help="replace a participant's roles")
    roles.add_argument("participant_id", metavar="ID")
    roles.add_argument(
        "--role", dest="roles", action="append", required=True, choices=ROLES, help="repeatable"
    )
    _propose_flags(roles, _set_roles)

    for verb in ("deactivate", "reactivate"):
        sub = actions.add_parser(verb, help=f"{verb} a participant")
        sub.add_argument("participant_id", metavar="ID")
        _propose_flags(sub, _participant_only(f"identity.{verb}"))

    reg = actions.add_parser(
        "register", help="register a participant (needed for the consortium_admin role)"
    )
    reg.add_argument("participant_id", metavar="ID")
    reg.add_argument("--name", required=True, help="legal name")
    reg.add_argument(
        "--role", dest="roles", action="append", required=True, choices=ROLES, help="repeatable"
    )
    identifier_flags(reg)
    key_flags(reg)
    _propose_flags(reg, lambda options: ("identity.register", registration_args(options)))
    reg.set_defaults(registers_participant=True)

    cert = actions.add_parser(
        "revoke-certificate",
        help="revoke a node's TLS certificate: peers refuse it from the executing block on",
    )
    cert.add_argument(
        "certificate",
        metavar="CERT",
        help="the certificate (a PEM file, e.g. nodes/node3/tls/node.crt) or its SHA-256 "
        "fingerprint (64 hexadecimal digits; colons allowed)",
    )
    cert.add_argument("--reason", required=True, help="why, for the record (at most 200 chars)")
    _propose_flags(cert, _revoke_certificate)

    add_validator = actions.add_parser(
        "add-validator",
        help="add a validator: it votes from the first checkpoint a watermark window ahead",
    )
    add_validator.add_argument("validator", metavar="NODE_ID")
    add_validator.add_argument(
        "--public-key", required=True, help="its validator public key (hexadecimal)"
    )
    add_validator.add_argument("--peer-address", required=True, help="HOST:PORT of its peer port")
    add_validator.add_argument("--api-address", required=True, help="HOST:PORT of its API")
    _propose_flags(
        add_validator,
        lambda options: (
            "membership.add_validator",
            {
                "validator": options.validator,
                "public_key": options.public_key.lower(),
                "peer_address": options.peer_address,
                "api_address": options.api_address,
            },
        ),
    )

    remove_validator = actions.add_parser(
        "remove-validator",
        help="remove a validator: it stops voting at the first checkpoint a watermark window ahead",
    )
    remove_validator.add_argument("validator", metavar="NODE_ID")
    _propose_flags(
        remove_validator,
        lambda options: ("membership.remove_validator", {"validator": options.validator}),
    )

    rotate = actions.add_parser(
        "rotate-validator-key", help="give a validator a new signing key, from the next epoch on"
    )
    rotate.add_argument("validator", metavar="NODE_ID")
    rotate.add_argument("--public-key", required=True, help="the new public key (hexadecimal)")
    _propose_flags(
        rotate,
        lambda options: (
            "membership.rotate_validator_key",
            {"validator": options.validator, "public_key": options.public_key.lower()},
        ),
    )

    quorum = actions.add_parser(
        "set-quorum", help="change the admin quorum (1 to the number of active admins)"
    )
    quorum.add_argument("admin_quorum", metavar="M", type=int)
    _propose_flags(
        quorum,
        lambda options: ("governance.set_admin_quorum", {"admin_quorum": options.admin_quorum}),
    )

    for verb, text in (
        ("approve", "approve a proposal; the change is made when the quorum is reached"),
        ("reject", "reject a proposal; it closes once the quorum can no longer be reached"),
        ("withdraw", "withdraw your own open proposal"),
    ):
        sub = verbs.add_parser(verb, help=text)
        sub.add_argument("proposal", metavar="PROPOSAL_ID")
        add_client_flags(sub, transaction=True)
        sub.set_defaults(handler=_vote(f"governance.{verb}"))

    show = verbs.add_parser("show", help="show a proposal with its votes")
    show.add_argument("proposal", metavar="PROPOSAL_ID")
    add_client_flags(show, as_of=True)
    show.set_defaults(handler=show_proposal)

    listing = verbs.add_parser("list", help="list proposals (default: the open ones)")
    listing.add_argument("--status", choices=STATUSES, default="open")
    add_client_flags(listing, as_of=True)
    listing.set_defaults(handler=list_proposals)


Action = Callable[[argparse.Namespace], tuple[str, dict[str, Any]]]


def _propose_flags(parser: argparse.ArgumentParser, action: Action) -> None:
    parser.add_argument(
        "--expires-in-hours",
        type=int,
        default=EXPIRY_HOURS_DEFAULT,
        metavar="H",
        help=f"hours the proposal stays open (default {EXPIRY_HOURS_DEFAULT}, "
        f"at most {EXPIRY_HOURS_MAX})",
    )
    add_client_flags(parser, transaction=True)
    parser.set_defaults(handler=_proposer(action))


def _add_key(options: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    keys = keys_of(options)
    if len(keys) != 1:
        raise usage("KEY_INVALID", "propose one key at a time")
    return "identity.add_key", {"participant": options.participant_id, **keys[0]}


def _revoke_key(options: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    return "identity.revoke_key", {"participant": options.participant_id, "key_id": options.key_id}


def _revoke_certificate(options: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    text: str = options.certificate
    digits = text.replace(":", "").lower()
    if len(digits) == 64 and all(c in "0123456789abcdef" for c in digits):
        fingerprint = digits
    else:
        try:
            data = Path(text).read_bytes()
        except OSError as exc:
            raise usage(
                "BAD_ARGUMENT",
                f"{text} is neither a SHA-256 fingerprint nor a readable file: {exc.strerror}",
            ) from None
        try:
            certificate = x509.load_pem_x509_certificate(data)
        except ValueError:
            raise usage("BAD_CERTIFICATE", f"{text} is not a PEM certificate") from None
        # The DER encoding's SHA-256, as node/pki.py names a certificate on the peer port.
        fingerprint = certificate.fingerprint(hashes.SHA256()).hex()
    reason: str = options.reason
    if not 1 <= len(reason) <= REASON_MAX:
        raise usage("BAD_ARGUMENT", f"--reason must be 1 to {REASON_MAX} characters long")
    return "pki.revoke_certificate", {"certificate_sha256": fingerprint, "reason": reason}


def _set_roles(options: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    roles = sorted(set(options.roles))
    return "identity.update_roles", {"participant": options.participant_id, "roles": roles}


def _participant_only(action: str) -> Action:
    return lambda options: (action, {"participant": options.participant_id})


def _describe(receipt: TxReceipt) -> tuple[dict[str, Any], list[str]]:
    proposed = receipt.event("governance.proposed")
    executed = receipt.event("governance.executed")
    vote = receipt.event("governance.approved") or receipt.event("governance.rejected")
    proposal = next(
        (e.attrs["proposal"] for e in (proposed, executed, vote) if e is not None), None
    )
    extra: dict[str, Any] = {"proposal": proposal, "executed": executed is not None}
    lines = [f"  proposal {proposal}"] if proposal else []
    scheduled = receipt.event("membership.scheduled")
    if scheduled is not None:
        extra["epoch"] = scheduled.attrs["epoch"]
        extra["from_height"] = scheduled.attrs["from_height"]
        lines.append(
            f"  validator set {scheduled.attrs['epoch']} "
            f"({', '.join(scheduled.attrs['validators'])}) orders from height "
            f"{scheduled.attrs['from_height']}"
        )
    if executed is not None:
        target = executed.attrs["participant"]
        lines.append(
            f"  executed: {executed.attrs['action']}" + (f" for {target}" if target else "")
        )
    elif proposed is not None:
        lines.append(
            f"  1 of {proposed.attrs['quorum']} approvals; another admin approves with: "
            f"ibledger governance approve {proposal} --as ADMIN_ID"
        )
    return extra, lines


def _proposer(action: Action) -> Callable[[argparse.Namespace], int]:
    @with_client(identity=True)
    def run(options: argparse.Namespace, client: Client) -> int:
        hours: int = options.expires_in_hours
        if not 1 <= hours <= EXPIRY_HOURS_MAX:
            raise usage("BAD_ARGUMENT", f"--expires-in-hours must be from 1 to {EXPIRY_HOURS_MAX}")
        name, args = action(options)
        call = {"action": name, "args": args, "expires_at_ms": clock.now_ms() + hours * HOUR_MS}
        return submit(options, client, "governance.propose", call, describe=_describe)

    return run


def _vote(operation: str) -> Callable[[argparse.Namespace], int]:
    @with_client(identity=True)
    def run(options: argparse.Namespace, client: Client) -> int:
        return submit(
            options, client, operation, {"proposal": options.proposal}, describe=_describe
        )

    return run


def _expiry(record: dict[str, Any]) -> str:
    moment = datetime.datetime.fromtimestamp(record["expires_at_ms"] / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@with_client(identity=True)
def show_proposal(options: argparse.Namespace, client: Client) -> int:
    record = renamed(client.query("governance_proposal", {"id": options.proposal}), ID_KEY)
    emit(options, record, "\n".join(render(record)))
    return 0


@with_client(identity=True)
def list_proposals(options: argparse.Namespace, client: Client) -> int:
    records = [
        renamed(record, ID_KEY)
        for record in client.query("governance_proposals", {"status": options.status})
    ]
    quorum = client.query("governance", {})
    now = clock.now_ms()
    rows = [
        {
            "proposal": record["proposal"],
            "action": record["action"],
            "participant": record["args"].get("participant", record["args"].get("id")),
            "proposer": record["proposer"],
            "approvals": ",".join(vote["admin"] for vote in record["approvals"]),
            "status": "expired"
            if record["status"] == "open" and now >= record["expires_at_ms"]
            else record["status"],
            "expires": _expiry(record),
        }
        for record in records
    ]
    text = table(
        rows,
        [
            ("proposal", "PROPOSAL"),
            ("action", "ACTION"),
            ("participant", "PARTICIPANT"),
            ("proposer", "PROPOSER"),
            ("approvals", "APPROVALS"),
            ("status", "STATUS"),
            ("expires", "EXPIRES"),
        ],
    )
    text += f"\nadmin quorum {quorum['admin_quorum']} of {', '.join(quorum['active_admins'])}"
    emit(options, {"proposals": records, **quorum}, text)
    return 0
