"""Every identifier rule, with real-shaped valid and invalid examples (pure functions)."""

from __future__ import annotations

from datetime import date

import pytest

from services.identity.accounts import validators as v
from tests.identity.helpers import citizen_id, tax_check


@pytest.mark.parametrize(
    ("number", "born"),
    [
        ("048095001234", date(1995, 3, 4)),  # Đà Nẵng, male, 1995
        ("048195001234", date(1995, 3, 4)),  # Đà Nẵng, female, 1995
        ("049088000017", date(1988, 1, 1)),  # Quảng Nam (legacy code, merged into Đà Nẵng in 2025)
        ("001203000123", date(2003, 12, 31)),  # Hà Nội, female, 2003
        ("079212345678", date(2012, 6, 1)),  # TP Hồ Chí Minh, male, 2012
        ("096300999999", date(2000, 2, 29)),  # Cà Mau, female, 2000
        ("046099000001", date(1999, 9, 9)),  # Thừa Thiên Huế
    ],
)
def test_valid_citizen_ids(number: str, born: date) -> None:
    assert v.validate_citizen_id(number, born) == number


@pytest.mark.parametrize(
    ("number", "born", "why"),
    [
        ("003095001234", date(1995, 3, 4), "province"),  # 003 is not a province code
        ("050095001234", date(1995, 3, 4), "province"),  # 050 is unused
        ("097095001234", date(1995, 3, 4), "province"),  # beyond Cà Mau (096)
        ("048295001234", date(1995, 3, 4), "century"),  # 2 means 2000-2099
        ("048095001234", date(2095, 3, 4), "century"),  # 0 means 1900-1999 (and 2095 is the future anyway)
        ("048096001234", date(1995, 3, 4), "birth-year"),  # year digits 96 vs 1995
        ("048203001234", date(2004, 1, 1), "birth-year"),
        ("04809500123", date(1995, 3, 4), "12 digits"),  # 11 digits
        ("0480950012345", date(1995, 3, 4), "12 digits"),  # 13 digits
        ("04809500123A", date(1995, 3, 4), "12 digits"),
        ("", date(1995, 3, 4), "12 digits"),
    ],
)
def test_invalid_citizen_ids(number: str, born: date, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        v.validate_citizen_id(number, born)


def test_every_century_digit() -> None:
    assert [v.citizen_id_century(d) for d in range(10)] == [1900, 1900, 2000, 2000, 2100, 2100, 2200, 2200, 2300, 2300]


def test_helper_generates_valid_ids() -> None:
    for province in ("001", "048", "049", "079"):
        for born in (date(1960, 5, 5), date(2011, 11, 11)):
            for female in (False, True):
                assert v.validate_citizen_id(citizen_id(born, province=province, female=female), born)


def _valid_tax(first_nine: str) -> str:
    check = tax_check(first_nine)
    assert check is not None
    return first_nine + str(check)


def test_tax_check_digit_by_the_documented_weights() -> None:
    # 0100109106 (a long-registered Hà Nội enterprise code): 0*31+1*29+0+0+1*17+0+9*7+1*5+0*3 = 114;
    # 114 mod 11 = 4; 10 - 4 = 6.
    assert tax_check("010010910") == 6
    assert v.validate_tax_code("0100109106") == "0100109106"
    for first in ("040123456", "030765432", "010234567", "430012345"):
        if tax_check(first) is not None:
            assert v.validate_tax_code(_valid_tax(first)) == _valid_tax(first)


def test_tax_code_wrong_check_digit_and_shapes() -> None:
    good = _valid_tax("040123456") if tax_check("040123456") is not None else _valid_tax("040123457")
    bad = good[:9] + str((int(good[9]) + 1) % 10)
    for value in (bad, good[:9], good + "1", "04012345A7", "", "0401-234568"):
        with pytest.raises(ValueError):
            v.validate_tax_code(value)


def test_tax_code_where_the_check_would_be_ten_is_invalid() -> None:
    # Find nine digits whose weighted sum is divisible by 11: no check digit exists.
    first = next(f"{n:09d}" for n in range(10**8, 10**9) if tax_check(f"{n:09d}") is None)
    for last in "0123456789":
        with pytest.raises(ValueError, match="check digit"):
            v.validate_tax_code(first + last)


def test_thirteen_digit_dependent_unit() -> None:
    main = _valid_tax("010010910")
    assert v.validate_tax_code(f"{main}-001") == f"{main}-001"
    assert v.validate_tax_code(f"{main}001") == f"{main}-001"  # canonical form has the hyphen
    for value in (f"{main}-000", f"{main}-01", f"{main}-0001", f"{main[:9]}7-001", f"{main}_001"):
        with pytest.raises(ValueError):
            v.validate_tax_code(value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0905123456", "+84905123456"),  # 09x Mobifone (Đà Nẵng)
        ("0912345678", "+84912345678"),  # 09x Vinaphone
        ("0387654321", "+84387654321"),  # 03x Viettel
        ("0856123456", "+84856123456"),  # 08x
        ("0776123456", "+84776123456"),  # 07x
        ("0583123456", "+84583123456"),  # 05x
        ("+84905123456", "+84905123456"),
        ("+84 905 123 456", "+84905123456"),
        ("84905123456", "+84905123456"),
        ("090-512-3456", "+84905123456"),
    ],
)
def test_vietnamese_mobile_numbers(raw: str, expected: str) -> None:
    assert v.normalise_phone(raw, vietnamese_only=True) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "02363123456",  # Đà Nẵng landline, not a mobile
        "0123456789",  # retired 11-digit-era prefix, now invalid
        "0605123456",  # 06x is not a mobile range
        "090512345",  # too short
        "09051234567",  # too long
        "+14155552671",  # not Vietnamese
        "hello",
        "",
    ],
)
def test_invalid_for_citizens_and_businesses(raw: str) -> None:
    with pytest.raises(ValueError):
        v.normalise_phone(raw, vietnamese_only=True)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+821012345678", "+821012345678"),  # Korea
        ("+14155552671", "+14155552671"),  # USA (mobile or fixed, indistinguishable)
        ("+447911123456", "+447911123456"),  # UK mobile
        ("0905123456", "+84905123456"),  # a tourist's local SIM
    ],
)
def test_foreigners_use_any_mobile(raw: str, expected: str) -> None:
    assert v.normalise_phone(raw, vietnamese_only=False) == expected


def test_foreigner_landline_is_refused() -> None:
    with pytest.raises(ValueError):
        v.normalise_phone("+442079460000", vietnamese_only=False)  # London landline


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("M12345678", "M12345678"), ("c01x00t47", "C01X00T47"), ("123456", "123456"), ("AB 123 456", "AB123456")],
)
def test_valid_passports(raw: str, expected: str) -> None:
    assert v.validate_passport_number(raw) == expected


@pytest.mark.parametrize("raw", ["12345", "ABCDEFGHIJ", "ABCDEFG", "M1234567!", "1234567890"])
def test_invalid_passports(raw: str) -> None:
    with pytest.raises(ValueError):
        v.validate_passport_number(raw)


def test_nationality_is_iso_alpha_3() -> None:
    assert v.validate_nationality("kor") == "KOR"
    assert v.validate_nationality("USA") == "USA"
    for bad in ("KR", "XYZ", "Korea", "K0R"):
        with pytest.raises(ValueError):
            v.validate_nationality(bad)


def test_masks() -> None:
    assert v.mask_citizen_id("048095001212") == "048*******12"
    assert v.mask_passport("M12345678") == "M******78"
    assert v.mask_phone("+84905123456") == "+849*****456"
