"""Amounts in minor units (parse/format), B.10 interest arithmetic including the worked example,
month arithmetic of art. 107, business days and genesis calendar/parameter validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibledger.contracts.args import day_to_iso, parse_iso_date
from ibledger.contracts.calendar import (
    BusinessCalendar,
    Parameters,
    add_months,
    calendar_from_genesis,
    parameters_from_genesis,
)
from ibledger.contracts.core import business_day
from ibledger.contracts.errors import ContractError, GenesisError
from ibledger.contracts.money import (
    discount_interest,
    format_amount,
    parse_amount,
    round_half_up_div,
)
from ibledger.contracts.testing import DEMO_CALENDAR, timestamp_ms_of


def day(text: str) -> int:
    value = parse_iso_date(text)
    assert value is not None
    return value


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("1200000.00", "CNY", 120_000_000),
        ("1200000", "CNY", 120_000_000),
        ("0.01", "CNY", 1),
        ("0.1", "CNY", 10),
        ("0", "CNY", 0),
        ("1500", "JPY", 1500),
        ("1.234", "BHD", 1234),
        ("2.5", "CLF", 25000),
    ],
)
def test_parse_amount(text: str, currency: str, minor: int) -> None:
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency", "code"),
    [
        ("1.001", "CNY", "AMOUNT_INVALID"),  # fractional fen: never rounded
        ("1.5", "JPY", "AMOUNT_INVALID"),
        ("-1.00", "CNY", "AMOUNT_INVALID"),
        ("+1.00", "CNY", "AMOUNT_INVALID"),
        ("1e6", "CNY", "AMOUNT_INVALID"),
        (" 1.00", "CNY", "AMOUNT_INVALID"),
        ("1 000.00", "CNY", "AMOUNT_INVALID"),
        ("1,000.00", "CNY", "AMOUNT_INVALID"),
        ("01.00", "CNY", "AMOUNT_INVALID"),
        (".50", "CNY", "AMOUNT_INVALID"),
        ("1.", "CNY", "AMOUNT_INVALID"),
        ("１.00", "CNY", "AMOUNT_INVALID"),  # full-width digit
        ("NaN", "CNY", "AMOUNT_INVALID"),
        ("1.00", "RMB", "CURRENCY_INVALID"),
        ("1.00", "ABC", "CURRENCY_INVALID"),
    ],
)
def test_parse_amount_rejects(text: str, currency: str, code: str) -> None:
    with pytest.raises(ContractError) as raised:
        parse_amount(text, currency)
    assert raised.value.code == code


@settings(database=None, derandomize=True, deadline=None, max_examples=300)
@given(st.integers(0, 10**15), st.sampled_from(["CNY", "JPY", "BHD", "CLF"]))
def test_format_then_parse_round_trips(minor: int, currency: str) -> None:
    assert parse_amount(format_amount(minor, currency), currency) == minor


def test_format_amount() -> None:
    assert format_amount(120_000_000, "CNY") == "1200000.00"
    assert format_amount(5, "CNY") == "0.05"
    assert format_amount(-5, "CNY") == "-0.05"
    assert format_amount(1500, "JPY") == "1500"


def test_b10_worked_example() -> None:
    calendar = calendar_from_genesis(DEMO_CALENDAR)
    face, rate = 100_000_000, 15_000
    days = calendar.roll_forward(day("2024-08-30")) - day("2024-03-01")
    assert days == 182
    assert discount_interest(face, rate, days) == 758_333
    assert face - discount_interest(face, rate, days) == 99_241_667
    rolled = calendar.roll_forward(day("2024-08-31"))
    assert day_to_iso(rolled) == "2024-09-02"
    assert rolled - day("2024-03-01") == 185
    assert discount_interest(face, rate, 185) == 770_833


def test_round_half_up() -> None:
    assert round_half_up_div(5, 2) == 3
    assert round_half_up_div(7, 2) == 4
    assert round_half_up_div(4, 3) == 1
    assert round_half_up_div(0, 7) == 0
    with pytest.raises(ValueError):
        round_half_up_div(-1, 2)


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        ("2023-08-31", 6, "2024-02-29"),
        ("2023-03-31", 6, "2023-09-30"),
        ("2024-01-31", 1, "2024-02-29"),
        ("2023-01-31", 1, "2023-02-28"),
        ("2024-03-01", 6, "2024-09-01"),
        ("2024-08-30", 24, "2026-08-30"),
        ("2024-02-29", 12, "2025-02-28"),
        ("2024-11-30", 3, "2025-02-28"),
    ],
)
def test_add_months_follows_art_107(start: str, months: int, end: str) -> None:
    assert day_to_iso(add_months(day(start), months)) == end


def test_business_days_follow_the_genesis_calendar() -> None:
    calendar = calendar_from_genesis(DEMO_CALENDAR)
    assert not calendar.is_business_day(day("2024-10-01"))  # National Day
    assert calendar.is_business_day(day("2024-10-12"))  # make-up Saturday
    assert not calendar.is_business_day(day("2024-10-13"))  # plain Sunday
    assert day_to_iso(calendar.roll_forward(day("2024-09-30"))) == "2024-09-30"
    assert day_to_iso(calendar.roll_forward(day("2024-10-01"))) == "2024-10-08"
    assert day_to_iso(calendar.add_business_days(day("2024-09-27"), 3)) == "2024-10-08"
    empty = BusinessCalendar(frozenset(), frozenset())
    assert day_to_iso(empty.add_business_days(day("2024-03-01"), 1)) == "2024-03-04"


def test_business_date_is_shanghai_time() -> None:
    # 2024-03-01 23:30 Shanghai is 15:30 UTC the same day; 00:30 Shanghai is the previous UTC day.
    assert day_to_iso(business_day(timestamp_ms_of("2024-03-01", 23) + 30 * 60_000)) == (
        "2024-03-01"
    )
    assert day_to_iso(business_day(timestamp_ms_of("2024-03-02", 0))) == "2024-03-02"


def test_term_rules_by_issue_date() -> None:
    params = Parameters()
    assert params.max_term_months(day("2022-12-31")) == 12
    assert params.max_term_months(day("2023-01-01")) == 6
    custom = parameters_from_genesis(
        {
            "term_rules": [
                {"issued_from": "2000-01-01", "months": 12},
                {"issued_from": "2023-01-01", "months": 6},
            ],
            "presentment_window_days": 9,
        }
    )
    assert custom.presentment_window_days == 9
    assert Parameters.from_stored(custom.to_stored()) == custom


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"holidays": ["2024-02-30"]}, r"holidays\[0\]"),
        ({"holidays": ["2024-10-01", "2024-10-01"]}, "twice"),
        ({"working_weekend_days": ["2024-10-08"]}, "not a Saturday or Sunday"),
        ({"holidays": ["2024-10-12"], "working_weekend_days": ["2024-10-12"]}, "both"),
        ({"weekends": []}, "weekends"),
        ({"holidays": "2024-10-01"}, "list"),
    ],
)
def test_calendar_genesis_errors(section: dict[str, object], fragment: str) -> None:
    with pytest.raises(GenesisError, match=fragment):
        calendar_from_genesis(section)


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"presentment_window_days": -1}, "presentment_window_days"),
        ({"presentment_window_days": True}, "presentment_window_days"),
        ({"repo_day_count_basis": 361}, "360 or 365"),
        ({"allow_early_presentment": 1}, "true or false"),
        ({"term_rules": []}, "non-empty"),
        ({"term_rules": [{"issued_from": "x", "months": 6}]}, "issued_from"),
        ({"speed_of_light": 1}, "not a known parameter"),
    ],
)
def test_parameter_genesis_errors(section: dict[str, object], fragment: str) -> None:
    with pytest.raises(GenesisError, match=fragment):
        parameters_from_genesis(section)
