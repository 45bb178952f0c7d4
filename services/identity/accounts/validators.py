"""Validation of Vietnamese identifiers, passports, nationalities and phone numbers.

Each function returns the normalised value or raises ``ValueError`` with a message for the person;
the schemas turn that into a 422 naming the field.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import phonenumbers
import pycountry

# Province / centrally-run city codes of the 12-digit personal identification number (Circular
# 07/2016/TT-BCA, appendix). Every legacy code stays valid: numbers already issued keep them after the
# 2025 merger of provinces, and the merged provinces use codes from this same list.
PROVINCE_CODES: dict[str, str] = {
    "001": "Hà Nội",
    "002": "Hà Giang",
    "004": "Cao Bằng",
    "006": "Bắc Kạn",
    "008": "Tuyên Quang",
    "010": "Lào Cai",
    "011": "Điện Biên",
    "012": "Lai Châu",
    "014": "Sơn La",
    "015": "Yên Bái",
    "017": "Hòa Bình",
    "019": "Thái Nguyên",
    "020": "Lạng Sơn",
    "022": "Quảng Ninh",
    "024": "Bắc Giang",
    "025": "Phú Thọ",
    "026": "Vĩnh Phúc",
    "027": "Bắc Ninh",
    "030": "Hải Dương",
    "031": "Hải Phòng",
    "033": "Hưng Yên",
    "034": "Thái Bình",
    "035": "Hà Nam",
    "036": "Nam Định",
    "037": "Ninh Bình",
    "038": "Thanh Hóa",
    "040": "Nghệ An",
    "042": "Hà Tĩnh",
    "044": "Quảng Bình",
    "045": "Quảng Trị",
    "046": "Thừa Thiên Huế",
    "048": "Đà Nẵng",
    "049": "Quảng Nam",
    "051": "Quảng Ngãi",
    "052": "Bình Định",
    "054": "Phú Yên",
    "056": "Khánh Hòa",
    "058": "Ninh Thuận",
    "060": "Bình Thuận",
    "062": "Kon Tum",
    "064": "Gia Lai",
    "066": "Đắk Lắk",
    "067": "Đắk Nông",
    "068": "Lâm Đồng",
    "070": "Bình Phước",
    "072": "Tây Ninh",
    "074": "Bình Dương",
    "075": "Đồng Nai",
    "077": "Bà Rịa - Vũng Tàu",
    "079": "Hồ Chí Minh",
    "080": "Long An",
    "082": "Tiền Giang",
    "083": "Bến Tre",
    "084": "Trà Vinh",
    "086": "Vĩnh Long",
    "087": "Đồng Tháp",
    "089": "An Giang",
    "091": "Kiên Giang",
    "092": "Cần Thơ",
    "093": "Hậu Giang",
    "094": "Sóc Trăng",
    "095": "Bạc Liêu",
    "096": "Cà Mau",
}

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
# Decree 59/2022/NĐ-CP: people from 14 hold their own account; younger children are their guardians'
# dependents.
MIN_ACCOUNT_AGE = 14
TAX_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)
_CITIZEN_ID_RE = re.compile(r"^\d{12}$")
_TAX_10_RE = re.compile(r"^\d{10}$")
_TAX_13_RE = re.compile(r"^(\d{10})-?(\d{3})$")
_PASSPORT_RE = re.compile(r"^[A-Z0-9]{6,9}$")


def today_vn() -> date:
    return datetime.now(VN_TZ).date()


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def validate_account_holder_birth_date(born: date) -> date:
    today = today_vn()
    if born > today:
        raise ValueError("the date of birth is in the future")
    if born.year < 1900:
        raise ValueError("the date of birth is before 1900")
    if age_on(born, today) < MIN_ACCOUNT_AGE:
        raise ValueError(
            f"account holders are {MIN_ACCOUNT_AGE} or older; a parent registers a younger child as a dependent"
        )
    return born


def citizen_id_century(digit: int) -> int:
    """First year of the century a century/sex digit stands for: 0/1 → 1900, 2/3 → 2000, … 8/9 → 2200."""
    return 1900 + (digit // 2) * 100


def validate_citizen_id(value: str, date_of_birth: date | None = None) -> str:
    """The 12-digit personal ID: province code, century/sex digit and birth year agree with the birth date."""
    number = value.strip().replace(" ", "")
    if not _CITIZEN_ID_RE.match(number):
        raise ValueError("a personal identification number has exactly 12 digits")
    if number[:3] not in PROVINCE_CODES:
        raise ValueError("the first three digits are not a province code")
    century = citizen_id_century(int(number[3]))
    if date_of_birth is not None:
        if not century <= date_of_birth.year < century + 100:
            raise ValueError("the century digit does not agree with the date of birth")
        if number[4:6] != f"{date_of_birth.year % 100:02d}":
            raise ValueError("the birth-year digits do not agree with the date of birth")
    return number


def tax_check_digit(first_nine: str) -> int | None:
    """The check digit of a 10-digit tax code, or None when the nine digits cannot have one."""
    total = sum(int(d) * w for d, w in zip(first_nine, TAX_WEIGHTS, strict=True))
    check = 10 - total % 11
    return None if check == 10 else check


def validate_tax_code(value: str) -> str:
    """10 digits with a check digit, or NNNNNNNNNN-NNN (a dependent unit); returns the canonical form."""
    code = value.strip().replace(" ", "")
    branch = None
    if _TAX_10_RE.match(code):
        main = code
    elif match := _TAX_13_RE.match(code):
        main, branch = match.group(1), match.group(2)
        if branch == "000":
            raise ValueError("a dependent unit number runs from 001 to 999")
    else:
        raise ValueError("a tax code has 10 digits, or 13 as NNNNNNNNNN-NNN")
    check = tax_check_digit(main[:9])
    if check is None or check != int(main[9]):
        raise ValueError("the tax code's check digit is wrong")
    return f"{main}-{branch}" if branch else main


def validate_passport_number(value: str) -> str:
    """An ICAO 9303 document number: 6 to 9 letters and digits, with at least one digit."""
    number = value.strip().replace(" ", "").upper()
    if not _PASSPORT_RE.match(number) or not any(c.isdigit() for c in number):
        raise ValueError("a passport number has 6 to 9 letters and digits")
    return number


def validate_nationality(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 3 or pycountry.countries.get(alpha_3=code) is None:
        raise ValueError("nationality is an ISO 3166-1 alpha-3 country code, e.g. KOR, USA, FRA")
    return code


def normalise_phone(value: str, *, vietnamese_only: bool) -> str:
    """E.164 form of a mobile number; a national number (0…) is read as Vietnamese."""
    try:
        number = phonenumbers.parse(value.strip(), "VN")
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    kind = phonenumbers.number_type(number)
    region = phonenumbers.region_code_for_number(number)
    if vietnamese_only:
        if region != "VN" or kind != phonenumbers.PhoneNumberType.MOBILE:
            raise ValueError("a Vietnamese mobile number is required (09x, 03x, 08x, 07x, 05x)")
    elif kind not in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise ValueError("a mobile number is required")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def try_phone(value: str) -> str | None:
    """A login typed as a phone number, in E.164, or None."""
    try:
        return normalise_phone(value, vietnamese_only=False)
    except ValueError:
        return None


def mask_citizen_id(number: str | None) -> str | None:
    """048*******12: the province code and the last two digits only."""
    if not number:
        return None
    return number[:3] + "*" * (len(number) - 5) + number[-2:]


def mask_passport(number: str | None) -> str | None:
    if not number:
        return None
    return number[:1] + "*" * (len(number) - 3) + number[-2:]


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    return phone[:4] + "*" * (len(phone) - 7) + phone[-3:]
