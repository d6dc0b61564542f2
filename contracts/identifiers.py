"""Identifier and code validation (docs/domain.md Part A), strict and exact.

Theory of operation
-------------------
Every validator takes the value exactly as it will be signed: no trimming, no case folding, no
separator removal (normalisation is a UI concern). Each returns a ``ValidationResult``; a failed
result carries the stable error code of its kind (``ISIN_INVALID``, ``LEI_INVALID`` ...) and
``rule``, a sentence naming the first rule that failed. Advisory findings (the GB 11714
organisation-code check inside a USCC, an unknown CNAPS bank category, a BIC test code outside the
production profile) are ``warnings`` and never make a value invalid.

Rules are checked in a fixed order (length, character set, structure, code lists, check digits)
so the reported rule is deterministic. Contracts call ``require(kind, value)``, which raises the
kind's ``ContractError``.

Reference tables (ISO 3166-1 alpha-2, ISO 4217 with minor units, CFI categories and groups) are
embedded: contracts may not read files, and the tables change rarely enough to be versioned with
the code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from .errors import ContractError

__all__ = [
    "CODES",
    "COUNTRIES",
    "CURRENCY_MINOR_UNITS",
    "IDENTIFIER_CODES",
    "KINDS",
    "ValidationResult",
    "bic_canonical",
    "currency_minor_unit",
    "isin_check_digit",
    "lei_check_digits",
    "require",
    "require_text",
    "sub_range_bounds",
    "uscc_check_char",
    "validate",
]


def _words(text: str) -> list[str]:
    return text.split()


@dataclass(frozen=True, slots=True)
class ValidationResult:
    valid: bool
    kind: str
    value: str
    rule: str | None
    warnings: tuple[str, ...] = ()
    code: str | None = None  # the stable error code when not valid


# ISO 3166-1 alpha-2 officially assigned codes (249).
COUNTRIES: frozenset[str] = frozenset(
    _words(
        """
        AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
        BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
        DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
        GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
        KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
        MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
        PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
        SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
        VN VU WF WS YE YT ZA ZM ZW
        """
    )
)

# ANNA special ISIN prefixes (A.1); the pseudo-prefixes XF, QS, QT, QW are not in either set.
ISIN_SPECIAL_PREFIXES: frozenset[str] = frozenset({"XS", "EU", "EZ"})
ISIN_FORBIDDEN_PREFIXES: frozenset[str] = frozenset({"XF", "QS", "QT", "QW"})

# ISO 4217 active currency codes with a defined minor unit (funds and metals with "N.A." minor
# units are excluded: the ledger must know the exponent of every amount it stores).
_CURRENCY_TABLE = """
AED 2 AFN 2 ALL 2 AMD 2 ANG 2 AOA 2 ARS 2 AUD 2 AWG 2 AZN 2 BAM 2 BBD 2 BDT 2 BGN 2 BHD 3
BIF 0 BMD 2 BND 2 BOB 2 BOV 2 BRL 2 BSD 2 BTN 2 BWP 2 BYN 2 BZD 2 CAD 2 CDF 2 CHE 2 CHF 2
CHW 2 CLF 4 CLP 0 CNY 2 COP 2 COU 2 CRC 2 CUP 2 CVE 2 CZK 2 DJF 0 DKK 2 DOP 2 DZD 2 EGP 2
ERN 2 ETB 2 EUR 2 FJD 2 FKP 2 GBP 2 GEL 2 GHS 2 GIP 2 GMD 2 GNF 0 GTQ 2 GYD 2 HKD 2 HNL 2
HTG 2 HUF 2 IDR 2 ILS 2 INR 2 IQD 3 IRR 2 ISK 0 JMD 2 JOD 3 JPY 0 KES 2 KGS 2 KHR 2 KMF 0
KPW 2 KRW 0 KWD 3 KYD 2 KZT 2 LAK 2 LBP 2 LKR 2 LRD 2 LSL 2 LYD 3 MAD 2 MDL 2 MGA 2 MKD 2
MMK 2 MNT 2 MOP 2 MRU 2 MUR 2 MVR 2 MWK 2 MXN 2 MXV 2 MYR 2 MZN 2 NAD 2 NGN 2 NIO 2 NOK 2
NPR 2 NZD 2 OMR 3 PAB 2 PEN 2 PGK 2 PHP 2 PKR 2 PLN 2 PYG 0 QAR 2 RON 2 RSD 2 RUB 2 RWF 0
SAR 2 SBD 2 SCR 2 SDG 2 SEK 2 SGD 2 SHP 2 SLE 2 SOS 2 SRD 2 SSP 2 STN 2 SVC 2 SYP 2 SZL 2
THB 2 TJS 2 TMT 2 TND 3 TOP 2 TRY 2 TTD 2 TWD 2 TZS 2 UAH 2 UGX 0 USD 2 USN 2 UYI 0 UYU 2
UYW 4 UZS 2 VED 2 VES 2 VND 0 VUV 0 WST 2 XAF 0 XCD 2 XCG 2 XOF 0 XPF 0 YER 2 ZAR 2 ZMW 2
ZWG 2
"""
_CURRENCY_WORDS = _CURRENCY_TABLE.split()
CURRENCY_MINOR_UNITS: dict[str, int] = {
    _CURRENCY_WORDS[i]: int(_CURRENCY_WORDS[i + 1]) for i in range(0, len(_CURRENCY_WORDS), 2)
}
# Codes people type that are not ISO 4217 (A.4): named so the rejection can say why.
_NOT_ISO_CURRENCIES = {"RMB": "use CNY", "CNH": "offshore RMB is booked as CNY"}

# ISO 10962 categories and the groups allowed in each (A.3).
CFI_GROUPS: dict[str, str] = {
    "E": "SPCFLDYM",
    "D": "BCWTSEGANDYM",
    "C": "IHBESFPM",
    "R": "ASPWFDM",
    "O": "CPM",
    "F": "FC",
    "S": "RTECFM",
    "H": "RTECFM",
    "I": "FT",
    "J": "EFCRT",
    "K": "RTECFYM",
    "L": "LRS",
    "T": "CTRIBDM",
    "M": "CM",
}

# USCC (GB 32100-2015, A.6).
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {char: index for index, char in enumerate(USCC_CHARSET)}
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
USCC_AUTHORITIES = frozenset("123456789ANY")
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

# CNAPS bank-category codes known to the prototype (A.7, SHOULD-level check only).
CNAPS_KNOWN_CATEGORIES: frozenset[str] = frozenset(
    _words(
        """
        001 011 102 103 104 105 201 202 203 301 302 303 304 305 306 307 308 309 310 313 314 315 316
        317 318 319 320 322 401 402 403
        """
    )
)

# Bill package kind digit (A.8): bank-acceptance family and commercial-acceptance family.
BILL_KIND_DIGITS_BANK = frozenset("158")
BILL_KIND_DIGITS_COMMERCIAL = frozenset("267")
PACKAGE_AMOUNT_MAX_FEN = 10**11

CODES: dict[str, str] = {
    "isin": "ISIN_INVALID",
    "lei": "LEI_INVALID",
    "cfi": "CFI_INVALID",
    "currency": "CURRENCY_INVALID",
    "bic": "BIC_INVALID",
    "uscc": "USCC_INVALID",
    "cnaps": "CNAPS_INVALID",
    "bill_no": "BILL_NO_INVALID",
    "bill_range": "SPLIT_INVALID",
    "wm_product": "PRODUCT_CODE_INVALID",
    "trust_product": "PRODUCT_CODE_INVALID",
}
KINDS: tuple[str, ...] = tuple(CODES)

_UPPER_ALNUM = re.compile(r"[A-Z0-9]+")


def _ok(kind: str, value: str, warnings: tuple[str, ...] = ()) -> ValidationResult:
    return ValidationResult(True, kind, value, None, warnings, None)


def _bad(kind: str, value: str, rule: str, warnings: tuple[str, ...] = ()) -> ValidationResult:
    return ValidationResult(False, kind, value, rule, warnings, CODES[kind])


def _charset_rule(value: str, what: str) -> str | None:
    """Name the first character-set fault of an identifier made of [A-Z0-9]."""
    for char in value:
        if "a" <= char <= "z":
            return f"{what} must be upper case; found lower-case {char!r}"
        if not ("A" <= char <= "Z" or "0" <= char <= "9"):
            return f"{what} may contain only A-Z and 0-9; found {char!r}"
    return None


def _expand_letters(value: str) -> str:
    """A=10 ... Z=35, digits unchanged (ISIN and LEI)."""
    return "".join(str(int(char, 36)) for char in value)


# --- ISIN -----------------------------------------------------------------------------------


def _luhn_sum(digits: str, double_rightmost: bool) -> int:
    total = 0
    double = double_rightmost
    for char in reversed(digits):
        digit = int(char)
        if double:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
        double = not double
    return total


def isin_check_digit(body: str) -> int:
    """Check digit for the first 11 ISIN characters (A.1: Luhn after letter expansion)."""
    return (10 - _luhn_sum(_expand_letters(body), double_rightmost=True) % 10) % 10


def _validate_isin(value: str) -> ValidationResult:
    kind = "isin"
    if len(value) != 12:
        return _bad(kind, value, f"an ISIN has 12 characters, this one has {len(value)}")
    rule = _charset_rule(value, "an ISIN")
    if rule:
        return _bad(kind, value, rule)
    if not value[:2].isalpha():
        return _bad(kind, value, "the first two characters of an ISIN are a letter prefix")
    if not value[11].isdigit():
        return _bad(kind, value, "the last character of an ISIN is a decimal check digit")
    prefix = value[:2]
    if prefix in ISIN_FORBIDDEN_PREFIXES:
        return _bad(kind, value, f"prefix {prefix} is an internal or interim pseudo-prefix")
    if prefix not in COUNTRIES and prefix not in ISIN_SPECIAL_PREFIXES:
        return _bad(kind, value, f"prefix {prefix} is neither an ISO 3166 country nor XS/EU/EZ")
    expected = isin_check_digit(value[:11])
    if int(value[11]) != expected:
        return _bad(kind, value, f"check digit is {value[11]}, the computed one is {expected}")
    return _ok(kind, value)


# --- LEI ------------------------------------------------------------------------------------


def lei_check_digits(base: str) -> str:
    """The two MOD 97-10 check digits for an 18-character LEI base (A.2)."""
    return f"{98 - int(_expand_letters(base + '00')) % 97:02d}"


def _validate_lei(value: str) -> ValidationResult:
    kind = "lei"
    if len(value) != 20:
        return _bad(kind, value, f"an LEI has 20 characters, this one has {len(value)}")
    rule = _charset_rule(value, "an LEI")
    if rule:
        return _bad(kind, value, rule)
    if not value[18:].isdigit():
        return _bad(kind, value, "the last two characters of an LEI are decimal check digits")
    check = int(value[18:])
    if not 2 <= check <= 98:
        return _bad(kind, value, f"check digits {value[18:]} are outside 02-98 and never valid")
    if int(_expand_letters(value)) % 97 != 1:
        expected = lei_check_digits(value[:18])
        return _bad(kind, value, f"check digits are {value[18:]}, the computed ones are {expected}")
    return _ok(kind, value)


# --- CFI ------------------------------------------------------------------------------------


def _validate_cfi(value: str) -> ValidationResult:
    kind = "cfi"
    if len(value) != 6:
        return _bad(kind, value, f"a CFI code has 6 letters, this one has {len(value)}")
    for char in value:
        if not "A" <= char <= "Z":
            return _bad(kind, value, f"a CFI code has only upper-case letters A-Z; found {char!r}")
    category, group = value[0], value[1]
    if category not in CFI_GROUPS:
        return _bad(kind, value, f"{category} is not a CFI category")
    if group not in CFI_GROUPS[category]:
        return _bad(kind, value, f"{group} is not a group of CFI category {category}")
    return _ok(kind, value)


# --- Currency -------------------------------------------------------------------------------


def _validate_currency(value: str) -> ValidationResult:
    kind = "currency"
    if len(value) != 3:
        return _bad(kind, value, f"an ISO 4217 code has 3 letters, this one has {len(value)}")
    for char in value:
        if not "A" <= char <= "Z":
            return _bad(kind, value, f"an ISO 4217 code has only letters A-Z; found {char!r}")
    if value in _NOT_ISO_CURRENCIES:
        return _bad(kind, value, f"{value} is not an ISO 4217 code ({_NOT_ISO_CURRENCIES[value]})")
    if value not in CURRENCY_MINOR_UNITS:
        return _bad(kind, value, f"{value} is not an ISO 4217 currency with a known minor unit")
    return _ok(kind, value)


def currency_minor_unit(code: str) -> int:
    """The ISO 4217 exponent; raises ``ContractError(CURRENCY_INVALID)`` for unknown codes."""
    require("currency", code)
    return CURRENCY_MINOR_UNITS[code]


# --- BIC ------------------------------------------------------------------------------------


def _validate_bic(value: str, production: bool) -> ValidationResult:
    kind = "bic"
    if len(value) not in (8, 11):
        return _bad(kind, value, f"a BIC has 8 or 11 characters, this one has {len(value)}")
    rule = _charset_rule(value, "a BIC")
    if rule:
        return _bad(kind, value, rule)
    country = value[4:6]
    if not country.isalpha():
        return _bad(kind, value, "characters 5-6 of a BIC are letters (the country code)")
    if country not in COUNTRIES:
        return _bad(kind, value, f"{country} in a BIC is not an ISO 3166 country code")
    warnings: tuple[str, ...] = ()
    if len(value) == 11:
        branch = value[8:]
        if branch != "XXX" and branch.startswith("X"):
            return _bad(kind, value, f"branch code {branch} starts with X but is not XXX")
    if value[7] == "0":
        if production:
            return _bad(kind, value, "location code ending in 0 marks a test-and-training BIC")
        warnings = ("location code ending in 0 marks a test-and-training BIC",)
    return _ok(kind, value, warnings)


def bic_canonical(value: str) -> str:
    """11-character form used for equality: an 8-character BIC denotes branch XXX."""
    return value + "XXX" if len(value) == 8 else value


# --- USCC -----------------------------------------------------------------------------------


def uscc_check_char(first17: str) -> str:
    """GB 32100 MOD 31 check character for the first 17 characters."""
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def _org_code_check(code8: str) -> str:
    """GB 11714 check character over the 8-character organisation-code body."""
    total = sum(int(c, 36) * w for c, w in zip(code8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def _validate_uscc(value: str) -> ValidationResult:
    kind = "uscc"
    if len(value) != 18:
        return _bad(kind, value, f"a USCC has 18 characters, this one has {len(value)}")
    rule = _charset_rule(value, "a USCC")
    if rule:
        return _bad(kind, value, rule)
    for position, char in enumerate(value, start=1):
        if char not in _USCC_VALUE:
            return _bad(kind, value, f"letter {char} (position {position}) is never used in a USCC")
    if not value[2:8].isdigit():
        return _bad(kind, value, "positions 3-8 of a USCC (administrative division) are digits")
    if value[0] not in USCC_AUTHORITIES:
        return _bad(kind, value, f"{value[0]} is not a registration-authority code")
    expected = uscc_check_char(value[:17])
    if value[17] != expected:
        return _bad(kind, value, f"check character is {value[17]}, the computed one is {expected}")
    warnings: tuple[str, ...] = ()
    org_expected = _org_code_check(value[8:16])
    if value[16] != org_expected:
        warnings = (
            f"embedded organisation code check character is {value[16]}, GB 11714 gives "
            f"{org_expected} (advisory only)",
        )
    return _ok(kind, value, warnings)


# --- CNAPS, bill numbers, ranges, product codes ----------------------------------------------


def _validate_cnaps(value: str) -> ValidationResult:
    kind = "cnaps"
    if len(value) != 12:
        return _bad(kind, value, f"a CNAPS bank code has 12 digits, this one has {len(value)}")
    if not (value.isascii() and value.isdigit()):
        return _bad(kind, value, "a CNAPS bank code has only the digits 0-9")
    warnings: tuple[str, ...] = ()
    if value[:3] not in CNAPS_KNOWN_CATEGORIES:
        warnings = (f"bank category {value[:3]} is not in the known category list",)
    return _ok(kind, value, warnings)


def _iso_date_ok(yyyymmdd: str) -> bool:
    try:
        date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return True


def _validate_bill_no(value: str) -> ValidationResult:
    kind = "bill_no"
    if len(value) != 30:
        return _bad(kind, value, f"a bill package number has 30 digits, this one has {len(value)}")
    if not (value.isascii() and value.isdigit()):
        return _bad(kind, value, "a bill package number has only the digits 0-9")
    if value[0] not in BILL_KIND_DIGITS_BANK | BILL_KIND_DIGITS_COMMERCIAL:
        return _bad(kind, value, f"bill kind digit {value[0]} is not one of 1, 2, 5, 6, 7, 8")
    if not _iso_date_ok(value[13:21]):
        return _bad(kind, value, f"registration date {value[13:21]} is not a calendar date")
    warnings: tuple[str, ...] = ()
    if value[1:4] not in CNAPS_KNOWN_CATEGORIES:
        warnings = (f"bank category {value[1:4]} of the CNAPS part is not in the known list",)
    return _ok(kind, value, warnings)


_RANGE = re.compile(r"(0|[1-9][0-9]{0,11}-[1-9][0-9]{0,11})")


def sub_range_bounds(value: str) -> tuple[int, int]:
    """``"0"`` -> (0, 0); ``"s-e"`` -> (s, e). Raises ``ContractError(SPLIT_INVALID)``."""
    require("bill_range", value)
    if value == "0":
        return (0, 0)
    start, end = value.split("-")
    return (int(start), int(end))


def _validate_bill_range(value: str) -> ValidationResult:
    kind = "bill_range"
    if not value.isascii() or _RANGE.fullmatch(value) is None:
        return _bad(kind, value, "a sub-bill range is 0 or start-end (1-12 digits, no zeros first)")
    if value != "0":
        start, end = (int(part) for part in value.split("-"))
        if start > end:
            return _bad(kind, value, "the range start is after its end")
        if end > PACKAGE_AMOUNT_MAX_FEN:
            return _bad(kind, value, "the range ends beyond the 10^11-fen package maximum")
    return _ok(kind, value)


_WM_CODE = re.compile(r"Z[0-9]{13}")
_TRUST_CODE = re.compile(r"ZXD(?:[A-Z0-9]{18}|[A-Z0-9]{21})")


def _validate_wm(value: str) -> ValidationResult:
    if not value.isascii() or _WM_CODE.fullmatch(value) is None:
        return _bad("wm_product", value, "a wealth-management registration code is Z + 13 digits")
    return _ok("wm_product", value)


def _validate_trust(value: str) -> ValidationResult:
    if not value.isascii() or _TRUST_CODE.fullmatch(value) is None:
        return _bad(
            "trust_product", value, "a trust registration code is ZXD + 18 or 21 of A-Z, 0-9"
        )
    return _ok("trust_product", value)


def validate(kind: str, value: str, *, production: bool = False) -> ValidationResult:
    """Validate ``value`` as ``kind`` (one of ``KINDS``); never raises for a bad value.

    ``production`` selects the production profile (BIC test codes rejected, not warned).
    """
    if not isinstance(value, str):
        raise TypeError("value must be a str")
    if kind == "isin":
        return _validate_isin(value)
    if kind == "lei":
        return _validate_lei(value)
    if kind == "cfi":
        return _validate_cfi(value)
    if kind == "currency":
        return _validate_currency(value)
    if kind == "bic":
        return _validate_bic(value, production)
    if kind == "uscc":
        return _validate_uscc(value)
    if kind == "cnaps":
        return _validate_cnaps(value)
    if kind == "bill_no":
        return _validate_bill_no(value)
    if kind == "bill_range":
        return _validate_bill_range(value)
    if kind == "wm_product":
        return _validate_wm(value)
    if kind == "trust_product":
        return _validate_trust(value)
    raise ValueError(f"unknown identifier kind {kind!r}; known: {', '.join(KINDS)}")


_KIND_NAMES = {
    "isin": "ISIN",
    "lei": "LEI",
    "cfi": "CFI code",
    "currency": "currency code",
    "bic": "BIC",
    "uscc": "unified social credit code",
    "cnaps": "CNAPS bank code",
    "bill_no": "bill package number",
    "bill_range": "sub-bill range",
    "wm_product": "wealth-management product code",
    "trust_product": "trust product code",
}


def require(kind: str, value: str, *, field: str | None = None) -> ValidationResult:
    """Validate in the production profile; raise the kind's ``ContractError`` if invalid."""
    result = validate(kind, value, production=True)
    if not result.valid:
        assert result.code is not None and result.rule is not None
        raise _invalid(kind, result.code, value, field, result.rule)
    return result


# An identifier longer than this is named by its start only: the message stays a sentence.
_SHOWN_MAX = 40
IDENTIFIER_CODES: frozenset[str] = frozenset(CODES.values())


def _invalid(kind: str, code: str, value: str, field: str | None, rule: str) -> ContractError:
    where = f" in {field}" if field else ""
    name = _KIND_NAMES[kind]
    shown = value if len(value) <= _SHOWN_MAX else value[:_SHOWN_MAX] + "..."
    return ContractError(
        code, f"{name[0].upper()}{name[1:]} {shown!r}{where} is not valid: {rule}."
    )


def require_text(kind: str, value: object, *, field: str) -> str:
    """``value`` as a valid identifier of ``kind``: whatever is wrong with it (type, length,
    characters, check digit), the kind's own code (``ISIN_INVALID`` ...), never BAD_ARGUMENT,
    so a client switches on one code per identifier."""
    if not isinstance(value, str):
        raise _invalid(kind, CODES[kind], repr(value), field, "it is not text")
    require(kind, value, field=field)
    return value
