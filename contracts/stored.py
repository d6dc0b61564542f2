"""The storage boundary: typed records to and from decoded canonical MessagePack.

Theory of operation
-------------------
State values are canonical MessagePack maps (``codec``). Handlers never index those maps: each
record type has ``from_stored(value)``, which checks every field's presence and type and turns
closed vocabularies into enums, and ``to_stored()``, which builds the exact map that was stored
before records existed (same keys, same value types), so stored bytes and state roots are
unchanged by the typed layer.

A value that does not have its record's form (a missing or unknown key, a wrong type, a text
outside its enum) raises ``StoredFormError`` naming the record and the field. That is a corrupt
or foreign state, not a business rejection: it propagates like any other bug, but with a message
that says which key of which record is wrong, identically on every replica.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from typing import TypeAlias, TypeVar

from .errors import StoredFormError

__all__ = [
    "Fields",
    "StoredFormError",
    "StoredMap",
    "StoredValue",
    "as_map",
    "stored_map",
    "text",
    "text_list",
]

StoredValue: TypeAlias = (
    bool | int | str | bytes | list["StoredValue"] | dict[str, "StoredValue"] | None
)
StoredMap: TypeAlias = dict[str, StoredValue]

E = TypeVar("E", bound=enum.Enum)
R = TypeVar("R")


def as_map(value: object, record: str) -> Mapping[str, object]:
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise StoredFormError(f"{record}: the stored value is not a map")
    return value


def stored_map(value: object, record: str) -> StoredMap:
    """A free-form stored map (event attributes, parameters): checks the value domain only."""
    checked: StoredMap = {}
    for key, item in as_map(value, record).items():
        checked[key] = _stored_value(item, f"{record}.{key}")
    return checked


def _stored_value(value: object, where: str) -> StoredValue:
    if value is None or isinstance(value, bool | int | str | bytes):
        return value
    if isinstance(value, list | tuple):  # a tuple only from an in-process caller; stored: list
        return [_stored_value(item, where) for item in value]
    if isinstance(value, dict):
        return stored_map(value, where)
    raise StoredFormError(f"{where}: {type(value).__name__} is not a stored value")


def text(value: object, record: str) -> str:
    """A stored text (an index entry such as a participant or instrument id)."""
    if not isinstance(value, str):
        raise StoredFormError(f"{record}: the stored value is not text")
    return value


def text_list(value: object, record: str) -> list[str]:
    """A stored list of texts (an index entry such as a participant's capacities)."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise StoredFormError(f"{record}: the stored value is not a list of texts")
    return [text(item, record) for item in value]


class Fields:
    """A strict reader over one stored map; finish with ``done()`` (no unknown keys)."""

    __slots__ = ("_map", "_record", "_seen")

    def __init__(self, value: object, record: str) -> None:
        self._map = as_map(value, record)
        self._record = record
        self._seen: set[str] = set()

    def _where(self, key: str) -> str:
        return f"{self._record}.{key}"

    def _get(self, key: str) -> object:
        if key not in self._map:
            raise StoredFormError(f"{self._where(key)} is missing")
        self._seen.add(key)
        return self._map[key]

    def has(self, key: str) -> bool:
        return key in self._map

    def _wrong(self, key: str, what: str) -> StoredFormError:
        return StoredFormError(f"{self._where(key)} must be {what}, not {self._map[key]!r}")

    def str_(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise self._wrong(key, "text")
        return value

    def opt_str(self, key: str) -> str | None:
        return None if self._get(key) is None else self.str_(key)

    def int_(self, key: str) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(key, "an integer")
        return value

    def opt_int(self, key: str) -> int | None:
        return None if self._get(key) is None else self.int_(key)

    def bool_(self, key: str) -> bool:
        value = self._get(key)
        if not isinstance(value, bool):
            raise self._wrong(key, "true or false")
        return value

    def bytes_(self, key: str) -> bytes:
        value = self._get(key)
        if not isinstance(value, bytes):
            raise self._wrong(key, "bytes")
        return value

    def enum_(self, key: str, vocabulary: type[E]) -> E:
        value = self._get(key)
        try:
            return vocabulary(value)
        except ValueError:
            raise self._wrong(
                key, f"one of {', '.join(str(m.value) for m in vocabulary)}"
            ) from None

    def opt_enum(self, key: str, vocabulary: type[E]) -> E | None:
        return None if self._get(key) is None else self.enum_(key, vocabulary)

    def list_(self, key: str) -> list[object]:
        value = self._get(key)
        if not isinstance(value, list):
            raise self._wrong(key, "a list")
        return value

    def str_list(self, key: str) -> tuple[str, ...]:
        items = self.list_(key)
        if not all(isinstance(item, str) for item in items):
            raise self._wrong(key, "a list of texts")
        return tuple(str(item) for item in items)

    def enum_list(self, key: str, vocabulary: type[E]) -> tuple[E, ...]:
        items = self.list_(key)
        try:
            return tuple(vocabulary(item) for item in items)
        except ValueError:
            raise self._wrong(key, f"a list of {vocabulary.__name__}") from None

    def records(self, key: str, parse: Callable[[object], R]) -> tuple[R, ...]:
        return tuple(parse(item) for item in self.list_(key))

    def record(self, key: str, parse: Callable[[object], R]) -> R:
        return parse(self._get(key))

    def opt_record(self, key: str, parse: Callable[[object], R]) -> R | None:
        value = self._get(key)
        return None if value is None else parse(value)

    def map_(self, key: str) -> StoredMap:
        return stored_map(self._get(key), self._where(key))

    def rest(self, known: Iterable[str] = ()) -> StoredMap:
        """Every key not read yet (and not in ``known``), as a free-form map."""
        skip = self._seen | set(known)
        extra = {key: value for key, value in self._map.items() if key not in skip}
        self._seen.update(extra)
        return stored_map(extra, self._record)

    def done(self) -> None:
        unknown = sorted(set(self._map) - self._seen)
        if unknown:
            raise StoredFormError(f"{self._where(unknown[0])} is not a field of this record")
