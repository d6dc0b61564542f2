"""YAML for the deployment files ``network init --docker`` writes (compose, Kubernetes).

Only what those files need: mappings, lists, strings, integers, booleans and null, in block
style. Strings are written double-quoted with JSON escapes (valid YAML 1.2 and 1.1), so no value
can turn into another type on the way (``"on"``, ``"0400"``, ``"7050:7050"`` stay strings);
multi-line text (PEM files, node.toml) is written as a literal block, byte for byte. Keys are
bare when they cannot be read as anything but a string, quoted otherwise. The runtime needs no
YAML library; the tests read the output back with one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["dump", "dump_all"]

_BARE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
# Words YAML 1.1 readers (compose's and kubectl's among them) take for booleans or null.
_SPECIAL_WORDS = frozenset(("y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"))
_INDENT = "  "


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"YAML mapping keys must be strings here, got {key!r}")
    if _BARE_KEY.fullmatch(key) and key.lower() not in _SPECIAL_WORDS:
        return key
    return json.dumps(key)


def _is_literal(text: str) -> bool:
    """Text a literal block keeps exactly: lines, one final newline, no leading blank."""
    return (
        "\n" in text
        and text.endswith("\n")
        and not text.endswith("\n\n")
        and not text[0].isspace()
        and "\r" not in text
        and all(ch == "\n" or ch == "\t" or ch.isprintable() for ch in text)
    )


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot write {type(value).__name__} as YAML here")


def _literal(text: str, depth: int) -> list[str]:
    pad = _INDENT * depth
    return [pad + line if line else "" for line in text[:-1].split("\n")]


def _node(value: Any, depth: int) -> list[str]:
    """The lines of a mapping or list at ``depth``."""
    pad = _INDENT * depth
    lines: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            lines.extend(_entry(pad + _key(key) + ":", item, depth))
        return lines
    for item in value:
        if _is_collection(item) and item:
            nested = _node(item, depth + 1)
            # The first line of the nested block shares the dash's line.
            lines.append(pad + "- " + nested[0][len(_INDENT) * (depth + 1) :])
            lines.extend(nested[1:])
        else:
            lines.extend(_entry(pad + "-", item, depth))
    return lines


def _entry(head: str, value: Any, depth: int) -> list[str]:
    if _is_collection(value):
        if not value:
            return [f"{head} {'{}' if isinstance(value, Mapping) else '[]'}"]
        return [head, *_node(value, depth + 1)]
    if isinstance(value, str) and _is_literal(value):
        return [f"{head} |", *_literal(value, depth + 1)]
    return [f"{head} {_scalar(value)}"]


def _is_collection(value: Any) -> bool:
    return isinstance(value, Mapping) or (
        isinstance(value, Sequence) and not isinstance(value, str | bytes)
    )


def dump(document: Mapping[str, Any], comment: str = "") -> str:
    """One YAML document, preceded by ``comment`` as ``#`` lines."""
    head = [f"# {line}".rstrip() for line in comment.splitlines()]
    return "\n".join([*head, *_node(document, 0)]) + "\n"


def dump_all(documents: Sequence[Mapping[str, Any]], comment: str = "") -> str:
    """Several documents in one stream, separated by ``---``."""
    parts = [dump(document) for document in documents]
    head = "".join(f"# {line}".rstrip() + "\n" for line in comment.splitlines())
    return head + "---\n" + "---\n".join(parts)
