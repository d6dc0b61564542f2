"""Strict JSON files, and the one reader of the genesis file.

The genesis is hashed and every replica must read the same document from the same bytes, so a
reader may not guess: a key twice in one object, ``NaN`` or ``Infinity``, text that is not UTF-8,
or a top level that is not an object is an error, never "the last one wins".  The node's loader
(``config.load_genesis``, which then validates every field), the client's manifest reader
(``cli.manifest``, which reads ``network.json`` with the same rules) and the tools that rewrite a
genesis (``network init``, the benchmarks, the tests) all read it here.

A genesis is changed in one way too: ``overlay(document, changes)`` merges ``changes`` into it,
object by object (a nested object merges key by key, any other value replaces), and
``update_genesis(path, changes)`` rewrites a genesis file so, in the layout ``network init``
writes.  The benchmarks and the test networks tune a fresh genesis with it.

``JsonFileError(path, field, message)`` names the file, the place in it (or none) and the reason;
callers wrap it in their own error type (``ConfigError``, ``ManifestError``).  The module reads
one file and imports nothing else first-party, so a client may use it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "JsonFileError",
    "overlay",
    "read_genesis",
    "read_json_object",
    "update_genesis",
    "write_json",
]


class JsonFileError(Exception):
    """A JSON file that cannot be read strictly; ``str()`` says which file, where and why."""

    def __init__(self, path: Path, field: str | None, message: str) -> None:
        self.path = path
        self.field = field
        self.message = message
        super().__init__(f"{path}: {field}: {message}" if field else f"{path}: {message}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_json_object(path: Path | str) -> dict[str, Any]:
    """The JSON object in ``path``, read strictly (see the module's docstring)."""
    path = Path(path)

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise JsonFileError(path, key, "appears twice in the same JSON object")
            result[key] = value
        return result

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JsonFileError(path, None, "does not exist") from None
    except IsADirectoryError:
        raise JsonFileError(path, None, "is a directory, not a JSON file") from None
    except OSError as exc:
        raise JsonFileError(path, None, f"cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise JsonFileError(path, None, "is not valid JSON: not UTF-8 text") from None
    try:
        data = json.loads(text, object_pairs_hook=unique, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise JsonFileError(path, None, f"is not valid JSON: {exc.msg} at {where}") from None
    except ValueError as exc:
        raise JsonFileError(path, None, f"is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise JsonFileError(path, None, "must hold a JSON object")
    return data


def read_genesis(path: Path | str) -> dict[str, Any]:
    """A genesis file's document, parsed strictly but not validated (``config.load_genesis``
    validates it). Raises ``JsonFileError``."""
    return read_json_object(path)


def overlay(document: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` with ``changes`` merged in: where both hold an object, the two merge key by
    key; anything else in ``changes`` (a number, a list, a string) replaces what was there.
    Neither argument is modified."""
    merged = dict(document)
    for key, value in changes.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = overlay(current, value)
        else:
            merged[key] = value
    return merged


def write_json(path: Path | str, data: Any) -> None:
    """``data`` as the JSON files of a network are written: two-space indent, UTF-8 text."""
    Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def update_genesis(path: Path | str, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Rewrite the genesis file at ``path`` with ``changes`` overlaid; returns the new document.
    Only for a network that has not started: a running chain's genesis is fixed by its hash."""
    document = overlay(read_genesis(path), changes)
    write_json(path, document)
    return document
