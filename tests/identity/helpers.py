"""Real-shaped Vietnamese identifiers and registration flows for identity tests."""

from __future__ import annotations

import itertools
import re
from datetime import date
from typing import Any

import httpx

TAX_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)
PASSWORD = "Song Han bridge 1997!"
_serial = itertools.count(1)
_phone_serial = itertools.count(1)


def citizen_id(born: date, *, province: str = "048", female: bool = False, serial: int | None = None) -> str:
    """A well-formed 12-digit personal ID: province, century/sex digit, birth year, 6-digit serial."""
    century_digit = (born.year - 1900) // 100 * 2 + (1 if female else 0)
    serial = next(_serial) if serial is None else serial
    return f"{province}{century_digit}{born.year % 100:02d}{serial:06d}"


def tax_check(first_nine: str) -> int | None:
    """Check digit with the documented weights: 10 - (sum mod 11); 10 means no valid code."""
    check = 10 - sum(int(d) * w for d, w in zip(first_nine, TAX_WEIGHTS, strict=True)) % 11
    return None if check == 10 else check


def tax_code(prefix: str = "0401") -> str:
    """A valid 10-digit tax code starting with ``prefix`` (0401… is Đà Nẵng's range)."""
    for n in range(next(_serial) * 7, 10**6):
        first = f"{prefix}{n:05d}"[:9]
        check = tax_check(first)
        if check is not None:
            return first + str(check)
    raise AssertionError("no tax code")


def phone(prefix: str = "0905") -> str:
    """A distinct Vietnamese mobile number in national form (0…)."""
    return f"{prefix}{next(_phone_serial) % 10**6:06d}"


def e164(national: str) -> str:
    return "+84" + national[1:]


def citizen_body(**overrides: Any) -> dict[str, Any]:
    born = overrides.pop("born", date(1995, 3, 4))
    body = {
        "kind": "citizen",
        "full_name": "Nguyễn Văn An",
        "phone": phone(),
        "password": PASSWORD,
        "date_of_birth": born.isoformat(),
        "citizen_id": citizen_id(born),
    }
    body.update(overrides)
    return body


def foreigner_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "kind": "foreigner",
        "full_name": "Kim Min-jun",
        "phone": "+8210" + f"{next(_phone_serial) % 10**8:08d}",
        "password": PASSWORD,
        "date_of_birth": "1990-07-21",
        "passport_number": f"M{next(_serial) % 10**8:08d}",
        "nationality": "KOR",
        "preferred_language": "en",
    }
    body.update(overrides)
    return body


def business_body(representative_citizen_id: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "kind": "business",
        "business_name": "Công ty TNHH Cầu Rồng",
        "phone": phone("0935"),
        "password": PASSWORD,
        "tax_code": tax_code(),
        "representative_citizen_id": representative_citizen_id,
    }
    body.update(overrides)
    return body


async def sms_messages(client: httpx.AsyncClient, to: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/dev/outbox", params={"to": to})
    assert response.status_code == 200, response.text
    return list(response.json())


async def last_code(client: httpx.AsyncClient, to: str) -> str:
    messages = await sms_messages(client, to)
    assert messages, f"no SMS to {to}"
    match = re.search(r"\b(\d{6})\b", messages[0]["body"])
    assert match, messages[0]["body"]
    return match.group(1)


async def register(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/identity/registrations", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def register_and_verify(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    """Register, read the SMS code from the dev outbox, verify; returns the sub."""
    created = await register(client, body)
    code = await last_code(client, created["phone"])
    response = await client.post(f"/v1/identity/registrations/{created['id']}/verify", json={"code": code})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "active"
    return str(response.json()["sub"])


def wrong_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"
