"""One-time SMS codes: expiry, attempt limits, resend limits."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI

from services.identity.accounts.models import PhoneCode
from services.identity.app import create_app
from services.identity.settings import IdentitySettings
from shared.settings import PlatformSettings
from tests.helpers.asgi import running
from tests.identity.helpers import citizen_body, last_code, register, sms_messages, wrong_code


async def verify(client: httpx.AsyncClient, registration_id: str, code: str) -> httpx.Response:
    return await client.post(f"/v1/identity/registrations/{registration_id}/verify", json={"code": code})


async def test_expired_code_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    created = await register(client, citizen_body())
    code = await last_code(client, created["phone"])
    async with app.state.db.sessionmaker() as session, session.begin():
        row = await session.get(PhoneCode, created["id"])
        assert row is not None
        # Five minutes and a second later.
        row.expires_at = row.expires_at - timedelta(minutes=5, seconds=1)
    response = await verify(client, created["id"], code)
    assert response.status_code == 400 and response.json()["code"] == "code_expired"


async def test_code_lifetime_is_five_minutes(client: httpx.AsyncClient) -> None:
    created = await register(client, citizen_body())
    sms = await sms_messages(client, created["phone"])
    from datetime import datetime

    sent = datetime.fromisoformat(sms[0]["created_at"])
    expires = datetime.fromisoformat(created["code_expires_at"])
    assert timedelta(minutes=4, seconds=59) <= expires - sent <= timedelta(minutes=5, seconds=1)


async def test_five_wrong_attempts_invalidate_the_code(client: httpx.AsyncClient) -> None:
    created = await register(client, citizen_body())
    code = await last_code(client, created["phone"])
    for remaining in (4, 3, 2, 1):
        response = await verify(client, created["id"], wrong_code(code))
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_code"
        assert response.json()["attempts_remaining"] == remaining
    fifth = await verify(client, created["id"], wrong_code(code))
    assert fifth.status_code == 400 and fifth.json()["code"] == "code_invalidated"
    # The right code no longer works either.
    response = await verify(client, created["id"], code)
    assert response.status_code == 400 and response.json()["code"] == "code_invalidated"


async def test_resend_gives_a_new_code_and_the_old_one_stops_working() -> None:
    app = create_app(IdentitySettings(code_resend_cooldown_s=0), PlatformSettings())
    async with running(app) as client:
        created = await register(client, citizen_body())
        old = await last_code(client, created["phone"])
        resent = await client.post(f"/v1/identity/registrations/{created['id']}/resend")
        assert resent.status_code == 200, resent.text
        assert resent.json()["id"] == created["id"]
        new = await last_code(client, created["phone"])
        assert len(await sms_messages(client, created["phone"])) == 2
        if new != old:
            assert (await verify(client, created["id"], old)).json()["code"] == "invalid_code"
        response = await verify(client, created["id"], new)
        assert response.status_code == 200
        # Nothing to resend once verified.
        again = await client.post(f"/v1/identity/registrations/{created['id']}/resend")
        assert again.status_code == 409 and again.json()["code"] == "already_verified"


async def test_resend_cooldown(client: httpx.AsyncClient) -> None:
    created = await register(client, citizen_body())
    response = await client.post(f"/v1/identity/registrations/{created['id']}/resend")
    assert response.status_code == 429
    assert response.json()["code"] == "resend_too_soon"
    assert 55 <= int(response.headers["Retry-After"]) <= 60
    assert len(await sms_messages(client, created["phone"])) == 1


async def test_at_most_five_codes_per_hour() -> None:
    app = create_app(IdentitySettings(code_resend_cooldown_s=0), PlatformSettings())
    async with running(app) as client:
        created = await register(client, citizen_body())
        for _ in range(4):
            assert (await client.post(f"/v1/identity/registrations/{created['id']}/resend")).status_code == 200
        response = await client.post(f"/v1/identity/registrations/{created['id']}/resend")
        assert response.status_code == 429 and response.json()["code"] == "too_many_codes"
        assert 3500 <= int(response.headers["Retry-After"]) <= 3600
        assert len(await sms_messages(client, created["phone"])) == 5


async def test_unknown_registration(client: httpx.AsyncClient) -> None:
    response = await verify(client, "0" * 32, "123456")
    assert response.status_code == 404 and response.json()["code"] == "registration_not_found"


async def test_code_is_six_digits_and_never_reused_after_success(client: httpx.AsyncClient) -> None:
    created = await register(client, citizen_body())
    code = await last_code(client, created["phone"])
    assert len(code) == 6 and code.isdigit()
    assert (await verify(client, created["id"], code)).status_code == 200
    second = await verify(client, created["id"], code)
    assert second.status_code == 409 and second.json()["code"] == "already_verified"
