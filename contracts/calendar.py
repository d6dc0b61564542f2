"""Business calendar and rule parameters, held in state and loaded from genesis.

Theory of operation
-------------------
Dates are integer day numbers (days since 1970-01-01) of the Asia/Shanghai calendar; "today" is
derived from the agreed block timestamp only (``core.business_day``). A business day is a weekday
that is not a listed holiday, or a weekend day listed as a working day (调休). The calendar is
reference data owned by the operator and loaded at genesis (``cfg/calendar``).

Rule parameters that the domain text leaves open (presentment window length, request time-outs,
answer deadlines, limitation periods, the term limits by issue date, the remote-acceptor interest
allowance) live in ``cfg/params`` so that every replica applies the same value; defaults follow
docs/domain.md B.7 and B.10.

Genesis schema (all optional)::

    "calendar":   {"holidays": ["2024-10-01", ...], "working_weekend_days": ["2024-09-29", ...]}
    "parameters": {"presentment_window_days": 10, "request_ttl_business_days": 3,
                   "payment_answer_days": 3, "rights_expiry_months": 24,
                   "recourse_limitation_months": 6, "re_recourse_limitation_months": 3,
                   "remote_allowance_days": 0, "repo_day_count_basis": 365,
                   "allow_early_presentment": true,
                   "allow_overdue_presentment": true,
                   "dvp_settlement": false, "settlement_ttl_business_days": 0,
                   "term_rules": [{"issued_from": "2023-01-01", "months": 6}, ...]}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from .args import EPOCH_ORDINAL, day_to_iso, parse_iso_date
from .errors import GenesisError, StoredFormError
from .stored import Fields, StoredMap

__all__ = [
    "CALENDAR_KEY",
    "PARAMS_KEY",
    "BusinessCalendar",
    "Parameters",
    "add_months",
    "weekday",
]

CALENDAR_KEY = b"cfg/calendar"
PARAMS_KEY = b"cfg/params"


def weekday(day: int) -> int:
    """Monday = 0 ... Sunday = 6 (1970-01-01 was a Thursday)."""
    return (day + 3) % 7


def add_months(day: int, months: int) -> int:
    """Same day-of-month ``months`` later, or that month's last day (票据法 art. 107)."""
    start = date.fromordinal(day + EPOCH_ORDINAL)
    index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    for day_of_month in (start.day, 30, 29, 28):
        if day_of_month <= start.day:
            try:
                return date(year, month, day_of_month).toordinal() - EPOCH_ORDINAL
            except ValueError:
                continue
    raise AssertionError("unreachable: every month has a 28th")


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    holidays: frozenset[int]
    working_weekend_days: frozenset[int]

    def is_business_day(self, day: int) -> bool:
        if day in self.holidays:
            return False
        return weekday(day) < 5 or day in self.working_weekend_days

    def roll_forward(self, day: int) -> int:
        """``day`` if it is a business day, else the next business day."""
        while not self.is_business_day(day):
            day += 1
        return day

    def add_business_days(self, day: int, count: int) -> int:
        """The ``count``-th business day after ``day`` (``day`` itself not counted)."""
        while count > 0:
            day += 1
            if self.is_business_day(day):
                count -= 1
        return day

    def to_stored(self) -> StoredMap:
        return {
            "holidays": list(sorted(self.holidays)),
            "working_weekend_days": list(sorted(self.working_weekend_days)),
        }

    @classmethod
    def from_stored(cls, value: object) -> BusinessCalendar:
        """The stored calendar; no record (a state without one) is an empty calendar."""
        if value is None:
            return cls(frozenset(), frozenset())
        f = Fields(value, "calendar")
        record = cls(frozenset(_days(f, "holidays")), frozenset(_days(f, "working_weekend_days")))
        f.done()
        return record


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _days(f: Fields, key: str) -> list[int]:
    days: list[int] = []
    for item in f.list_(key):
        if isinstance(item, bool) or not isinstance(item, int):
            raise StoredFormError(f"calendar.{key} must be a list of day numbers")
        days.append(item)
    return days


@dataclass(frozen=True, slots=True)
class Parameters:
    presentment_window_days: int = 10
    request_ttl_business_days: int = 3
    payment_answer_days: int = 3
    rights_expiry_months: int = 24
    recourse_limitation_months: int = 6
    re_recourse_limitation_months: int = 3
    remote_allowance_days: int = 0
    repo_day_count_basis: int = 365
    allow_early_presentment: bool = True
    allow_overdue_presentment: bool = True
    # Delivery versus payment (B.6 step 3): off, a signature moves the piece at once; on, the
    # cash leg of a DVP action waits for the settlement agent, by the end of the
    # ``settlement_ttl_business_days``-th business day after the signing business day.
    dvp_settlement: bool = False
    settlement_ttl_business_days: int = 0
    # Look-through (C.4): the longest chain of products holding products, counted in
    # product-in-product layers. 1 is the rule of the 2018 asset-management guidance: a product
    # may invest in products that themselves hold no further products.
    max_nesting_depth: int = 1
    # (first issue day, maximum term in months), sorted by day; the last rule whose day is on or
    # before the issue date applies (B.1: 12 months before 2023-01-01, 6 months from then).
    term_rules: tuple[tuple[int, int], ...] = (
        (date(1, 1, 1).toordinal() - EPOCH_ORDINAL, 12),
        (date(2023, 1, 1).toordinal() - EPOCH_ORDINAL, 6),
    )

    def max_term_months(self, issue_day: int) -> int:
        months = self.term_rules[0][1]
        for first_day, rule_months in self.term_rules:
            if first_day <= issue_day:
                months = rule_months
        return months

    def to_stored(self) -> StoredMap:
        stored: StoredMap = {name: getattr(self, name) for name in _INT_PARAMS}
        stored.update({name: getattr(self, name) for name in _BOOL_PARAMS})
        stored["term_rules"] = [[day, months] for day, months in self.term_rules]
        # Stored only when set, so that a chain without them keeps its state bytes.
        for name, default in _OPTIONAL_PARAMS.items():
            if getattr(self, name) != default:
                stored[name] = getattr(self, name)
        return stored

    @classmethod
    def from_stored(cls, value: object) -> Parameters:
        """The stored parameters; no record (a state without one) is the defaults."""
        if value is None:
            return cls()
        f = Fields(value, "parameters")
        ints = {name: f.int_(name) for name in _INT_PARAMS}
        bools = {name: f.bool_(name) for name in _BOOL_PARAMS}
        rules: list[tuple[int, int]] = []
        for rule in f.list_("term_rules"):
            if not isinstance(rule, list) or len(rule) != 2:
                raise StoredFormError("parameters.term_rules must list [day, months] pairs")
            day, months = rule
            if not _is_int(day) or not _is_int(months):
                raise StoredFormError("parameters.term_rules must list [day, months] pairs")
            assert isinstance(day, int) and isinstance(months, int)
            rules.append((day, months))
        dvp = f.bool_("dvp_settlement") if f.has("dvp_settlement") else False
        ttl = f.int_("settlement_ttl_business_days") if f.has("settlement_ttl_business_days") else 0
        nesting = f.int_("max_nesting_depth") if f.has("max_nesting_depth") else 1
        f.done()
        return cls(
            presentment_window_days=ints["presentment_window_days"],
            request_ttl_business_days=ints["request_ttl_business_days"],
            payment_answer_days=ints["payment_answer_days"],
            rights_expiry_months=ints["rights_expiry_months"],
            recourse_limitation_months=ints["recourse_limitation_months"],
            re_recourse_limitation_months=ints["re_recourse_limitation_months"],
            remote_allowance_days=ints["remote_allowance_days"],
            repo_day_count_basis=ints["repo_day_count_basis"],
            allow_early_presentment=bools["allow_early_presentment"],
            allow_overdue_presentment=bools["allow_overdue_presentment"],
            term_rules=tuple(rules),
            dvp_settlement=dvp,
            settlement_ttl_business_days=ttl,
            max_nesting_depth=nesting,
        )


_OPTIONAL_PARAMS: dict[str, object] = {
    "dvp_settlement": False,
    "settlement_ttl_business_days": 0,
    "max_nesting_depth": 1,
}
_SETTLEMENT_TTL_RANGE = (0, 10)
_NESTING_RANGE = (1, 8)

_INT_PARAMS = {
    "presentment_window_days": (0, 366),
    "request_ttl_business_days": (1, 60),
    "payment_answer_days": (0, 60),
    "rights_expiry_months": (1, 120),
    "recourse_limitation_months": (1, 120),
    "re_recourse_limitation_months": (1, 120),
    "remote_allowance_days": (0, 10),
    "repo_day_count_basis": (360, 365),
}
_BOOL_PARAMS = ("allow_early_presentment", "allow_overdue_presentment")


def _genesis_dates(section: Mapping[str, Any], name: str) -> frozenset[int]:
    values = section.get(name, [])
    if not isinstance(values, list):
        raise GenesisError(f"calendar.{name} must be a list of YYYY-MM-DD dates")
    days: set[int] = set()
    for index, text in enumerate(values):
        day = parse_iso_date(text)
        if day is None:
            raise GenesisError(f"calendar.{name}[{index}] = {text!r} is not a YYYY-MM-DD date")
        if day in days:
            raise GenesisError(f"calendar.{name}[{index}] = {text!r} is listed twice")
        days.add(day)
    return frozenset(days)


def calendar_from_genesis(section: Any) -> BusinessCalendar:
    if section is None:
        return BusinessCalendar(frozenset(), frozenset())
    if not isinstance(section, Mapping):
        raise GenesisError("calendar must be a map")
    unknown = sorted(set(section) - {"holidays", "working_weekend_days"})
    if unknown:
        raise GenesisError(f"calendar.{unknown[0]} is not a known calendar field")
    holidays = _genesis_dates(section, "holidays")
    working = _genesis_dates(section, "working_weekend_days")
    for day in sorted(working):
        if weekday(day) < 5:
            raise GenesisError(
                f"calendar.working_weekend_days: {day_to_iso(day)} is not a Saturday or Sunday"
            )
        if day in holidays:
            raise GenesisError(f"calendar: {day_to_iso(day)} is both a holiday and a working day")
    return BusinessCalendar(holidays, working)


def parameters_from_genesis(section: Any) -> Parameters:
    if section is None:
        return Parameters()
    if not isinstance(section, Mapping):
        raise GenesisError("parameters must be a map")
    values: dict[str, Any] = {}
    for name in sorted(section):
        value = section[name]
        if name in _INT_PARAMS:
            low, high = _INT_PARAMS[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise GenesisError(f"parameters.{name} must be an integer from {low} to {high}")
            if name == "repo_day_count_basis" and value not in (360, 365):
                raise GenesisError("parameters.repo_day_count_basis must be 360 or 365")
            values[name] = value
        elif name in _BOOL_PARAMS or name == "dvp_settlement":
            if not isinstance(value, bool):
                raise GenesisError(f"parameters.{name} must be true or false")
            values[name] = value
        elif name == "settlement_ttl_business_days":
            low, high = _SETTLEMENT_TTL_RANGE
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise GenesisError(f"parameters.{name} must be an integer from {low} to {high}")
            values[name] = value
        elif name == "max_nesting_depth":
            low, high = _NESTING_RANGE
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise GenesisError(f"parameters.{name} must be an integer from {low} to {high}")
            values[name] = value
        elif name == "term_rules":
            values[name] = _term_rules_from_genesis(value)
        else:
            raise GenesisError(f"parameters.{name} is not a known parameter")
    return Parameters(**values)


def _term_rules_from_genesis(value: Any) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, list) or not value:
        raise GenesisError("parameters.term_rules must be a non-empty list")
    rules: list[tuple[int, int]] = []
    for index, rule in enumerate(value):
        where = f"parameters.term_rules[{index}]"
        if not isinstance(rule, Mapping) or set(rule) != {"issued_from", "months"}:
            raise GenesisError(f"{where} must be a map with exactly issued_from and months")
        day = parse_iso_date(rule["issued_from"])
        months = rule["months"]
        if day is None:
            raise GenesisError(f"{where}.issued_from must be a YYYY-MM-DD date")
        if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 120:
            raise GenesisError(f"{where}.months must be an integer from 1 to 120")
        rules.append((day, months))
    rules.sort()
    if len({day for day, _ in rules}) != len(rules):
        raise GenesisError("parameters.term_rules has two rules for the same date")
    return tuple(rules)
