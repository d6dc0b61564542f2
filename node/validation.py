"""Pydantic's validation errors in the project's words, for every file the project reads.

A file's schema is a set of pydantic models (``schema.py`` for node.toml, ``cli/manifest.py``
for network.json); pydantic reports each problem as data (a location, an error type, the input),
and ``explain`` writes it as the project's messages always read: the place, then the reason,
``must be an integer, got the text '4MB'``, ``must be from 1 to 10000000, got 0``, ``is not a
known setting (known: ...)``.  Bounds and choices are read back from the model's own field
declarations, so a message can never disagree with the rule it reports.  How a place is written
is the caller's (``[peer] listen`` in TOML, ``nodes[1].api`` in JSON).

The module imports only pydantic and the address helpers, so a client may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

import annotated_types
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from .addresses import describe_value

__all__ = ["STRICT", "Where", "explain", "first_error", "json_where"]

STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)
"""Strict types (a boolean is not an integer, 1.5 is not one either), no unknown keys."""

Loc = tuple[int | str, ...]
Where = Callable[[Loc], str | None]


def json_where(loc: Loc) -> str | None:
    """A location in a JSON document: ``nodes[1].api``, ``identities.ALICE.roles[0]``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


def _field(model: type[BaseModel], loc: Loc) -> Any:
    """The declaration of the field at ``loc`` (None if it is not a declared field)."""
    field = None
    for part in loc:
        if isinstance(part, int):
            continue  # an item of a list or a value of a mapping: same declared model
        if field is not None:
            model = _model_of(field.annotation) or model
        field = model.model_fields.get(str(part))
        if field is None:
            return None
    return field


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds: directly, or as the items of a list, tuple or dict."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_of(argument)
        if found is not None:
            return found
    return None


def _parent(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model that holds the key at ``loc``."""
    parts = tuple(part for part in loc[:-1] if not isinstance(part, int))
    if not parts:
        return model
    field = _field(model, parts)
    return _model_of(field.annotation) if field is not None else None


def _bounds(field: Any) -> tuple[Any, Any]:
    low = high = None
    for rule in field.metadata if field is not None else ():
        if isinstance(rule, annotated_types.Ge):
            low = rule.ge
        elif isinstance(rule, annotated_types.Le):
            high = rule.le
        elif isinstance(rule, annotated_types.MinLen):
            low = rule.min_length
    return low, high


def explain(
    model: type[BaseModel], error: ErrorDetails, where: Where, container: str = "table"
) -> tuple[str | None, str]:
    """One pydantic error as (the place, the reason). ``container`` is what the file calls a
    nested mapping ("table" in TOML, "object" in JSON); a model may name what its keys are with
    a class variable ``UNKNOWN`` ("a validator field"; by default "a known setting")."""
    loc, kind, value = error["loc"], error["type"], error.get("input")
    place, shown = where(loc), describe_value(value)
    if kind == "missing":
        return place, "is required"
    if kind == "extra_forbidden":
        parent = _parent(model, loc)
        known = ", ".join(sorted(parent.model_fields)) if parent is not None else ""
        noun = getattr(parent, "UNKNOWN", "a known setting")
        return place, f"is not {noun} (known: {known})"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return place, f"must be {'an' if container[0] in 'aeiou' else 'a'} {container}, got {shown}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return place, f"must be an integer, got {shown}"
    if kind in ("greater_than_equal", "less_than_equal"):
        low, high = _bounds(_field(model, loc))
        return place, f"must be from {low} to {high}, got {value}"
    if kind in ("bool_type", "bool_parsing"):
        return place, f"must be true or false, got {shown}"
    if kind in ("string_type", "string_too_short"):
        return place, f"must be a non-empty string, got {shown}"
    if kind in ("list_type", "tuple_type"):
        return place, f"must be a list, got {shown}"
    if kind == "too_short":
        low, _ = _bounds(_field(model, loc))
        return place, f"must list at least {low}, got none"
    if kind == "literal_error":
        field = _field(model, loc)
        choices = get_args(field.annotation) if field is not None else ()
        return place, f"must be one of {', '.join(map(str, choices))}, got {shown}"
    if kind == "value_error":
        return place, str(error.get("ctx", {}).get("error", error["msg"]))
    return place, f"{error['msg'].rstrip('.').lower()}, got {shown}"


def first_error(
    model: type[BaseModel], exc: ValidationError, where: Where, container: str = "table"
) -> tuple[str | None, str]:
    """The error to report when there are several: a top-level key the file should not have,
    then a top-level one it lacks, then the first other problem in the schema's order."""

    def rank(error: ErrorDetails) -> int:
        if len(error["loc"]) == 1 and error["type"] == "extra_forbidden":
            return 0
        if len(error["loc"]) == 1 and error["type"] == "missing":
            return 1
        return 2

    return explain(model, min(exc.errors(include_url=False), key=rank), where, container)
