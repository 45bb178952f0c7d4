"""The sign-in, two-step and consent pages: languages, CSRF, headers, cookies, lockout, TOTP, deny."""

from __future__ import annotations

import pyotp
from sqlalchemy import update

from dncity.cli import database_url
from services.identity.accounts.crypto import encrypt_secret
from services.identity.accounts.models import Account
from shared.db import Database
from tests.oauth.conftest import MOBILE_REDIRECT, make_person
from tests.oauth.flow import PASSWORD, auth_params, csrf_of, pkce, query_of, rid_of


async def start(identity, mobile, **extra) -> str:
    _v, challenge = pkce()
    response = await identity.get(
        "/oauth2/authorize", params=auth_params(mobile, MOBILE_REDIRECT, challenge=challenge, **extra)
    )
    assert response.status_code == 302
    return response.headers["location"]


async def test_sign_in_page_language_headers_and_cookies(identity, mobile) -> None:
    location = await start(identity, mobile)
    page = await identity.get(location)
    assert page.status_code == 200 and '<html lang="vi">' in page.text and "Đăng nhập Da Nang ID" in page.text
    assert "Test mobile app" in page.text
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert 'name="viewport" content="width=device-width' in page.text
    # English by ui_locales, and by Accept-Language.
    english = await identity.get(await start(identity, mobile, ui_locales="en-US vi"))
    assert '<html lang="en">' in english.text and "Sign in with Da Nang ID" in english.text
    _v, challenge = pkce()
    redirect = await identity.get(
        "/oauth2/authorize",
        params=auth_params(mobile, MOBILE_REDIRECT, challenge=challenge),
        headers={"Accept-Language": "fr;q=1, en;q=0.8, vi;q=0.5"},
    )
    assert "Sign in with" in (await identity.get(redirect.headers["location"])).text


async def test_browser_cookie_flags(identity, mobile) -> None:
    _v, challenge = pkce()
    response = await identity.get("/oauth2/authorize", params=auth_params(mobile, MOBILE_REDIRECT, challenge=challenge))
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("dnid_browser=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/oauth2/" in cookie
    assert "Secure" not in cookie  # the test issuer is http://127.0.0.1 (loopback); https issuers get Secure


async def test_csrf_is_required(identity, mobile, person) -> None:
    location = await start(identity, mobile)
    await identity.get(location)
    response = await identity.post(
        "/oauth2/signin",
        data={"rid": rid_of(location), "csrf_token": "forged", "login": "+84905123456", "password": PASSWORD},
    )
    assert response.status_code == 403 and "location" not in response.headers


async def test_pending_request_belongs_to_its_browser(identity, mobile, person, service_app) -> None:
    import httpx

    location = await start(identity, mobile)
    other = httpx.AsyncClient(transport=identity._transport, base_url="http://testserver")
    async with other:
        page = await other.get(location)
    assert page.status_code == 400 and "location" not in page.headers


async def test_wrong_password_then_lockout(identity, mobile, person) -> None:
    location = await start(identity, mobile)
    statuses = []
    for _ in range(6):
        page = await identity.get(location)
        response = await identity.post(
            "/oauth2/signin",
            data={
                "rid": rid_of(location),
                "csrf_token": csrf_of(page.text),
                "login": "+84905123456",
                "password": "nope",
            },
        )
        statuses.append(response.status_code)
        assert "location" not in response.headers
        if len(statuses) == 1:
            assert "Thông tin đăng nhập hoặc mật khẩu không đúng" in response.text
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    page = await identity.get(location)
    response = await identity.post(
        "/oauth2/signin",
        data={"rid": rid_of(location), "csrf_token": csrf_of(page.text), "login": "+84905123456", "password": PASSWORD},
    )
    assert response.status_code == 429 and "tạm thời bị khóa" in response.text


async def test_two_step_sign_in(identity, mobile) -> None:
    sub = await make_person()
    secret = pyotp.random_base32()
    db = Database(database_url("identity"))
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(Account)
            .where(Account.id == sub)
            .values(totp_enabled=True, totp_secret_encrypted=encrypt_secret(secret, account_id=sub))
        )
    await db.dispose()
    location = await start(identity, mobile)
    page = await identity.get(location)
    response = await identity.post(
        "/oauth2/signin",
        data={"rid": rid_of(location), "csrf_token": csrf_of(page.text), "login": "+84905123456", "password": PASSWORD},
    )
    assert response.status_code == 303 and response.headers["location"].startswith("/oauth2/signin/totp")
    totp_location = response.headers["location"]
    # No session yet: the authorization endpoint still asks to sign in.
    assert (await start(identity, mobile)).startswith("/oauth2/signin")
    page = await identity.get(totp_location)
    wrong = await identity.post(
        "/oauth2/signin/totp", data={"rid": rid_of(totp_location), "csrf_token": csrf_of(page.text), "code": "000000"}
    )
    assert wrong.status_code == 400
    response = await identity.post(
        "/oauth2/signin/totp",
        data={"rid": rid_of(totp_location), "csrf_token": csrf_of(page.text), "code": pyotp.TOTP(secret).now()},
    )
    assert response.status_code == 303 and response.headers["location"].startswith("/oauth2/consent")


async def test_denying_consent_returns_access_denied(identity, mobile, person) -> None:
    location = await start(identity, mobile)
    page = await identity.get(location)
    response = await identity.post(
        "/oauth2/signin",
        data={"rid": rid_of(location), "csrf_token": csrf_of(page.text), "login": "+84905123456", "password": PASSWORD},
    )
    consent_location = response.headers["location"]
    page = await identity.get(consent_location)
    assert "Họ tên, ngày sinh và ngôn ngữ của bạn" in page.text and "Nguyễn Văn An" in page.text
    response = await identity.post(
        "/oauth2/consent", data={"rid": rid_of(consent_location), "csrf_token": csrf_of(page.text), "decision": "deny"}
    )
    assert response.status_code == 303
    query = query_of(response.headers["location"])
    assert response.headers["location"].startswith(MOBILE_REDIRECT)
    assert query["error"] == "access_denied" and query["state"] == "st-1" and query["iss"]
    # The request is spent: posting again finds nothing.
    again = await identity.post(
        "/oauth2/consent", data={"rid": rid_of(consent_location), "csrf_token": csrf_of(page.text), "decision": "allow"}
    )
    assert again.status_code == 400 and "location" not in again.headers


async def test_login_hint_prefills_and_prompt_consent_asks_again(identity, mobile, person) -> None:
    from tests.oauth.flow import code_for

    page = await identity.get(await start(identity, mobile, login_hint="0905123456"))
    assert 'value="0905123456"' in page.text
    await code_for(identity, mobile, MOBILE_REDIRECT)  # signed in and consented
    assert (await start(identity, mobile)).startswith(MOBILE_REDIRECT)
    assert (await start(identity, mobile, prompt="consent")).startswith("/oauth2/consent")


async def test_authorization_request_by_post(identity, mobile, person) -> None:
    from tests.oauth.flow import code_for

    await code_for(identity, mobile, MOBILE_REDIRECT)
    _v, challenge = pkce()
    response = await identity.post("/oauth2/authorize", data=auth_params(mobile, MOBILE_REDIRECT, challenge=challenge))
    assert response.status_code == 303  # after a POST
    query = query_of(response.headers["location"])
    assert query["code"] and query["state"] == "st-1" and query["iss"]
