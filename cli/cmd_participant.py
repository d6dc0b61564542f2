"""``ibledger participant``: the consortium's member directory (identities, roles and keys).

A participant is a bank, an enterprise, the central bank, a registrar, a regulator or the
consortium operator, known by a short id (e.g. ICBC) and, as the rules require, its LEI (banks)
or unified social credit code (enterprises). Its public keys decide which signatures are its own.
A participant adds and revokes its own keys. A consortium admin registers participants and edits
their reference details; changing another participant's keys, anyone's roles or activation, and
registering a consortium admin take the approval of the chain's admin quorum: see
'ibledger governance'. The commands here for those changes are refused with GOVERNANCE_REQUIRED
and print the governance command to use instead.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ibledger.contracts.vocabulary import LeiStatus, Role, values
from ibledger.node.crypto import SM2_SM3, CryptoError, load_public_key_pem

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
from .output import CommandError, emit, plain

# The record's own "id", as the JSON output names it (cli.convention).
ID_KEY = {"id": "participant"}

ROLES = values(Role)
LEI_STATUSES = values(LeiStatus)
SUITE = "ed25519-sha256"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "participant",
        help="register participants, manage their roles and keys, look them up",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = subcommands(parser)

    reg = verbs.add_parser(
        "register",
        help="register a new participant (consortium admin)",
        description="Register a participant with its roles, identifiers and public key(s). A "
        "bank needs an LEI, an enterprise a USCC. Identifiers are checked strictly: type them "
        "exactly, in upper case, without spaces.",
    )
    reg.add_argument("participant_id", metavar="ID", help="short participant id, e.g. ICBC")
    reg.add_argument("--name", required=True, help="legal name")
    reg.add_argument(
        "--role",
        dest="roles",
        action="append",
        required=True,
        choices=ROLES,
        help="a role; repeat for several",
    )
    identifier_flags(reg)
    key_flags(reg)
    add_client_flags(reg, transaction=True)
    reg.set_defaults(handler=register_participant, registers_participant=True)

    show = verbs.add_parser("show", help="show one participant with its keys")
    show.add_argument("participant_id", metavar="ID")
    add_client_flags(show, as_of=True)
    show.set_defaults(handler=show_participant)

    listing = verbs.add_parser("list", help="list participants")
    listing.add_argument("--role", choices=ROLES, help="only participants with this role")
    add_client_flags(listing, as_of=True)
    listing.set_defaults(handler=list_participants)

    add_key = verbs.add_parser(
        "add-key",
        help="add a signing key to the signing participant (another's: 'governance propose')",
        description="Add a public key; signatures by its private key then count as the "
        "participant's. Create a key pair with 'ibledger keys new NAME'.",
    )
    add_key.add_argument(
        "--participant", metavar="ID", help="whose key (default: the signing participant)"
    )
    key_flags(add_key)
    add_client_flags(add_key, transaction=True)
    add_key.set_defaults(handler=add_key_)

    revoke = verbs.add_parser(
        "revoke-key",
        help="revoke a signing key (it can never be used or re-registered again)",
        description="Revoke a key by its key id (32 hex characters, see 'participant show'). "
        "The last active key of a participant cannot be revoked.",
    )
    revoke.add_argument("key_id", metavar="KEY_ID")
    revoke.add_argument(
        "--participant", metavar="ID", help="whose key (default: the signing participant)"
    )
    add_client_flags(revoke, transaction=True)
    revoke.set_defaults(handler=revoke_key)

    roles = verbs.add_parser(
        "set-roles", help="replace a participant's roles (now: 'governance propose set-roles')"
    )
    roles.add_argument("participant_id", metavar="ID")
    roles.add_argument(
        "--role",
        dest="roles",
        action="append",
        required=True,
        choices=ROLES,
        help="a role; repeat for several",
    )
    add_client_flags(roles, transaction=True)
    roles.set_defaults(handler=set_roles)

    update = verbs.add_parser(
        "update", help="change a participant's name, BIC, CNAPS code or LEI status (admin)"
    )
    update.add_argument("participant_id", metavar="ID")
    update.add_argument("--name")
    update.add_argument("--bic", help="SWIFT BIC, 8 or 11 characters")
    update.add_argument("--cnaps", help="12-digit CNAPS bank code")
    update.add_argument("--lei-status", choices=LEI_STATUSES, help="GLEIF registration status")
    add_client_flags(update, transaction=True)
    update.set_defaults(handler=update_participant)

    for verb, operation, text in (
        ("deactivate", "identity.deactivate", "deactivate a participant: it can no longer sign"),
        ("reactivate", "identity.reactivate", "reactivate a deactivated participant"),
    ):
        sub = verbs.add_parser(verb, help=f"{text} (now: 'governance propose {verb}')")
        sub.add_argument("participant_id", metavar="ID")
        add_client_flags(sub, transaction=True)
        sub.set_defaults(handler=_admin_handler(operation))


def identifier_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lei", help="legal entity identifier, 20 characters (banks)")
    parser.add_argument("--uscc", help="unified social credit code, 18 characters (enterprises)")
    parser.add_argument("--bic", help="SWIFT BIC, 8 or 11 characters")
    parser.add_argument("--cnaps", help="12-digit CNAPS bank code")
    parser.add_argument("--lei-status", choices=LEI_STATUSES, help="GLEIF registration status")


def key_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--public-key",
        dest="public_keys",
        action="append",
        default=[],
        metavar="HEX",
        help="Ed25519 public key in hex (repeatable)",
    )
    parser.add_argument(
        "--public-key-file",
        dest="public_key_files",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="public key PEM file, e.g. from 'ibledger keys new' (repeatable)",
    )


def keys_of(options: argparse.Namespace) -> list[dict[str, str]]:
    # A key's suite follows from its form: 32 bytes is Ed25519, a 65-byte uncompressed point
    # SM2; the chain refuses keys of the other suite when it runs the transaction.
    keys: list[tuple[str, str]] = []
    for text in options.public_keys:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
        if len(raw) == 32:
            keys.append((SUITE, text.lower()))
        elif len(raw) == 65 and raw[0] == 0x04:
            keys.append((SM2_SM3, text.lower()))
        else:
            raise usage(
                "KEY_INVALID",
                f"--public-key {text!r} is neither 64 hexadecimal characters (Ed25519) nor 130 "
                "starting 04 (SM2)",
            )
    for path in options.public_key_files:
        try:
            suite, raw = load_public_key_pem(path.read_bytes())
        except (OSError, ValueError, CryptoError) as exc:
            raise usage("KEY_INVALID", f"--public-key-file {path}: {exc}") from None
        keys.append((suite, raw.hex()))
    if not keys:
        raise usage("KEY_REQUIRED", "give --public-key HEX or --public-key-file FILE")
    return [{"suite": suite, "public_key": key} for suite, key in keys]


def _key_ids(receipt: TxReceipt) -> tuple[dict[str, Any], list[str]]:
    event = receipt.event("identity.key_added") or receipt.event("identity.registered")
    if event is None:
        return {}, []
    ids = event.attrs.get("keys") or [event.attrs.get("key_id")]
    return {"key_ids": ids}, [f"  key id {key_id}" for key_id in ids]


def registration_args(options: argparse.Namespace) -> dict[str, Any]:
    args: dict[str, Any] = {
        "id": options.participant_id,
        "name": options.name,
        "roles": sorted(set(options.roles)),
        "keys": keys_of(options),
    }
    for name in ("lei", "uscc", "bic", "cnaps", "lei_status"):
        value = getattr(options, name)
        if value is not None:
            args[name] = value
    return args


def _governed(options: argparse.Namespace, command: str, run: Callable[[], int]) -> int:
    """Run ``run``; a GOVERNANCE_REQUIRED refusal gets the governance command to use instead."""
    try:
        return run()
    except CommandError as exc:
        if exc.code != "GOVERNANCE_REQUIRED":
            raise
        who = f" --as {options.identity}" if getattr(options, "identity", None) else ""
        raise CommandError(
            exc.code, f"{exc.message} Run: ibledger governance propose {command}{who}", 1
        ) from None


@with_client(identity=True)
def register_participant(options: argparse.Namespace, client: Client) -> int:
    args = registration_args(options)
    return _governed(
        options,
        f"register {options.participant_id} ...",
        lambda: submit(options, client, "identity.register", args, describe=_key_ids),
    )


@with_client(identity=True)
def show_participant(options: argparse.Namespace, client: Client) -> int:
    record = renamed(client.query("participant", {"id": options.participant_id}), ID_KEY)
    emit(options, record, "\n".join(render(record)))
    return 0


@with_client(identity=True)
def list_participants(options: argparse.Namespace, client: Client) -> int:
    args = {"role": options.role} if options.role else {}
    rows = [renamed(row, ID_KEY) for row in client.query("participants", args)]
    text = table(
        rows,
        [
            ("participant", "ID"),
            ("name", "NAME"),
            ("roles", "ROLES"),
            ("lei", "LEI"),
            ("uscc", "USCC"),
            ("active", "ACTIVE"),
        ],
    )
    emit(options, {"participants": rows}, text)
    return 0


@with_client(identity=True)
def add_key_(options: argparse.Namespace, client: Client) -> int:
    keys = keys_of(options)
    if len(keys) != 1:
        raise usage("KEY_INVALID", "add one key at a time")
    args: dict[str, Any] = dict(keys[0])
    if options.participant:
        args["participant"] = options.participant
    return _governed(
        options,
        f"add-key {options.participant} --public-key {keys[0]['public_key']}",
        lambda: submit(options, client, "identity.add_key", args, describe=_key_ids),
    )


@with_client(identity=True)
def revoke_key(options: argparse.Namespace, client: Client) -> int:
    args: dict[str, Any] = {"key_id": options.key_id}
    if options.participant:
        args["participant"] = options.participant
    return _governed(
        options,
        f"revoke-key {options.participant} {options.key_id}",
        lambda: submit(options, client, "identity.revoke_key", args),
    )


@with_client(identity=True)
def set_roles(options: argparse.Namespace, client: Client) -> int:
    args = {"participant": options.participant_id, "roles": sorted(set(options.roles))}
    roles = " ".join(f"--role {role}" for role in args["roles"])
    return _governed(
        options,
        f"set-roles {options.participant_id} {roles}",
        lambda: submit(options, client, "identity.update_roles", args),
    )


@with_client(identity=True)
def update_participant(options: argparse.Namespace, client: Client) -> int:
    args: dict[str, Any] = {"participant": options.participant_id}
    for name in ("name", "bic", "cnaps", "lei_status"):
        value = getattr(options, name)
        if value is not None:
            args[name] = value
    if len(args) == 1:
        raise usage("NOTHING_TO_CHANGE", "give --name, --bic, --cnaps or --lei-status")
    return submit(options, client, "identity.update_details", args)


def _admin_handler(operation: str) -> Any:
    verb = operation.split(".")[1]

    @with_client(identity=True)
    def run(options: argparse.Namespace, client: Client) -> int:
        args = {"participant": options.participant_id}
        return _governed(
            options,
            f"{verb} {options.participant_id}",
            lambda: submit(options, client, operation, args),
        )

    return run
