"""Registering citizens, foreigners and businesses; validation and uniqueness through the API."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.identity.accounts.models import Account, PhoneCode
from tests.identity.conftest import problem_fields
from tests.identity.helpers import (
    PASSWORD,
    business_body,
    citizen_body,
    citizen_id,
    e164,
    foreigner_body,
    last_code,
    register,
    register_and_verify,
    sms_messages,
    tax_check,
)


async def count_accounts(app: FastAPI) -> int:
    async with app.state.db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Account)) or 0)


async def test_citizen_registers_and_verifies_the_phone(client: httpx.AsyncClient) -> None:
    body = citizen_body(phone="0905 123 456")
    response = await client.post("/v1/identity/registrations", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "pending_verification"
    assert created["phone"] == "+84905123456"
    sms = await sms_messages(client, "0905123456")
    assert len(sms) == 1 and sms[0]["to"] == "+84905123456"
    assert set(sms[0]) == {"to", "body", "created_at"}
    code = await last_code(client, "+84905123456")
    verified = await client.post(f"/v1/identity/registrations/{created['id']}/verify", json={"code": code})
    assert verified.status_code == 200, verified.text
    assert verified.json() == {"sub": verified.json()["sub"], "status": "active", "level": 1, "acr": "urn:dncity:loa:1"}


async def test_foreigner_and_business_register(client: httpx.AsyncClient, app: FastAPI) -> None:
    tourist = await register_and_verify(client, foreigner_body())
    owner_id = citizen_id(date(1980, 2, 2), province="001")
    owner = await register_and_verify(client, citizen_body(citizen_id=owner_id, date_of_birth="1980-02-02"))
    business = await register_and_verify(client, business_body(owner_id))
    async with app.state.db.sessionmaker() as session:
        accounts = {a.id: a for a in await session.scalars(select(Account))}
    assert accounts[tourist].kind == "foreigner" and accounts[tourist].nationality == "KOR"
    assert accounts[business].kind == "business" and accounts[business].representative_sub == owner
    assert all(a.level == 1 and a.status == "active" for a in accounts.values())


async def test_business_dependent_unit_tax_code(client: httpx.AsyncClient) -> None:
    owner_id = citizen_id(date(1975, 8, 8), province="079")
    await register_and_verify(client, citizen_body(citizen_id=owner_id, date_of_birth="1975-08-08"))
    first = next(f"0401{n:05d}" for n in range(10, 99999) if tax_check(f"0401{n:05d}") is not None)
    main = first + str(tax_check(first))
    response = await client.post("/v1/identity/registrations", json=business_body(owner_id, tax_code=f"{main}-002"))
    assert response.status_code == 201, response.text


async def test_business_needs_an_existing_citizen_representative(client: httpx.AsyncClient, app: FastAPI) -> None:
    unknown = citizen_id(date(1970, 1, 1))
    response = await client.post("/v1/identity/registrations", json=business_body(unknown))
    assert response.status_code == 422
    assert problem_fields(response) == ["body.representative_citizen_id"]
    assert await count_accounts(app) == 0


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("bad province", citizen_body(citizen_id="003095001234"), "citizen_id"),
    ("century digit disagrees", citizen_body(citizen_id="048295001234"), "citizen_id"),
    ("birth year disagrees", citizen_body(citizen_id="048096001234"), "citizen_id"),
    ("11-digit ID", citizen_body(citizen_id="04809500123"), "citizen_id"),
    ("landline", citizen_body(phone="02363123456"), "phone"),
    ("foreign phone for a citizen", citizen_body(phone="+14155552671"), "phone"),
    ("06x prefix", citizen_body(phone="0605123456"), "phone"),
    ("future birth date", citizen_body(date_of_birth="2999-01-01", citizen_id="048999001234"), "date_of_birth"),
    ("under 14", citizen_body(born=date(date.today().year - 10, 1, 15)), "date_of_birth"),
    ("foreigner under 14", foreigner_body(date_of_birth=f"{date.today().year - 13}-01-01"), "date_of_birth"),
    ("bad passport", foreigner_body(passport_number="12-34"), "passport_number"),
    ("alpha-2 nationality", foreigner_body(nationality="KR"), "nationality"),
    ("unknown nationality", foreigner_body(nationality="XXX"), "nationality"),
    ("Vietnamese as foreigner", foreigner_body(nationality="VNM"), "nationality"),
    ("foreign landline", foreigner_body(phone="+442079460000"), "phone"),
    ("tax check digit", business_body("048095001234", tax_code="0100109107"), "tax_code"),
    ("tax 13 digits wrong unit", business_body("048095001234", tax_code="0100109106-000"), "tax_code"),
    ("tax 11 digits", business_body("048095001234", tax_code="01001091061"), "tax_code"),
    ("representative not an ID", business_body("12345"), "representative_citizen_id"),
    ("missing name", {k: v for k, v in citizen_body().items() if k != "full_name"}, "full_name"),
    ("unknown field", citizen_body(level=2), "level"),
]


@pytest.mark.parametrize(("case", "body", "field"), INVALID, ids=[c[0] for c in INVALID])
async def test_bad_field_is_named_and_nothing_is_stored(
    client: httpx.AsyncClient, app: FastAPI, case: str, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/identity/registrations", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    fields = problem_fields(response)
    assert fields and all(f.split(".")[-1] == field for f in fields), fields
    assert await count_accounts(app) == 0
    assert await sms_messages(client, body["phone"]) == [] if "phone" in body and field != "phone" else True


@pytest.mark.parametrize("password", ["short1!", "password123", "qwertyuiop", "1234567890", "iloveyou12"])
async def test_weak_or_common_passwords_are_refused(client: httpx.AsyncClient, app: FastAPI, password: str) -> None:
    response = await client.post("/v1/identity/registrations", json=citizen_body(password=password))
    assert response.status_code == 422
    assert problem_fields(response) == ["body.password"]
    assert await count_accounts(app) == 0


async def test_password_containing_the_phone_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/identity/registrations", json=citizen_body(phone="0905777888", password="my number 0905777888")
    )
    assert response.status_code == 422 and problem_fields(response) == ["body.password"]


async def test_duplicates_conflict(client: httpx.AsyncClient, app: FastAPI) -> None:
    first = citizen_body()
    await register(client, first)
    # Same phone in another form, same personal ID, same passport + nationality, same tax code.
    same_phone = citizen_body(phone=e164(first["phone"]))
    response = await client.post("/v1/identity/registrations", json=same_phone)
    assert response.status_code == 409 and response.json()["code"] == "phone_taken"
    assert problem_fields(response) == ["body.phone"]
    same_id = citizen_body(citizen_id=first["citizen_id"])
    response = await client.post("/v1/identity/registrations", json=same_id)
    assert response.status_code == 409 and response.json()["code"] == "citizen_id_taken"

    tourist = foreigner_body()
    await register(client, tourist)
    response = await client.post(
        "/v1/identity/registrations", json=foreigner_body(passport_number=tourist["passport_number"].lower())
    )
    assert response.status_code == 409 and response.json()["code"] == "passport_taken"
    # The same number issued by another country is another passport.
    other_country = foreigner_body(passport_number=tourist["passport_number"], nationality="JPN")
    assert (await client.post("/v1/identity/registrations", json=other_country)).status_code == 201

    owner = citizen_id(date(1970, 3, 3))
    await register_and_verify(client, citizen_body(citizen_id=owner, date_of_birth="1970-03-03"))
    company = business_body(owner)
    await register(client, company)
    response = await client.post("/v1/identity/registrations", json=business_body(owner, tax_code=company["tax_code"]))
    assert response.status_code == 409 and response.json()["code"] == "tax_code_taken"
    assert await count_accounts(app) == 5


async def test_stale_unverified_registration_stops_blocking(client: httpx.AsyncClient, app: FastAPI) -> None:
    body = citizen_body()
    await register(client, body)
    async with app.state.db.sessionmaker() as session, session.begin():
        account = await session.scalar(select(Account))
        assert account is not None
        account.created_at = account.created_at.replace(year=account.created_at.year - 1)
    # A year has passed for the SMS throttle too.
    for key in await app.state.redis.keys("dncity:identity:sms:*"):
        await app.state.redis.delete(key)
    again = await client.post("/v1/identity/registrations", json={**body, "full_name": "Trần Thị Bình"})
    assert again.status_code == 201, again.text
    assert await count_accounts(app) == 1


async def test_codes_are_stored_hashed(client: httpx.AsyncClient, app: FastAPI) -> None:
    created = await register(client, citizen_body())
    code = await last_code(client, created["phone"])
    async with app.state.db.sessionmaker() as session:
        row = await session.get(PhoneCode, created["id"])
        account = await session.scalar(select(Account))
    assert row is not None and account is not None
    assert code not in row.code_hmac and len(row.code_hmac) == 64
    assert account.password_hash and account.password_hash.startswith("$argon2id$")
    assert PASSWORD not in account.password_hash
