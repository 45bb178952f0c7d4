"""Every scope the platform knows, with the plain words the consent page shows.

A client may only be registered for, and granted, scopes listed here.
"""

from __future__ import annotations

USER_SCOPES: dict[str, dict[str, str]] = {
    "openid": {"en": "Sign you in with Da Nang ID", "vi": "Đăng nhập bằng Da Nang ID"},
    "profile": {"en": "Your name, date of birth and language", "vi": "Họ tên, ngày sinh và ngôn ngữ của bạn"},
    "phone": {"en": "Your phone number", "vi": "Số điện thoại của bạn"},
    "email": {"en": "Your email address", "vi": "Địa chỉ email của bạn"},
    "address": {"en": "Your address", "vi": "Địa chỉ của bạn"},
    "offline_access": {"en": "Stay signed in", "vi": "Duy trì đăng nhập"},
    "dncity.identity": {
        "en": "Your personal ID, passport or tax code number",
        "vi": "Số định danh cá nhân, hộ chiếu hoặc mã số thuế của bạn",
    },
    "parking": {"en": "Your parking reservations", "vi": "Đặt chỗ đỗ xe của bạn"},
    "health": {"en": "Your medical appointments and records", "vi": "Lịch khám và hồ sơ sức khỏe của bạn"},
    "tuition": {"en": "Your children's school fees", "vi": "Học phí của con bạn"},
    "payments": {"en": "Your payments", "vi": "Các khoản thanh toán của bạn"},
}

AGENCY_SCOPES: dict[str, str] = {
    "health.schedules.write": "Publish a facility's directory and schedules",
    "health.records.write": "Attach visit summaries and documents",
    "tuition.students.write": "Manage a school's students and guardian links",
    "tuition.invoices.write": "Issue and adjust a school's invoices",
    "parking.lots.write": "Manage an operator's lots, spaces and rates",
    "payments.write": "Create payments and refunds",
    "identity.verify": "Verify a person's identity to assurance level 2",
    "clients.admin": "Register and manage OAuth clients",
}

ALL_SCOPES: frozenset[str] = frozenset(USER_SCOPES) | frozenset(AGENCY_SCOPES)
