"""The one naming and unit convention of every ``--json`` output (docs/cli.md, "JSON output").

Theory of operation
-------------------
The node answers queries in the ledger's stored vocabulary: bill amounts in fen (``amount_fen``),
asset amounts in minor units of the instrument's currency (``issue_size_minor``, ``quantity``).
A script should not have to know which field is in which unit, so :func:`normalize`, called by
``output.json_text`` (the one place a command's JSON is rendered), writes every amount as an
object that says everything about it::

    "amount": {"amount": "1200000.00", "currency": "CNY", "amount_minor": 120000000}

under the field's name without its unit suffix (``held_fen`` becomes ``held``). The decimal
string has exactly the currency's ISO 4217 decimals; ``amount_minor`` is the integer the ledger
stores. A field in minor units of an instrument's currency needs that currency: it is the
``currency`` of the object itself, else that of its ``isin`` in the ``currencies`` the command
looked up, else the enclosing object's, else the command's own.

:func:`violations` states the rest of the convention as checks, so that a test can run it over
everything a command prints:

- the output is an object; every key is snake_case ASCII, except the keys of a map from data
  values, which is named ``<values>_by_<what keys them>`` (``messages_by_type``);
- an identifier is named after what it identifies: never a bare ``id``; a node is ``node_id``
  (the primary is ``primary_node_id``), never ``node``, ``replica`` or ``validator``;
- no key carries a unit of money (``*_fen``, ``*_minor``) except ``amount_minor`` inside an
  amount object, and in an object about money (it or an enclosing object names a ``currency`` or
  an ``isin``) an amount field (``amount``, ``quantity``, ``available`` ...) never holds a bare
  number;
- an integer or float time is named with its unit (``timestamp_ms``, ``wall_s``); a calendar date
  (``*_date``, ``*_day``) is an ISO 8601 ``YYYY-MM-DD`` string.

A transaction's ``args`` and a request's ``params`` are left as they were signed, in the
operation's own argument names (what ``tx submit --args`` takes), and an audit record's
``fields`` as the node wrote them; none of them is checked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["AMOUNT_KEYS", "VERBATIM_KEYS", "amount_object", "normalize", "violations"]

# Fields whose value is an amount of money or face value (in minor units in the ledger).
AMOUNT_KEYS = frozenset(
    {"amount", "quantity", "total", "available", "pledged", "frozen", "reserved"}
)
# Subtrees shown exactly as they were signed or written: a transaction's arguments, a stored
# request's parameters, an audit record's fields (hash-chained in the node's audit log).
VERBATIM_KEYS = frozenset({"args", "params", "fields"})
# Bare keys that name a node or an object without saying which: use node_id, request_id, ...
BANNED_KEYS = {
    "id": "name the identifier after what it identifies (node_id, request_id, participant ...)",
    "node": "a node is named node_id",
    "replica": "a node is named node_id",
    "validator": "a node is named node_id",
    "primary": "the primary is named primary_node_id",
}
_SNAKE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_HEX = re.compile(r"[0-9a-f]{16,}")  # a hash or an id used as a key: data, not a field name
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME_WORDS = re.compile(r"(?:^|_)(?:time|timestamp|at|since|until|elapsed|duration)$")
_MAP = re.compile(r"_by_[a-z0-9]+$")  # messages_by_type: a map from data values, not fields
_UNIT_SUFFIXES = ("_fen", "_minor")
AMOUNT_FIELDS = frozenset({"amount", "currency", "amount_minor"})


def amount_object(minor: int, currency: str) -> dict[str, Any] | None:
    """``{"amount": "12.34", "currency": currency, "amount_minor": minor}``, or None if the
    currency is not an ISO 4217 code the ledger knows."""
    from ibledger.contracts import ContractError, format_amount

    try:
        return {
            "amount": format_amount(minor, currency),
            "currency": currency,
            "amount_minor": minor,
        }
    except (ContractError, TypeError):
        return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def normalize(
    value: Any, currency: str | None = None, currencies: Mapping[str, str] | None = None
) -> Any:
    """``value`` with every amount written as an amount object (see the module docstring)."""
    return _normalize(value, currency, currencies or {})


def _normalize(value: Any, currency: str | None, currencies: Mapping[str, str]) -> Any:
    if isinstance(value, list | tuple):
        return [_normalize(item, currency, currencies) for item in value]
    if not isinstance(value, Mapping):
        return value
    own = value.get("currency")
    isin = value.get("isin")
    if isinstance(own, str):
        currency = own
    elif isinstance(isin, str) and isin in currencies:
        currency = currencies[isin]
    result: dict[str, Any] = {}
    for key, item in value.items():
        name, converted = _field(str(key), item, currency, currencies)
        if name in value and name != key:  # the stem is taken: keep the field as the node sent it
            name, converted = str(key), item
        result[name] = converted
    return result


def _field(
    key: str, item: Any, currency: str | None, currencies: Mapping[str, str]
) -> tuple[str, Any]:
    if key in VERBATIM_KEYS:
        return key, item
    if _is_int(item):
        unit_currency = {"_fen": "CNY", "_minor": currency}
        for suffix in _UNIT_SUFFIXES:
            if key.endswith(suffix) and key != suffix and unit_currency[suffix]:
                amount = amount_object(item, unit_currency[suffix] or "")
                if amount is not None:
                    return key.removesuffix(suffix), amount
        if key in AMOUNT_KEYS and currency:
            amount = amount_object(item, currency)
            if amount is not None:
                return key, amount
        return key, item
    if key == "allotments" and currency and isinstance(item, list):
        return key, [_allotment(row, currency) for row in item]
    return key, _normalize(item, currency, currencies)


def _allotment(row: Any, currency: str) -> Any:
    """An allotment ``[holder, quantity]`` pair as ``{"holder": ..., "quantity": amount}``."""
    if isinstance(row, list) and len(row) == 2 and isinstance(row[0], str) and _is_int(row[1]):
        amount = amount_object(row[1], currency)
        if amount is not None:
            return {"holder": row[0], "quantity": amount}
    return row


def violations(value: Any) -> list[str]:
    """Every place where ``value`` (a command's JSON result) breaks the convention."""
    found: list[str] = []
    if not isinstance(value, Mapping):
        found.append("$: a command's JSON output is an object")
    _check(value, "$", found)
    return found


def _check(value: Any, path: str, found: list[str], monetary: bool = False) -> None:
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]", found, monetary)
        return
    if not isinstance(value, Mapping):
        return
    if set(value) == AMOUNT_FIELDS:
        _check_amount(value, path, found)
        return
    monetary = monetary or isinstance(value.get("currency"), str) or "isin" in value
    for key, item in value.items():
        where = f"{path}.{key}"
        if isinstance(key, str) and _MAP.search(key) and isinstance(item, Mapping):
            for name, entry in item.items():  # keyed by data (a message type, a kind)
                _check(entry, f"{where}[{name!r}]", found, monetary)
            continue
        if not isinstance(key, str) or not _SNAKE.fullmatch(key) or _HEX.fullmatch(key):
            found.append(f"{where}: keys are snake_case field names (a map is a list of objects)")
            continue
        if key in VERBATIM_KEYS:
            continue
        if key in BANNED_KEYS:
            found.append(f"{where}: {BANNED_KEYS[key]}")
        if key.endswith(_UNIT_SUFFIXES):
            found.append(f"{where}: an amount is an amount object, not a field in minor units")
        bare = isinstance(item, int | float | str) and not isinstance(item, bool)
        if key in AMOUNT_KEYS and bare and monetary:
            found.append(f"{where}: an amount is an amount object, not a bare number")
        number = isinstance(item, int | float) and not isinstance(item, bool)
        if number and _TIME_WORDS.search(key):
            found.append(f"{where}: a time is named with its unit (_ms, _s)")
        is_date = isinstance(item, str) and _ISO_DATE.fullmatch(item)
        if key.endswith(("_date", "_day")) and item is not None and not is_date:
            found.append(f"{where}: a date is an ISO 8601 YYYY-MM-DD string")
        _check(item, where, found, monetary)


def _check_amount(value: Mapping[str, Any], path: str, found: list[str]) -> None:
    amount, currency, minor = value["amount"], value["currency"], value["amount_minor"]
    if not (isinstance(currency, str) and _CURRENCY.fullmatch(currency)):
        found.append(f"{path}.currency: an ISO 4217 code")
        return
    if not _is_int(minor):
        found.append(f"{path}.amount_minor: an integer count of minor units")
        return
    if not (isinstance(amount, str) and _DECIMAL.fullmatch(amount)):
        found.append(f"{path}.amount: a decimal string in major units")
        return
    expected = amount_object(minor, currency)
    if expected is None or expected["amount"] != amount:
        found.append(f"{path}: amount {amount!r} is not {minor} minor units of {currency}")
