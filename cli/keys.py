"""``ibledger keys``: create and inspect signing keys.

Private keys are PKCS#8 PEM files readable by their owner only, optionally encrypted with a
passphrase taken from a file or the ``IBLEDGER_PASSPHRASE`` environment variable (never from the
command line, where other users could see it in the process list).
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

from ibledger.node.crypto import (
    ED25519_SHA256,
    SUITE_NAMES,
    CryptoError,
    generate_keypair,
    load_private_key,
    public_key_pem,
    write_private_key,
)

from .output import CommandError, add_json_flag, emit, home

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def register(commands: Any) -> None:
    parser = commands.add_parser("keys", help="create and inspect signing keys")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    new = verbs.add_parser("new", help="create a new signing key pair (Ed25519 or SM2)")
    new.add_argument("name", metavar="NAME", help="file name stem, e.g. bank-a")
    _add_common(new)
    new.add_argument(
        "--crypto",
        choices=SUITE_NAMES,
        default=ED25519_SHA256,
        help=f"the suite of the chain the key is for (default {ED25519_SHA256}); an sm2-sm3 "
        "key is encrypted with SM4",
    )
    new.add_argument(
        "--encrypt",
        action="store_true",
        help="encrypt the private key with the passphrase from --passphrase-file or "
        "$IBLEDGER_PASSPHRASE",
    )
    new.set_defaults(handler=new_key)

    show = verbs.add_parser(
        "show",
        help="print a key's id and public key",
        description="Print the key id and public key of a private key file: NAME is a key of "
        "the key directory (NAME.key.pem there), or a path to a PEM file (anything with a "
        "slash or ending in .pem, or an existing file).",
    )
    show.add_argument("name", metavar="NAME|PATH", help="a key name, or a private key file")
    _add_common(show)
    show.set_defaults(handler=show_key)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, help="key directory (default: $IBLEDGER_HOME/keys)")
    parser.add_argument("--passphrase-file", type=Path, help="file holding the passphrase")
    add_json_flag(parser)


def _key_dir(options: argparse.Namespace) -> Path:
    directory: Path = options.dir or home() / "keys"
    return directory


def _passphrase(options: argparse.Namespace, required: bool) -> bytes | None:
    if options.passphrase_file is not None:
        try:
            secret: bytes = options.passphrase_file.read_bytes()
            return secret.rstrip(b"\r\n")
        except OSError as exc:
            raise CommandError(
                "PASSPHRASE_FILE", f"cannot read {options.passphrase_file}: {exc}"
            ) from None
    from_env = os.environ.get("IBLEDGER_PASSPHRASE")
    if from_env:
        return from_env.encode()
    if required:
        raise CommandError(
            "PASSPHRASE_REQUIRED", "--encrypt needs --passphrase-file or $IBLEDGER_PASSPHRASE"
        )
    return None


def new_key(options: argparse.Namespace) -> int:
    if not NAME_PATTERN.match(options.name):
        raise CommandError(
            "BAD_NAME", "a key name is 1-64 letters, digits, '.', '_' or '-', starting alphanumeric"
        )
    passphrase = _passphrase(options, required=True) if options.encrypt else None
    directory = _key_dir(options)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    private_path = directory / f"{options.name}.key.pem"
    public_path = directory / f"{options.name}.pub.pem"
    if private_path.exists():
        raise CommandError("KEY_EXISTS", f"{private_path} already exists; choose another name")
    keypair = generate_keypair(options.crypto)
    write_private_key(private_path, keypair, passphrase)
    public_path.write_bytes(public_key_pem(keypair.public_key, keypair.suite))
    emit(
        options,
        {
            "name": options.name,
            "suite": keypair.suite,
            "key_id": keypair.key_id,
            "public_key": keypair.public_key,
            "private_key_file": str(private_path),
            "public_key_file": str(public_path),
            "encrypted": passphrase is not None,
        },
        f"created key {options.name}\n"
        f"  key id      {keypair.key_id.hex()}\n"
        f"  public key  {keypair.public_key.hex()}\n"
        f"  private     {private_path}{' (encrypted)' if passphrase else ''}\n"
        f"  public      {public_path}",
    )
    return 0


def key_path(options: argparse.Namespace) -> Path:
    """The file ``keys show`` reads: a path as given, else NAME.key.pem in the key directory."""
    given = Path(options.name)
    if "/" in options.name or options.name.endswith(".pem") or given.is_file():
        return given
    return _key_dir(options) / f"{options.name}.key.pem"


def show_key(options: argparse.Namespace) -> int:
    path = key_path(options)
    try:
        keypair = load_private_key(path, _passphrase(options, required=False))
    except CryptoError as exc:
        raise CommandError(exc.code, exc.message) from None
    emit(
        options,
        {
            "name": options.name,
            "private_key_file": str(path),
            "suite": keypair.suite,
            "key_id": keypair.key_id,
            "public_key": keypair.public_key,
        },
        f"{options.name}: key id {keypair.key_id.hex()}, public key {keypair.public_key.hex()}",
    )
    return 0
