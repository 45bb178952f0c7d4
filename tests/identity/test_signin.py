"""authenticate / verify_totp (what the OAuth sign-in calls): logins, lockout, TOTP, audit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from starlette.requests import Request

from services.identity.accounts import service
from services.identity.accounts.models import Account
from services.identity.app import create_app
from services.identity.audit.models import AuditEvent
from services.identity.settings import IdentitySettings
from shared.errors import ProblemError
from shared.settings import PlatformSettings
from tests.helpers.asgi import running
from tests.helpers.tokens import TokenFactory
from tests.identity.helpers import PASSWORD, citizen_body, citizen_id, register, register_and_verify


async def sign_in(app: FastAPI, login: str, password: str = PASSWORD, ip: str = "203.113.1.10") -> Account:
    async with app.state.db.sessionmaker() as session:
        account = await service.authenticate(
            session, app.state.redis, login=login, password=password, client_ip=ip, client_id="dncity-mobile"
        )
        await session.commit()
        return account


async def sign_in_error(app: FastAPI, login: str, password: str = PASSWORD, ip: str = "203.113.1.10") -> ProblemError:
    with pytest.raises(ProblemError) as info:
        await sign_in(app, login, password, ip)
    return info.value


async def audit_actions(app: FastAPI, sub: str) -> list[str]:
    async with app.state.db.sessionmaker() as session:
        rows = await session.scalars(select(AuditEvent).where(AuditEvent.sub == sub).order_by(AuditEvent.created_at))
        return [r.action for r in rows]


async def test_login_by_any_phone_form_or_personal_id(client: httpx.AsyncClient, app: FastAPI) -> None:
    born = date(1992, 4, 30)
    body = citizen_body(phone="0376123456", citizen_id=citizen_id(born, female=True), date_of_birth=born.isoformat())
    sub = await register_and_verify(client, body)
    for login in ("0376123456", "+84376123456", "84376123456", "037 612 3456", body["citizen_id"]):
        account = await sign_in(app, login)
        assert account.id == sub and account.acr == "urn:dncity:loa:1"
    actions = await audit_actions(app, sub)
    assert actions.count("signin.password_ok") == 5


async def test_wrong_password_and_unknown_login_look_the_same(client: httpx.AsyncClient, app: FastAPI) -> None:
    sub = await register_and_verify(client, citizen_body(phone="0905000111"))
    wrong = await sign_in_error(app, "0905000111", "not the password")
    unknown = await sign_in_error(app, "0905999888")
    assert (wrong.status, wrong.code) == (unknown.status, unknown.code) == (401, "invalid_credentials")
    assert "signin.failed" in await audit_actions(app, sub)


async def test_pending_account_cannot_sign_in(client: httpx.AsyncClient, app: FastAPI) -> None:
    await register(client, citizen_body(phone="0905000222"))
    error = await sign_in_error(app, "0905000222")
    assert (error.status, error.code) == (403, "account_not_active")


async def test_account_lockout_is_progressive_and_survives_restarts() -> None:
    settings = IdentitySettings(lockout_base_s=3, lockout_max_s=12)
    app = create_app(settings, PlatformSettings())
    async with running(app) as client:
        await register_and_verify(client, citizen_body(phone="0912000333"))
        for _ in range(5):
            assert (await sign_in_error(app, "0912000333", "wrong password!")).code == "invalid_credentials"
        locked = await sign_in_error(app, "0912000333")  # even the right password is refused while locked
        assert (locked.status, locked.code) == (429, "account_locked")
        assert locked.headers["Retry-After"] in ("2", "3")
    # A restarted service (a new process would read the same Redis) still knows the lock.
    restarted = create_app(settings, PlatformSettings())
    async with running(restarted):
        still = await sign_in_error(restarted, "0912000333")
        assert still.code == "account_locked"
        await asyncio.sleep(int(still.headers["Retry-After"]) + 0.2)
        assert (await sign_in(restarted, "0912000333")).phone_e164 == "+84912000333"
        # The next lock lasts twice as long, then the cap applies.
        for expected in (6, 12, 12):
            for _ in range(5):
                await sign_in_error(restarted, "0912000333", "wrong password!")
            locked = await sign_in_error(restarted, "0912000333")
            assert locked.code == "account_locked" and int(locked.headers["Retry-After"]) in (expected - 1, expected)
            await restarted.state.redis.delete(*await restarted.state.redis.keys("dncity:identity:lockout:*:locked"))


async def test_lockout_counts_the_personal_id_and_the_phone_together(client: httpx.AsyncClient, app: FastAPI) -> None:
    body = citizen_body(phone="0987000444")
    await register_and_verify(client, body)
    for login in ("0987000444", body["citizen_id"], "+84987000444", body["citizen_id"], "0987000444"):
        await sign_in_error(app, login, "wrong password!")
    assert (await sign_in_error(app, body["citizen_id"])).code == "account_locked"


async def test_unknown_logins_are_locked_out_too(app: FastAPI) -> None:
    for _ in range(5):
        assert (await sign_in_error(app, "0905111222", "guess", ip="198.51.100.7")).code == "invalid_credentials"
    assert (await sign_in_error(app, "0905111222", "guess", ip="198.51.100.8")).code == "account_locked"


async def test_per_ip_lockout(client: httpx.AsyncClient, app: FastAPI) -> None:
    """Password spraying from one address: 20 failures over many logins lock the address."""
    sub_ok = await register_and_verify(client, citizen_body(phone="0356000555"))
    for i in range(20):
        await sign_in_error(app, f"0905{i:06d}", "Spray password 1", ip="192.0.2.66")
    blocked = await sign_in_error(app, "0356000555", ip="192.0.2.66")
    assert blocked.code == "account_locked" and int(blocked.headers["Retry-After"]) > 0
    # The same person from another address is not affected.
    assert (await sign_in(app, "0356000555", ip="192.0.2.67")).id == sub_ok


async def test_success_resets_the_account_failure_count(client: httpx.AsyncClient, app: FastAPI) -> None:
    await register_and_verify(client, citizen_body(phone="0707000666"))
    for _ in range(4):
        await sign_in_error(app, "0707000666", "wrong password!")
    await sign_in(app, "0707000666")
    for _ in range(4):
        await sign_in_error(app, "0707000666", "wrong password!")
    assert (await sign_in(app, "0707000666")).phone_e164 == "+84707000666"


@pytest.fixture
async def totp_user(client: httpx.AsyncClient, tokens: TokenFactory) -> AsyncIterator[tuple[str, str, list[str]]]:
    sub = await register_and_verify(client, citizen_body(phone="0888000777"))
    headers = tokens.bearer(tokens.user(sub))
    enrol = await client.post("/v1/identity/me/totp", headers=headers)
    assert enrol.status_code == 200, enrol.text
    secret = enrol.json()["secret"]
    assert enrol.json()["otpauth_uri"].startswith("otpauth://totp/")
    confirm = await client.post(
        "/v1/identity/me/totp/confirm", headers=headers, json={"code": pyotp.TOTP(secret).now()}
    )
    assert confirm.status_code == 200, confirm.text
    codes = confirm.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    yield sub, secret, codes


async def test_totp_second_factor(app: FastAPI, totp_user: tuple[str, str, list[str]]) -> None:
    sub, secret, recovery = totp_user
    account = await sign_in(app, "0888000777")
    assert service.requires_totp(account)
    async with app.state.db.sessionmaker() as session:
        account = await session.get(Account, sub)
        assert account is not None
        # The code used at enrolment was consumed; the next time step's code works once.
        totp = pyotp.TOTP(secret)
        import time

        nxt = totp.at(time.time() + 30)
        assert await service.verify_totp(session, app.state.redis, account, nxt)
        assert not await service.verify_totp(session, app.state.redis, account, nxt)  # no replay
        assert not await service.verify_totp(
            session, app.state.redis, account, "000000" if nxt != "000000" else "111111"
        )
        assert await service.verify_totp(session, app.state.redis, account, recovery[0].upper())
        assert not await service.verify_totp(session, app.state.redis, account, recovery[0])  # single use
        await session.commit()
    async with app.state.db.sessionmaker() as session:
        stored = await session.get(Account, sub)
        assert stored is not None and len(stored.recovery_code_hashes) == 9
        assert secret.encode() not in (stored.totp_secret_encrypted or b"")


async def test_wrong_totp_codes_count_toward_lockout(app: FastAPI, totp_user: tuple[str, str, list[str]]) -> None:
    sub, _secret, _codes = totp_user
    async with app.state.db.sessionmaker() as session:
        account = await session.get(Account, sub)
        assert account is not None
        for _ in range(5):
            assert not await service.verify_totp(session, app.state.redis, account, "abcde-fghij")
        with pytest.raises(ProblemError) as info:
            await service.verify_totp(session, app.state.redis, account, "abcde-fghij")
        assert info.value.code == "account_locked"
    assert (await sign_in_error(app, "0888000777")).code == "account_locked"


async def test_disable_totp_needs_password_and_code(
    client: httpx.AsyncClient, tokens: TokenFactory, totp_user: tuple[str, str, list[str]]
) -> None:
    sub, _secret, recovery = totp_user
    headers = tokens.bearer(tokens.user(sub))
    wrong_pw = await client.post(
        "/v1/identity/me/totp/disable", headers=headers, json={"password": "nope nope nope", "code": recovery[1]}
    )
    assert wrong_pw.status_code == 403 and wrong_pw.json()["code"] == "invalid_password"
    wrong_code = await client.post(
        "/v1/identity/me/totp/disable", headers=headers, json={"password": PASSWORD, "code": "zzzzz-zzzzz"}
    )
    assert wrong_code.status_code == 422
    ok = await client.post(
        "/v1/identity/me/totp/disable", headers=headers, json={"password": PASSWORD, "code": recovery[1]}
    )
    assert ok.status_code == 204
    me = await client.get("/v1/identity/me", headers=headers)
    assert me.json()["totp_enabled"] is False


def _request(peer: str, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "client": (peer, 5000), "headers": headers, "method": "GET", "path": "/"})


def test_client_ip_believes_only_trusted_proxies() -> None:
    from services.identity.accounts import config
    from services.identity.accounts.dependencies import client_ip

    config.configure(IdentitySettings(trusted_proxies=["127.0.0.1", "10.0.0.0/8"]))
    try:
        # Straight from the internet: X-Forwarded-For is the caller's own claim and ignored.
        assert client_ip(_request("198.51.100.1", "1.2.3.4")) == "198.51.100.1"
        # Through the gateway: the last address the gateway saw.
        assert client_ip(_request("127.0.0.1", "1.2.3.4, 203.113.5.5")) == "203.113.5.5"
        assert client_ip(_request("10.1.2.3", "203.113.5.5, 10.9.9.9")) == "203.113.5.5"
        assert client_ip(_request("127.0.0.1")) == "127.0.0.1"
    finally:
        config.configure(IdentitySettings())
