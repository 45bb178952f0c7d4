"""RP-Initiated Logout 1.0: an agency's app signs the person out of Da Nang ID."""

from __future__ import annotations

import jwt

from tests.oauth.conftest import MOBILE_REDIRECT, PORTAL_REDIRECT
from tests.oauth.flow import auth_params, code_for, csrf_of, pkce, query_of
from tests.oauth.test_code_flow import exchange


async def id_token(identity, client_id: str) -> str:  # type: ignore[no-untyped-def]
    code, verifier = await code_for(identity, client_id, MOBILE_REDIRECT)
    response = await exchange(identity, client_id, code, verifier)
    assert response.status_code == 200, response.text
    return str(response.json()["id_token"])


async def signed_in(identity, client_id: str) -> bool:  # type: ignore[no-untyped-def]
    """Whether the browser's Da Nang ID session still lets authorization skip the sign-in page."""
    _verifier, challenge = pkce()
    params = auth_params(client_id, MOBILE_REDIRECT, challenge=challenge)
    response = await identity.get("/oauth2/authorize", params=params)
    assert response.status_code in (302, 303), response.text
    return not response.headers["location"].startswith("/oauth2/signin")


async def test_metadata_advertises_the_end_session_endpoint(identity) -> None:  # type: ignore[no-untyped-def]
    meta = (await identity.get("/.well-known/openid-configuration")).json()
    assert meta["end_session_endpoint"] == meta["issuer"] + "/oauth2/logout"


async def test_logout_with_hint_ends_the_session_and_returns_to_the_app(identity, mobile, person) -> None:  # type: ignore[no-untyped-def]
    hint = await id_token(identity, mobile)
    assert await signed_in(identity, mobile)
    old_session = identity.cookies.get("dnid_session", path="/oauth2/")
    assert old_session
    response = await identity.get(
        "/oauth2/logout", params={"id_token_hint": hint, "post_logout_redirect_uri": MOBILE_REDIRECT, "state": "bye-1"}
    )
    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith(MOBILE_REDIRECT + "?")
    assert query_of(response.headers["location"]) == {"state": "bye-1"}
    assert "dnid_session" in response.headers.get("set-cookie", "")
    assert not await signed_in(identity, mobile)
    # The server-side session is gone too: replaying the old cookie does not sign anyone in.
    identity.cookies.set("dnid_session", old_session, domain="testserver.local", path="/oauth2/")
    assert identity.cookies.get("dnid_session", path="/oauth2/") == old_session
    assert not await signed_in(identity, mobile)


async def test_an_expired_hint_is_still_a_valid_hint(identity, mobile, person, tokens) -> None:  # type: ignore[no-untyped-def]
    from services.identity.keys.service import ID_TOKEN_ALG

    hint = await id_token(identity, mobile)
    claims = jwt.decode(hint, options={"verify_signature": False})
    expired = tokens.keyring.sign(
        {**claims, "iat": claims["iat"] - 7200, "exp": claims["iat"] - 3600}, alg=ID_TOKEN_ALG, typ="JWT"
    )
    response = await identity.get("/oauth2/logout", params={"id_token_hint": expired})
    assert response.status_code == 200 and "Đã đăng xuất" in response.text
    assert not await signed_in(identity, mobile)


async def test_without_a_hint_the_person_confirms(identity, mobile, person) -> None:  # type: ignore[no-untyped-def]
    await id_token(identity, mobile)
    ask = await identity.get(
        "/oauth2/logout",
        params={"client_id": mobile, "post_logout_redirect_uri": MOBILE_REDIRECT, "state": "s2", "ui_locales": "en"},
    )
    assert ask.status_code == 200 and "Do you want to sign out" in ask.text
    assert await signed_in(identity, mobile)  # asking changes nothing
    # A form posted from elsewhere (no CSRF token of this browser) signs nobody out.
    forged = await identity.post("/oauth2/logout", data={"client_id": mobile, "confirm": "yes", "csrf_token": "x" * 43})
    assert forged.status_code == 403 and await signed_in(identity, mobile)
    confirmed = await identity.post(
        "/oauth2/logout",
        data={
            "client_id": mobile,
            "post_logout_redirect_uri": MOBILE_REDIRECT,
            "state": "s2",
            "confirm": "yes",
            "csrf_token": csrf_of(ask.text),
        },
    )
    assert confirmed.status_code == 302 and query_of(confirmed.headers["location"]) == {"state": "s2"}
    assert not await signed_in(identity, mobile)


async def test_bad_requests_are_error_pages_that_change_nothing(identity, mobile, portal, person) -> None:  # type: ignore[no-untyped-def]
    hint = await id_token(identity, mobile)
    portal_id, _ = portal
    cases = [
        {"id_token_hint": hint[:-6] + "AAAAAA"},  # forged signature
        {"id_token_hint": "not-a-jwt"},
        {"id_token_hint": hint, "client_id": portal_id},  # issued to another client
        {"id_token_hint": hint, "post_logout_redirect_uri": "https://evil.example/cb"},  # not registered
        {"client_id": mobile, "post_logout_redirect_uri": PORTAL_REDIRECT},  # another client's URI
        {"post_logout_redirect_uri": MOBILE_REDIRECT},  # no client to check it against
        {"client_id": "no-such-client"},
    ]
    for params in cases:
        response = await identity.get("/oauth2/logout", params=params)
        assert response.status_code == 400, (params, response.text)
        assert "location" not in response.headers and response.headers["content-type"].startswith("text/html")
        assert await signed_in(identity, mobile), params


async def test_logout_when_nobody_is_signed_in_just_says_so(identity, mobile) -> None:  # type: ignore[no-untyped-def]
    response = await identity.get("/oauth2/logout")
    assert response.status_code == 200 and "Đã đăng xuất" in response.text
    redirect = await identity.post(
        "/oauth2/logout", data={"client_id": mobile, "post_logout_redirect_uri": MOBILE_REDIRECT}
    )
    assert redirect.status_code == 302 and redirect.headers["location"] == MOBILE_REDIRECT
