"""Password reset by SMS code and change of password."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.identity.accounts import service
from shared.errors import ProblemError
from tests.helpers.tokens import TokenFactory
from tests.identity.helpers import PASSWORD, citizen_body, last_code, register_and_verify, sms_messages, wrong_code

NEW_PASSWORD = "Marble Mountains at dawn 7"


async def can_sign_in(app: FastAPI, login: str, password: str) -> bool:
    async with app.state.db.sessionmaker() as session:
        try:
            await service.authenticate(
                session,
                app.state.redis,
                login=login,
                password=password,
                client_ip="203.113.9.9",
                client_id="dncity-mobile",
            )
        except ProblemError:
            return False
        await session.commit()
        return True


async def test_password_reset_by_sms(client: httpx.AsyncClient, app: FastAPI) -> None:
    await register_and_verify(client, citizen_body(phone="0935000111"))
    started = await client.post("/v1/identity/password-resets", json={"phone": "+84 935 000 111"})
    assert started.status_code == 202, started.text
    code = await last_code(client, "0935000111")
    weak = await client.post(
        f"/v1/identity/password-resets/{started.json()['id']}/confirm", json={"code": code, "new_password": "password1"}
    )
    assert weak.status_code == 422 and weak.json()["errors"][0]["field"] == "body.new_password"
    wrong = await client.post(
        f"/v1/identity/password-resets/{started.json()['id']}/confirm",
        json={"code": wrong_code(code), "new_password": NEW_PASSWORD},
    )
    assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_code"
    done = await client.post(
        f"/v1/identity/password-resets/{started.json()['id']}/confirm",
        json={"code": code, "new_password": NEW_PASSWORD},
    )
    assert done.status_code == 204, done.text
    assert await can_sign_in(app, "0935000111", NEW_PASSWORD)
    assert not await can_sign_in(app, "0935000111", PASSWORD)
    again = await client.post(
        f"/v1/identity/password-resets/{started.json()['id']}/confirm",
        json={"code": code, "new_password": "Another good passphrase 8"},
    )
    assert again.status_code == 400


async def test_reset_reveals_nothing_about_unknown_phones(client: httpx.AsyncClient) -> None:
    unknown = await client.post("/v1/identity/password-resets", json={"phone": "0935999999"})
    assert unknown.status_code == 202 and set(unknown.json()) == {"id", "code_expires_at"}
    assert await sms_messages(client, "0935999999") == []
    confirm = await client.post(
        f"/v1/identity/password-resets/{unknown.json()['id']}/confirm",
        json={"code": "123456", "new_password": NEW_PASSWORD},
    )
    assert confirm.status_code == 400 and confirm.json()["code"] == "invalid_code"
    bad = await client.post("/v1/identity/password-resets", json={"phone": "not a phone"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.phone"


async def test_reset_requests_are_rate_limited(client: httpx.AsyncClient) -> None:
    await register_and_verify(client, citizen_body(phone="0935000222"))
    assert (await client.post("/v1/identity/password-resets", json={"phone": "0935000222"})).status_code == 202
    second = await client.post("/v1/identity/password-resets", json={"phone": "0935000222"})
    assert second.status_code == 429 and "Retry-After" in second.headers
    # Unknown phones are throttled the same way (no difference to probe).
    assert (await client.post("/v1/identity/password-resets", json={"phone": "0935000333"})).status_code == 202
    assert (await client.post("/v1/identity/password-resets", json={"phone": "0935000333"})).status_code == 429


async def test_reset_clears_the_lockout(client: httpx.AsyncClient, app: FastAPI) -> None:
    await register_and_verify(client, citizen_body(phone="0935000444"))
    for _ in range(6):
        assert not await can_sign_in(app, "0935000444", "wrong password!")
    started = await client.post("/v1/identity/password-resets", json={"phone": "0935000444"})
    code = await last_code(client, "0935000444")
    await client.post(
        f"/v1/identity/password-resets/{started.json()['id']}/confirm",
        json={"code": code, "new_password": NEW_PASSWORD},
    )
    assert await can_sign_in(app, "0935000444", NEW_PASSWORD)


async def test_change_password(client: httpx.AsyncClient, app: FastAPI, tokens: TokenFactory) -> None:
    sub = await register_and_verify(client, citizen_body(phone="0935000555"))
    headers = tokens.bearer(tokens.user(sub))
    wrong = await client.post(
        "/v1/identity/me/password",
        headers=headers,
        json={"current_password": "not it at all", "new_password": NEW_PASSWORD},
    )
    assert wrong.status_code == 403 and wrong.json()["errors"][0]["field"] == "body.current_password"
    weak = await client.post(
        "/v1/identity/me/password", headers=headers, json={"current_password": PASSWORD, "new_password": "123456789"}
    )
    assert weak.status_code == 422
    ok = await client.post(
        "/v1/identity/me/password", headers=headers, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert ok.status_code == 204
    assert await can_sign_in(app, "0935000555", NEW_PASSWORD)
    audit = (await client.get("/v1/identity/me/audit", headers=headers)).json()["items"]
    assert {"password.changed", "password.change.wrong_password"} <= {e["action"] for e in audit}


async def test_change_password_wrong_attempts_lock_out(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    sub = await register_and_verify(client, citizen_body(phone="0935000666"))
    headers = tokens.bearer(tokens.user(sub))
    body = {"current_password": "not it at all", "new_password": NEW_PASSWORD}
    for _ in range(5):
        assert (await client.post("/v1/identity/me/password", headers=headers, json=body)).status_code == 403
    locked = await client.post(
        "/v1/identity/me/password", headers=headers, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert locked.status_code == 429 and locked.json()["code"] == "account_locked"
    assert int(locked.headers["Retry-After"]) > 0
