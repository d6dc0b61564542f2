"""Where the CLI finds the passphrase of encrypted key files, and how it hands it to nodes.

Sources, first match wins:

1. ``--passphrase-file FILE`` (the file must be mode 0600; one trailing newline is dropped);
2. ``$IBLEDGER_PASSPHRASE_FD``: a file descriptor inherited from ``ibledger network up``,
   read to its end once and closed;
3. ``$IBLEDGER_PASSPHRASE``;
4. a prompt, when standard input is a terminal and an encrypted key needs it.

Never a command-line value: other users of the machine can read every process's arguments.
``network up`` passes the passphrase to its nodes through a pipe (:func:`passphrase_pipe`), so
it appears neither in ``ps`` nor in the nodes' environment. Problems raise ``KeyFileError``.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import sys
from pathlib import Path

from ibledger.node.crypto import KeyFileError
from ibledger.node.keyfile import check_passphrase, key_file_is_encrypted, read_passphrase_file

PASSPHRASE_ENV = "IBLEDGER_PASSPHRASE"
PASSPHRASE_FD_ENV = "IBLEDGER_PASSPHRASE_FD"
_FD_READ_MAX = 64 * 1024

_from_fd: bytes | None = None  # what the inherited descriptor held, once read


def add_passphrase_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--passphrase-file",
        type=Path,
        metavar="FILE",
        help=f"file (mode 0600) holding the passphrase of encrypted keys (default: "
        f"${PASSPHRASE_ENV}, else a prompt in a terminal)",
    )


def _read_inherited_fd() -> bytes | None:
    global _from_fd
    if _from_fd is not None:
        return _from_fd
    text = os.environ.pop(PASSPHRASE_FD_ENV, None)  # not inherited any further
    if text is None:
        return None
    if not text.isdigit():
        raise KeyFileError("PASSPHRASE_FD", f"${PASSPHRASE_FD_ENV} must be a descriptor number")
    fd = int(text)
    chunks: list[bytes] = []
    try:
        while sum(map(len, chunks)) <= _FD_READ_MAX:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError as exc:
        raise KeyFileError(
            "PASSPHRASE_FD", f"cannot read the passphrase from descriptor {fd}: {exc.strerror}"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    _from_fd = b"".join(chunks)
    return _from_fd


def given_passphrase(passphrase_file: Path | None = None) -> bytes | None:
    """The passphrase from a file, an inherited descriptor or the environment; None if none."""
    if passphrase_file is not None:
        return read_passphrase_file(passphrase_file)
    inherited = _read_inherited_fd()
    if inherited is not None:
        check_passphrase(inherited)
        return inherited
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env:
        check_passphrase(from_env.encode())
        return from_env.encode()
    return None


def prompt_passphrase(prompt: str, *, confirm: bool = False) -> bytes | None:
    """Ask on the terminal; None when standard input is not one (a script, a service)."""
    if not sys.stdin.isatty():
        return None
    try:
        first = getpass.getpass(f"{prompt}: ")
        if confirm and getpass.getpass("repeat the passphrase: ") != first:
            raise KeyFileError("PASSPHRASE_MISMATCH", "the two passphrases differ")
    except (EOFError, KeyboardInterrupt):
        raise KeyFileError("PASSPHRASE_REQUIRED", "no passphrase was entered") from None
    value = first.encode()
    check_passphrase(value)
    return value


class PassphraseForKeys:
    """One passphrase for many key files: taken from the given sources, else asked for once,
    and only when a key file is encrypted."""

    def __init__(self, passphrase_file: Path | None = None) -> None:
        self._value = given_passphrase(passphrase_file)
        self._asked = False

    @property
    def value(self) -> bytes | None:
        return self._value

    def __call__(self, key_file: Path) -> bytes | None:
        if self._value is None and not self._asked:
            self._asked = True
            self._value = prompt_passphrase(f"passphrase for {key_file}")
        return self._value

    def for_key(self, key_file: Path, *, required: bool = False) -> bytes | None:
        if required or key_file_is_encrypted(key_file):
            return self(key_file)
        return self._value


def passphrase_pipe(passphrase: bytes) -> int:
    """A pipe's read end holding ``passphrase``, for a child to inherit (the caller closes it)."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, passphrase)  # far below a pipe's buffer: never blocks
    finally:
        os.close(write_fd)
    return read_fd
