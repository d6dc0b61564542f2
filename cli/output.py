"""Printing results and errors the same way in every command.

The global flags set the :data:`settings` once, before a command runs: ``-q`` keeps a command's
human-readable result off stdout (``--json`` output and errors are always printed), ``-v``
(repeatable) makes the client say on stderr what it does, and colour is used only when the
stream is a terminal, ``NO_COLOR`` is unset and ``--color`` is not ``never`` (``always`` forces
it, for a pager that understands it). JSON is never coloured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from wcwidth import wcswidth, wcwidth

try:
    VERSION = metadata.version("ibledger")
except metadata.PackageNotFoundError:  # running from a source tree without an install
    VERSION = "0.0.0+source"


COLOR_CHOICES = ("auto", "always", "never")


@dataclass
class Settings:
    """What the global flags chose; one instance, :data:`settings`, set by ``main``."""

    quiet: bool = False
    verbosity: int = 0
    color: str = "auto"


settings = Settings()


def configure(*, quiet: bool = False, verbosity: int = 0, color: str = "auto") -> None:
    settings.quiet = quiet
    settings.verbosity = verbosity
    settings.color = color


def use_color(stream: TextIO) -> bool:
    """Whether to colour text written to ``stream``: never under NO_COLOR (any value,
    https://no-color.org) or ``--color never``, always under ``--color always``, otherwise only
    on a terminal."""
    if settings.color == "never" or os.environ.get("NO_COLOR"):
        return False
    if settings.color == "always":
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


_SGR = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2"}


def paint(text: str, style: str, stream: TextIO | None = None) -> str:
    """``text`` in an ANSI ``style`` (red, green, yellow, bold, dim) when ``stream`` (stdout
    by default) gets colour, else unchanged."""
    if not use_color(stream or sys.stdout):
        return text
    return f"\x1b[{_SGR[style]}m{text}\x1b[0m"


def info(message: str, level: int = 1) -> None:
    """A progress or diagnostic line on stderr, shown from ``-v`` (level 1) or ``-vv`` (2)."""
    if settings.verbosity >= level:
        print(message, file=sys.stderr, flush=True)


class CommandError(Exception):
    """A failure to report to the user: a stable code, a sentence, an exit status."""

    def __init__(self, code: str, message: str, exit_code: int = 1) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.exit_code = exit_code


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def home() -> Path:
    """Where ibledger keeps keys and the default network: $IBLEDGER_HOME or ~/.ibledger."""
    configured = os.environ.get("IBLEDGER_HOME")
    return Path(configured) if configured else Path.home() / ".ibledger"


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def emit(
    options: argparse.Namespace,
    data: Mapping[str, Any],
    text: str,
    *,
    currency: str | None = None,
    currencies: Mapping[str, str] | None = None,
) -> None:
    """Print ``data`` as JSON under --json, else the human ``text`` (unless -q).

    ``currency`` (or ``currencies``, by ISIN) is what amounts in minor units of an instrument
    are in when the objects that hold them do not say (see :mod:`cli.convention`)."""
    if getattr(options, "json", False):
        print(json_text(data, currency=currency, currencies=currencies))
    elif not settings.quiet:
        print(text)


def json_text(
    data: Mapping[str, Any],
    *,
    currency: str | None = None,
    currencies: Mapping[str, str] | None = None,
    indent: int | None = 2,
) -> str:
    """The one JSON rendering of a command's result, in the convention of
    :mod:`cli.convention` (amounts as amount objects), bytes as hex, keys sorted; with
    ``indent=None``, one line (a stream's record)."""
    from .convention import normalize

    shaped = normalize(_jsonable(data), currency, currencies)
    return json.dumps(shaped, indent=indent, sort_keys=True, ensure_ascii=False)


_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`]*)`")
_UNDERLINE = re.compile(r"^(\S.*)\n[-=~^]{3,}$", re.MULTILINE)


def plain(doc: str | None) -> str:
    """A module docstring as command help, without its reStructuredText: ``literal`` quotes,
    :role:`target` roles, the ``::`` that introduces a literal block, section underlines."""
    text = _ROLE.sub(r"\1", doc or "")
    text = text.replace("``", "")
    text = re.sub(r"::$", ":", text, flags=re.MULTILINE)
    return _UNDERLINE.sub(lambda match: match.group(1) + ":", text)


def display_width(text: str) -> int:
    """The columns ``text`` takes on a terminal: two for a wide (CJK) character, none for a
    combining mark or a zero-width joiner; a control character, which has no width of its own,
    counts as none rather than making the whole string unmeasurable."""
    width = wcswidth(text)
    if width >= 0:
        return width
    return sum(max(0, wcwidth(char)) for char in text)


def pad(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` terminal columns (``str.ljust`` counts code points)."""
    return text + " " * max(0, width - display_width(text))


def fail(options: argparse.Namespace, code: str, message: str, exit_code: int = 1) -> int:
    if getattr(options, "json", False):
        print(json.dumps({"code": code, "message": message}, ensure_ascii=False), file=sys.stderr)
    else:
        prefix = paint("error:", "red", sys.stderr)
        print(f"{prefix} {code}: {message}", file=sys.stderr)
    return exit_code
