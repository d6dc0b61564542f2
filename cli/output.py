"""Printing results and errors the same way in every command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from wcwidth import wcswidth, wcwidth

try:
    VERSION = metadata.version("ibledger")
except metadata.PackageNotFoundError:  # running from a source tree without an install
    VERSION = "0.0.0+source"


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


def emit(options: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    """Print ``data`` as JSON under --json, else the human ``text``."""
    if getattr(options, "json", False):
        print(json.dumps(_jsonable(data), indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print(text)


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
        print(f"error: {code}: {message}", file=sys.stderr)
    return exit_code
