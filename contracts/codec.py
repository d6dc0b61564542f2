"""Canonical MessagePack: the one byte form of every signed payload and every state value.

Theory of operation
-------------------
Replicas hash and sign bytes, so one logical value must have exactly one encoding. The value
domain is deliberately small: ``None``, ``bool``, ``int`` (signed 64-bit), ``str`` (valid UTF-8),
``bytes``, ``list`` (``tuple`` is accepted on encode and decodes as ``list``) and ``dict`` with
``str`` keys. Floats, ext types, timestamps and non-string map keys are outside the domain.

Canonical form = what msgpack-python produces with ``use_bin_type=True`` (shortest integer and
length headers, ``str`` family for text, ``bin`` family for bytes) after every map has been
re-ordered by key, keys compared as UTF-8 byte strings (which equals code-point order).

``canonical_decode`` is strict: it decodes, checks the value domain, rejects duplicate or unsorted
keys, trailing bytes, ext types and floats, and finally re-encodes the value and demands the very
same bytes back. The last step rejects every remaining non-minimal form (e.g. an int8 header for
a fixint, a str16 for a short string) without re-implementing the format's grammar.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack  # type: ignore[import-untyped]

__all__ = ["INT_MAX", "INT_MIN", "CodecError", "canonical_decode", "canonical_encode"]

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
# Nesting bound: state values and payloads are shallow; a bound keeps a hostile payload from
# exhausting the interpreter stack in the recursive checks below.
_DEPTH_MAX = 32


class CodecError(ValueError):
    """The bytes (or the value) are outside canonical MessagePack."""


def _normalise(obj: Any, depth: int) -> Any:
    """Return ``obj`` with every map rebuilt in canonical key order; validate the domain."""
    if depth > _DEPTH_MAX:
        raise CodecError(f"value nested deeper than {_DEPTH_MAX} levels")
    # Exact built-in types first: every state value and payload is made of them, and this
    # function runs for every field of every transaction on every replica.
    kind = type(obj)
    if kind is str:
        if not obj.isascii():
            _check_utf8(obj, "string")
        return obj
    if kind is int:
        if not INT_MIN <= obj <= INT_MAX:
            raise CodecError(f"integer {obj} is outside the signed 64-bit range")
        return obj
    if kind is bytes or obj is None or kind is bool:
        return obj
    if kind is dict:
        normalised: dict[str, Any] = {}
        for key, value in obj.items():
            if type(key) is not str:
                return _normalise_mapping(obj, depth)  # the general path names the bad key
            if not key.isascii():
                _check_utf8(key, "map key")
            normalised[key] = _normalise(value, depth + 1)
        # For valid UTF-8 text, code-point order (Python's ``str`` order) is UTF-8 byte order.
        return {key: normalised[key] for key in sorted(normalised)}
    if kind is list or kind is tuple:
        return [_normalise(item, depth + 1) for item in obj]
    return _normalise_other(obj, depth)


def _check_utf8(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates cannot be UTF-8
        raise CodecError(f"{what} is not valid UTF-8") from exc


def _normalise_mapping(obj: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    items: list[tuple[bytes, str, Any]] = []
    for key, value in obj.items():
        if not isinstance(key, str):
            raise CodecError(f"map key {key!r} is not a string")
        try:
            key_bytes = key.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CodecError("map key is not valid UTF-8") from exc
        items.append((key_bytes, key, _normalise(value, depth + 1)))
    items.sort(key=lambda item: item[0])
    return {key: value for _, key, value in items}


def _normalise_other(obj: Any, depth: int) -> Any:
    """Subclasses of the domain's types (``IntEnum``, ``StrEnum``, mappings other than dict)."""
    if isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        if not INT_MIN <= obj <= INT_MAX:
            raise CodecError(f"integer {obj} is outside the signed 64-bit range")
        return obj
    if isinstance(obj, str):
        _check_utf8(obj, "string")
        return obj
    if isinstance(obj, bytes):
        return obj
    if isinstance(obj, list | tuple):
        return [_normalise(item, depth + 1) for item in obj]
    if isinstance(obj, Mapping):
        return _normalise_mapping(obj, depth)
    raise CodecError(f"type {type(obj).__name__} cannot be encoded canonically")


def canonical_encode(obj: Any) -> bytes:
    """Encode ``obj`` canonically; raise ``CodecError`` for values outside the domain."""
    packed = msgpack.packb(_normalise(obj, 0), use_bin_type=True)
    assert isinstance(packed, bytes)
    return packed


def _reject_ext(code: int, data: bytes) -> Any:
    raise CodecError(f"ext type {code} is not allowed")


def _pairs_to_dict(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    previous: str | None = None
    for key, value in pairs:
        if type(key) is not str:  # the unpacker makes exact built-in types only
            raise CodecError("map key is not a string")
        # Keys decoded from UTF-8 are valid text, whose code-point order is UTF-8 byte order.
        if previous is not None:
            if key == previous:
                raise CodecError(f"duplicate map key {key!r}")
            if key < previous:
                raise CodecError(f"map keys are not sorted at {key!r}")
        previous = key
        result[key] = value
    return result


def _check_domain(obj: Any, depth: int) -> None:
    if depth > _DEPTH_MAX:
        raise CodecError(f"value nested deeper than {_DEPTH_MAX} levels")
    # The unpacker makes exact built-in types: test those first, without isinstance chains.
    kind = type(obj)
    if kind is str or kind is bytes or kind is bool or obj is None:
        return
    if kind is int:
        if not INT_MIN <= obj <= INT_MAX:
            raise CodecError(f"integer {obj} is outside the signed 64-bit range")
        return
    if kind is list:
        for item in obj:
            _check_domain(item, depth + 1)
        return
    if kind is dict:
        for value in obj.values():
            _check_domain(value, depth + 1)
        return
    if isinstance(obj, float):
        raise CodecError("floating-point values are not allowed")
    if isinstance(obj, int) and not isinstance(obj, bool) and not INT_MIN <= obj <= INT_MAX:
        raise CodecError(f"integer {obj} is outside the signed 64-bit range")
    if isinstance(obj, list):
        for item in obj:
            _check_domain(item, depth + 1)
    elif isinstance(obj, dict):
        for value in obj.values():
            _check_domain(value, depth + 1)


def canonical_decode(data: bytes) -> Any:
    """Decode canonical bytes; raise ``CodecError`` on anything that is not canonical."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError("input is not bytes")
    raw = bytes(data)
    try:
        obj = msgpack.unpackb(
            raw,
            raw=False,
            use_list=True,
            strict_map_key=False,  # checked by _pairs_to_dict with a precise message
            object_pairs_hook=_pairs_to_dict,
            ext_hook=_reject_ext,
        )
    except CodecError:
        raise
    except msgpack.ExtraData as exc:
        raise CodecError("trailing bytes after the value") from exc
    except UnicodeDecodeError as exc:
        raise CodecError("string is not valid UTF-8") from exc
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise CodecError(f"malformed MessagePack: {exc}") from exc
    _check_domain(obj, 0)
    # What was decoded is already normalised: its keys are strings in canonical order (checked
    # by _pairs_to_dict), its text valid UTF-8, its integers in range and no floats (checked
    # above), so packing it as it is gives what canonical_encode would, without rebuilding it.
    if msgpack.packb(obj, use_bin_type=True) != raw:
        raise CodecError("encoding is not canonical (non-minimal header or wrong type family)")
    return obj
