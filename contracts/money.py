"""Amounts in integer minor units, and the exact interest arithmetic of docs/domain.md B.10.

Theory of operation
-------------------
The ledger never holds a float. User input is a decimal string in major units
("1200000.00" yuan); ``parse_amount`` turns it into an integer count of minor units of the
currency's ISO 4217 exponent, refusing what cannot be represented exactly (more decimals than
the exponent), negative values, exponents, signs and spaces. ``format_amount`` is its inverse.

Interest uses exact rational arithmetic on integers and rounds once, at the end, half up to one
minor unit: ``round_half_up(face * rate_ppm * days / (360 * 10^6))`` (B.10).
"""

from __future__ import annotations

import re

from .errors import ContractError
from .identifiers import currency_minor_unit

__all__ = [
    "AMOUNT_MAX_MINOR",
    "discount_interest",
    "format_amount",
    "parse_amount",
    "round_half_up_div",
]

# Amounts live in signed 64-bit fields; a bound well under 2^63 leaves room for sums.
AMOUNT_MAX_MINOR = 10**17
_AMOUNT = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")
PPM = 1_000_000
DAY_COUNT_BASIS = 360


def parse_amount(text: str, currency: str, *, code: str = "AMOUNT_INVALID") -> int:
    """Decimal major-unit string -> integer minor units of ``currency``.

    Raises ``ContractError(CURRENCY_INVALID)`` for an unknown currency and ``ContractError(code)``
    for a malformed amount (``code`` lets bills report ``BILL_AMOUNT_INVALID``).
    """
    exponent = currency_minor_unit(currency)
    if not isinstance(text, str) or not text.isascii():
        raise ContractError(code, "The amount must be written with the digits 0-9 and a point.")
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise ContractError(
            code,
            f"Amount {text!r} is not a plain decimal number (no sign, spaces, exponent or "
            "thousands separators).",
        )
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > exponent:
        raise ContractError(
            code,
            f"Amount {text!r} has {len(fraction)} decimals but {currency} has {exponent}; "
            "amounts are never rounded.",
        )
    minor: int = int(whole) * 10**exponent + (int(fraction.ljust(exponent, "0")) if exponent else 0)
    if minor > AMOUNT_MAX_MINOR:
        raise ContractError(code, f"Amount {text!r} is too large.")
    return minor


def format_amount(minor: int, currency: str) -> str:
    """Integer minor units -> decimal major-unit string with exactly the currency's decimals."""
    exponent = currency_minor_unit(currency)
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError("minor must be an int")
    sign = "-" if minor < 0 else ""
    magnitude = abs(minor)
    if exponent == 0:
        return f"{sign}{magnitude}"
    whole, fraction = divmod(magnitude, 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d}"


def round_half_up_div(numerator: int, denominator: int) -> int:
    """Nearest integer to numerator/denominator for non-negative operands, halves rounded up."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("round_half_up_div needs numerator >= 0 and denominator > 0")
    result: int = (2 * numerator + denominator) // (2 * denominator)
    return result


def discount_interest(face_minor: int, rate_ppm: int, days: int) -> int:
    """Interest in minor units for ``days`` at ``rate_ppm`` per annum, actual/360 (B.10)."""
    if days <= 0:
        return 0
    return round_half_up_div(face_minor * rate_ppm * days, DAY_COUNT_BASIS * PPM)
