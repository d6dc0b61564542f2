"""Strict reading of operation arguments.

Every handler reads its arguments through an ``Args`` reader and finishes with ``done()``, which
rejects fields the operation does not know. Each failure is ``BAD_ARGUMENT`` with the field name
in the message, so a clerk can tell which box of the form is wrong. Types are exact: ``bool`` is
never accepted where an integer is expected, strings are never coerced to numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any, Literal, overload

from .codec import INT_MAX
from .errors import ContractError
from .identifiers import require_text

__all__ = ["ID_PATTERN", "Args", "bad", "day_to_iso", "parse_iso_date"]

BAD_ARGUMENT = "BAD_ARGUMENT"
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Participant ids appear inside state keys, so they exclude the key separator "/".
ID_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TEXT_MAX = 256


def bad(field: str, why: str) -> ContractError:
    return ContractError(BAD_ARGUMENT, f"Field '{field}' {why}.")


def parse_iso_date(text: str) -> int | None:
    """``YYYY-MM-DD`` -> day number since 1970-01-01, or None if not a real calendar date."""
    if not isinstance(text, str) or _ISO_DATE.fullmatch(text) is None:
        return None
    try:
        day = date(int(text[:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        return None
    return day.toordinal() - EPOCH_ORDINAL


def day_to_iso(day: int) -> str:
    return date.fromordinal(day + EPOCH_ORDINAL).isoformat()


class Args:
    """A reader over one operation's argument map."""

    __slots__ = ("_raw", "_seen")

    def __init__(self, raw: Mapping[str, Any]) -> None:
        if not isinstance(raw, Mapping):
            raise ContractError(BAD_ARGUMENT, "The operation arguments must be a map.")
        self._raw = raw
        self._seen: set[str] = set()

    def has(self, name: str) -> bool:
        return name in self._raw and self._raw[name] is not None

    def _get(self, name: str, optional: bool) -> object:
        self._seen.add(name)
        value = self._raw.get(name)
        if value is None and not optional:
            raise bad(name, "is required")
        return value

    # Each reader is typed twice: a required field gives its type, an optional one may be None.
    @overload
    def str_(
        self,
        name: str,
        *,
        optional: Literal[False] = ...,
        pattern: re.Pattern[str] | None = ...,
        max_len: int = ...,
        choices: tuple[str, ...] | None = ...,
    ) -> str: ...
    @overload
    def str_(
        self,
        name: str,
        *,
        optional: bool,
        pattern: re.Pattern[str] | None = ...,
        max_len: int = ...,
        choices: tuple[str, ...] | None = ...,
    ) -> str | None: ...
    def str_(
        self,
        name: str,
        *,
        optional: bool = False,
        pattern: re.Pattern[str] | None = None,
        max_len: int = TEXT_MAX,
        choices: tuple[str, ...] | None = None,
    ) -> str | None:
        value = self._get(name, optional)
        if value is None:
            return None
        if not isinstance(value, str):
            raise bad(name, "must be text")
        if not value or len(value) > max_len:
            raise bad(name, f"must be 1 to {max_len} characters long")
        if choices is not None and value not in choices:
            raise bad(name, f"must be one of {', '.join(choices)}")
        if pattern is not None and pattern.fullmatch(value) is None:
            raise bad(name, "has an invalid format")
        return value

    @overload
    def id_(self, name: str, *, optional: Literal[False] = ...) -> str: ...
    @overload
    def id_(self, name: str, *, optional: bool) -> str | None: ...
    def id_(self, name: str, *, optional: bool = False) -> str | None:
        return self.str_(name, optional=optional, pattern=ID_PATTERN, max_len=64)

    @overload
    def code_(self, name: str, kind: str, *, optional: Literal[False] = ...) -> str: ...
    @overload
    def code_(self, name: str, kind: str, *, optional: bool) -> str | None: ...
    def code_(self, name: str, kind: str, *, optional: bool = False) -> str | None:
        """An identifier of ``kind`` (``isin``, ``lei``, ``bill_no`` ...): a missing required one
        is BAD_ARGUMENT, anything else wrong with it is the identifier's own code (A)."""
        value = self._get(name, optional)
        if value is None:
            return None
        return require_text(kind, value, field=name)

    @overload
    def int_(
        self,
        name: str,
        *,
        optional: Literal[False] = ...,
        minimum: int = ...,
        maximum: int = ...,
    ) -> int: ...
    @overload
    def int_(
        self, name: str, *, optional: bool, minimum: int = ..., maximum: int = ...
    ) -> int | None: ...
    def int_(
        self, name: str, *, optional: bool = False, minimum: int = 0, maximum: int = INT_MAX
    ) -> int | None:
        value = self._get(name, optional)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(name, "must be an integer")
        if not minimum <= value <= maximum:
            raise bad(name, f"must be between {minimum} and {maximum}")
        return value

    def bool_(self, name: str, *, default: bool = False) -> bool:
        value = self._get(name, True)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise bad(name, "must be true or false")
        return value

    @overload
    def date_(self, name: str, *, optional: Literal[False] = ...) -> int: ...
    @overload
    def date_(self, name: str, *, optional: bool) -> int | None: ...
    def date_(self, name: str, *, optional: bool = False) -> int | None:
        value = self._get(name, optional)
        if value is None:
            return None
        day = parse_iso_date(value) if isinstance(value, str) else None
        if day is None:
            raise bad(name, "must be a calendar date written YYYY-MM-DD")
        return day

    @overload
    def bytes_(
        self, name: str, *, optional: Literal[False] = ..., length: int | None = ...
    ) -> bytes: ...
    @overload
    def bytes_(self, name: str, *, optional: bool, length: int | None = ...) -> bytes | None: ...
    def bytes_(
        self, name: str, *, optional: bool = False, length: int | None = None
    ) -> bytes | None:
        value = self._get(name, optional)
        if value is None:
            return None
        if not isinstance(value, bytes):
            raise bad(name, "must be bytes")
        if length is not None and len(value) != length:
            raise bad(name, f"must be {length} bytes long")
        return value

    @overload
    def list_(
        self, name: str, *, optional: Literal[False] = ..., max_items: int = ...
    ) -> list[object]: ...
    @overload
    def list_(self, name: str, *, optional: bool, max_items: int = ...) -> list[object] | None: ...
    def list_(
        self, name: str, *, optional: bool = False, max_items: int = 256
    ) -> list[object] | None:
        value = self._get(name, optional)
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            raise bad(name, "must be a list")
        if len(value) > max_items:
            raise bad(name, f"must have at most {max_items} items")
        return list(value)

    @overload
    def map_(self, name: str, *, optional: Literal[False] = ...) -> Mapping[str, object]: ...
    @overload
    def map_(self, name: str, *, optional: bool) -> Mapping[str, object] | None: ...
    def map_(self, name: str, *, optional: bool = False) -> Mapping[str, object] | None:
        value = self._get(name, optional)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise bad(name, "must be a map")
        return value

    def any_(self, name: str, *, optional: bool = False) -> object:
        """The raw value, for fields with more than one accepted shape (checked by the caller)."""
        return self._get(name, optional)

    def done(self) -> None:
        unknown = sorted(set(self._raw) - self._seen)
        if unknown:
            raise bad(unknown[0], "is not an argument of this operation")
