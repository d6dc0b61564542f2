"""Identifier validation (docs/domain.md Part A): worked examples, real published identifiers, and
every corruption kind of A.10 (substitution, transposition, length, case, prefix, check digits,
charset and structure faults)."""

from __future__ import annotations

import itertools

import pytest

from ibledger.contracts.errors import ContractError
from ibledger.contracts.identifiers import (
    COUNTRIES,
    CURRENCY_MINOR_UNITS,
    KINDS,
    USCC_CHARSET,
    bic_canonical,
    currency_minor_unit,
    isin_check_digit,
    lei_check_digits,
    require,
    sub_range_bounds,
    uscc_check_char,
    validate,
)

VALID = [
    ("isin", "US0378331005"),  # Apple, worked example 1
    ("isin", "CNE0000018R8"),  # Kweichow Moutai, worked example 2
    ("isin", "CNE000001P37"),  # ICBC A
    ("isin", "CNE1000003G1"),  # ICBC H
    ("isin", "CND10006PJH0"),  # Treasury bond 230015
    ("isin", "AU0000XVGZA3"),
    ("lei", "5493002ERZU2K9PZDL40"),  # ICBC, worked example
    ("lei", "300300C1030935001303"),  # Industrial Bank
    ("lei", "300300C1031031001330"),  # SPDB
    ("cfi", "ESVUFR"),
    ("cfi", "DBFTFB"),
    ("cfi", "DYXXXX"),
    ("cfi", "LRXXXX"),
    ("currency", "CNY"),
    ("currency", "JPY"),
    ("currency", "BHD"),
    ("currency", "CLF"),
    ("bic", "ICBKCNBJ"),
    ("bic", "BKCHCNBJ"),
    ("bic", "PCBCCNBJ"),
    ("bic", "ABOCCNBJ"),
    ("bic", "COMMCNSH"),
    ("bic", "CMBCCNBS"),
    ("bic", "CHASUS33"),
    ("bic", "DEUTDEFF"),
    ("bic", "DEUTDEFF500"),
    ("bic", "HSBCHKHH"),
    ("bic", "ICBKCNBJXXX"),
    ("uscc", "91100000100003962T"),  # ICBC, worked example
    ("uscc", "911100001000044477"),  # CCB (consistent code)
    ("uscc", "914403001922038216"),  # Huawei
    ("cnaps", "102100099996"),
    ("cnaps", "103100000026"),
    ("cnaps", "104100000004"),
    ("cnaps", "105100000017"),
    ("cnaps", "301290000007"),
    ("cnaps", "308584000013"),
    ("bill_no", "510210009999620240301000000010"),
    ("bill_range", "0"),
    ("bill_range", "1-120000000"),
    ("bill_range", "30000001-120000000"),
    ("wm_product", "Z7001025001218"),
    ("wm_product", "Z7002623000809"),
    ("trust_product", "ZXD" + "A1" * 9),
    ("trust_product", "ZXD" + "7" * 21),
]

INVALID = [
    # (kind, value, fragment of the rule)
    ("isin", "US0373831005", "check digit"),  # Rosetta Code: transposition detected
    ("isin", "U50378331005", "letter prefix"),
    ("isin", "US037833100", "12 characters"),
    ("isin", "US03783310055", "12 characters"),
    ("isin", "us0378331005", "upper case"),
    ("isin", "US-378331005", "A-Z and 0-9"),
    ("isin", "US037833100X", "decimal check digit"),
    ("isin", "XF0000000006", "pseudo-prefix"),
    ("isin", "QS0000000001", "pseudo-prefix"),
    ("lei", "9DJT3UXIJIZJI4WCF812", "check digits are 12"),  # mislabelled sample record
    ("lei", "5493002ERZU2K9PZDL41", "check digits"),
    ("lei", "5493002ERZU2K9PZDL00", "outside 02-98"),
    ("lei", "5493002ERZU2K9PZDL01", "outside 02-98"),
    ("lei", "5493002ERZU2K9PZDL99", "outside 02-98"),
    ("lei", "5493002ERZU2K9PZDL4", "20 characters"),
    ("lei", "5493002ERZU2K9PZDL400", "20 characters"),
    ("lei", "5493002erzu2k9pzdl40", "upper case"),
    ("lei", "5493002ERZU2K9PZDLA0", "decimal check digits"),
    ("cfi", "ZZXXXX", "not a CFI category"),
    ("cfi", "EBXXXX", "not a group of CFI category E"),
    ("cfi", "esvufr", "upper-case"),
    ("cfi", "ESVUF", "6 letters"),
    ("cfi", "E1VUFR", "upper-case letters"),
    ("currency", "RMB", "not an ISO 4217 code"),
    ("currency", "CNH", "not an ISO 4217 code"),
    ("currency", "cny", "letters A-Z"),
    ("currency", "XXX", "known minor unit"),
    ("currency", "CN", "3 letters"),
    ("bic", "ICBKCNB", "8 or 11"),
    ("bic", "ICBKCNBJX", "8 or 11"),
    ("bic", "icbkcnbj", "upper case"),
    ("bic", "ICBK12BJ", "country code"),
    ("bic", "ICBKZZBJ", "ISO 3166"),
    ("bic", "ICBKCNBJXAB", "starts with X"),
    ("bic", "ICBKCNB0", "test-and-training"),
    ("uscc", "911000001000044477", "check character"),  # CCB typo in a sample list
    ("uscc", "91100000100003962", "18 characters"),
    ("uscc", "91100000100003962T0", "18 characters"),
    ("uscc", "91100000100003962t", "upper case"),
    ("uscc", "9110000010000396IT", "never used"),
    ("uscc", "91100000100003962O", "never used"),
    ("uscc", "911A0000100003962T", "positions 3-8"),
    ("uscc", "B1100000100003962T", "registration-authority"),
    ("uscc", "01100000100003962T", "registration-authority"),
    ("cnaps", "10210009999", "12 digits"),
    ("cnaps", "10210009999A", "only the digits"),
    ("bill_no", "51021000999962024030100000001", "30 digits"),
    ("bill_no", "510210009999620240231000000010", "not a calendar date"),
    ("bill_no", "310210009999620240301000000010", "kind digit"),
    ("bill_range", "0-5", "start-end"),
    ("bill_range", "5-1", "after its end"),
    ("bill_range", "01-5", "start-end"),
    ("bill_range", "1-100000000001", "10^11"),
    ("bill_range", "1 - 5", "start-end"),
    ("wm_product", "Z700102500121", "Z + 13 digits"),
    ("trust_product", "ZXD" + "A" * 19, "18 or 21"),
]


@pytest.mark.parametrize(("kind", "value"), VALID)
def test_valid_identifiers(kind: str, value: str) -> None:
    result = validate(kind, value, production=True)
    assert result.valid, result.rule
    assert result.code is None and result.rule is None


@pytest.mark.parametrize(("kind", "value", "fragment"), INVALID)
def test_invalid_identifiers_name_the_rule(kind: str, value: str, fragment: str) -> None:
    result = validate(kind, value, production=True)
    assert not result.valid
    assert result.rule is not None and fragment in result.rule, result.rule
    assert (
        result.code
        == {
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
        }[kind]
    )
    with pytest.raises(ContractError) as raised:
        require(kind, value)
    assert raised.value.code == result.code


def test_worked_examples_compute_the_published_check_digits() -> None:
    assert isin_check_digit("US037833100") == 5
    assert isin_check_digit("CNE0000018R") == 8
    assert lei_check_digits("5493002ERZU2K9PZDL") == "40"
    assert uscc_check_char("91100000100003962") == "T"


def test_luhn_transposition_limitation_is_known() -> None:
    # Both are checksum-valid: Luhn after letter expansion misses this transposition (A.1).
    assert validate("isin", "AU0000XVGZA3").valid
    assert validate("isin", "AU0000VXGZA3").valid


def test_spdb_uscc_passes_with_an_advisory_warning_only() -> None:
    result = validate("uscc", "91310000631295002H")
    assert result.valid
    assert len(result.warnings) == 1 and "advisory" in result.warnings[0]


def test_bic_test_code_is_a_warning_outside_production() -> None:
    result = validate("bic", "ICBKCNB0")
    assert result.valid and result.warnings
    assert bic_canonical("DEUTDEFF") == bic_canonical("DEUTDEFFXXX") == "DEUTDEFFXXX"


def test_cnaps_unknown_bank_category_only_warns() -> None:
    result = validate("cnaps", "999100000001")
    assert result.valid and result.warnings


VALID_ISINS = [v for k, v in VALID if k == "isin"]
VALID_LEIS = [v for k, v in VALID if k == "lei"]
VALID_USCCS = [v for k, v in VALID if k == "uscc"] + ["91310000631295002H"]


@pytest.mark.parametrize("isin", VALID_ISINS)
def test_isin_every_single_digit_substitution_is_rejected(isin: str) -> None:
    for position, char in enumerate(isin):
        if not char.isdigit():
            continue
        for other in "0123456789":
            if other != char:
                corrupted = isin[:position] + other + isin[position + 1 :]
                assert not validate("isin", corrupted).valid, corrupted


@pytest.mark.parametrize("isin", VALID_ISINS)
def test_isin_adjacent_digit_transpositions_detected_by_luhn(isin: str) -> None:
    for position in range(len(isin) - 1):
        a, b = isin[position], isin[position + 1]
        if a == b or not (a.isdigit() and b.isdigit()) or {a, b} == {"0", "9"}:
            continue  # Luhn's blind spot is 09 <-> 90
        corrupted = isin[:position] + b + a + isin[position + 2 :]
        assert not validate("isin", corrupted).valid, corrupted


def test_isin_unassigned_prefix_with_recomputed_check_digit() -> None:
    for prefix in ("ZZ", "AA", "XF", "QT", "QW"):
        assert prefix not in COUNTRIES
        body = prefix + "037833100"
        candidate = body + str(isin_check_digit(body))
        result = validate("isin", candidate)
        assert not result.valid and "prefix" in (result.rule or "")
    for prefix in ("XS", "EU", "EZ"):
        body = prefix + "000A1G0AJ"
        assert validate("isin", body + str(isin_check_digit(body))).valid


@pytest.mark.parametrize("lei", VALID_LEIS)
def test_lei_every_same_class_substitution_and_transposition_is_rejected(lei: str) -> None:
    digits, letters = "0123456789", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for position, char in enumerate(lei):
        pool = digits if char.isdigit() else letters
        for other in pool:
            if other != char:
                corrupted = lei[:position] + other + lei[position + 1 :]
                assert not validate("lei", corrupted).valid, corrupted
    for position in range(len(lei) - 1):
        a, b = lei[position], lei[position + 1]
        if a != b and a.isdigit() and b.isdigit():
            corrupted = lei[:position] + b + a + lei[position + 2 :]
            assert not validate("lei", corrupted).valid, corrupted


@pytest.mark.parametrize("uscc", VALID_USCCS)
def test_uscc_every_substitution_and_transposition_is_rejected(uscc: str) -> None:
    for position, char in enumerate(uscc):
        for other in USCC_CHARSET:
            if other != char:
                corrupted = uscc[:position] + other + uscc[position + 1 :]
                assert not validate("uscc", corrupted).valid, corrupted
    for position in range(len(uscc) - 1):
        a, b = uscc[position], uscc[position + 1]
        if a != b:
            corrupted = uscc[:position] + b + a + uscc[position + 2 :]
            assert not validate("uscc", corrupted).valid, corrupted


def test_uscc_forbidden_letters_rejected_everywhere() -> None:
    base = "91100000100003962T"
    for letter, position in itertools.product("IOSVZ", (1, 8, 12, 17)):
        corrupted = base[:position] + letter + base[position + 1 :]
        assert not validate("uscc", corrupted).valid


def test_currency_minor_units() -> None:
    assert currency_minor_unit("CNY") == 2
    assert currency_minor_unit("JPY") == 0
    assert currency_minor_unit("KWD") == 3
    assert currency_minor_unit("UYW") == 4
    assert "RMB" not in CURRENCY_MINOR_UNITS and "CNH" not in CURRENCY_MINOR_UNITS
    with pytest.raises(ContractError) as raised:
        currency_minor_unit("ABC")
    assert raised.value.code == "CURRENCY_INVALID"


def test_tables_have_the_expected_sizes() -> None:
    assert len(COUNTRIES) == 249
    assert "CN" in COUNTRIES and "HK" in COUNTRIES and "XK" not in COUNTRIES


def test_sub_range_bounds() -> None:
    assert sub_range_bounds("0") == (0, 0)
    assert sub_range_bounds("1-120000000") == (1, 120000000)
    with pytest.raises(ContractError):
        sub_range_bounds("3-2")


def test_validate_refuses_unknown_kind() -> None:
    assert set(KINDS) >= {"isin", "lei", "cfi", "currency", "bic", "uscc", "cnaps"}
    with pytest.raises(ValueError):
        validate("iban", "DE89370400440532013000")
