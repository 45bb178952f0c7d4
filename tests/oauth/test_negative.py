"""Every refusal the issue lists: each must fail the way RFC 6749/7636/9700 and OIDC Core say."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from urllib.parse import urlencode

import jwt
import pytest
from sqlalchemy import update

from dncity.cli import database_url
from services.identity.oauth.models import AuthorizationCode
from shared.db import Database, utcnow
from tests.oauth.conftest import MOBILE_REDIRECT, PORTAL_REDIRECT
from tests.oauth.flow import auth_params, authorize, code_for, pkce, query_of
from tests.oauth.test_code_flow import exchange


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def introspect(identity, agency, token: str) -> dict:
    response = await identity.post("/oauth2/introspect", data={"token": token}, auth=agency)
    assert response.status_code == 200, response.text
    return response.json()


async def tokens_for(identity, mobile) -> dict:
    code, verifier = await code_for(identity, mobile, MOBILE_REDIRECT, scope="openid profile offline_access")
    response = await exchange(identity, mobile, code, verifier)
    assert response.status_code == 200, response.text
    return response.json()


async def refresh(identity, client_id: str, refresh_token: str):
    return await identity.post(
        "/oauth2/token", data={"grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token}
    )


# -- PKCE ---------------------------------------------------------------------------------------------


async def test_public_client_without_pkce_is_refused(identity, mobile, person) -> None:
    response = await identity.get("/oauth2/authorize", params=auth_params(mobile, MOBILE_REDIRECT))
    assert response.status_code == 302
    query = query_of(response.headers["location"])
    assert response.headers["location"].startswith(MOBILE_REDIRECT)
    assert query["error"] == "invalid_request" and query["state"] == "st-1"
    assert query["iss"] == "http://127.0.0.1:8000"


@pytest.mark.parametrize("method", ["plain", None])
async def test_plain_pkce_is_refused(identity, mobile, person, method) -> None:
    params = auth_params(mobile, MOBILE_REDIRECT, code_challenge="a" * 43)
    if method:
        params["code_challenge_method"] = method
    response = await identity.get("/oauth2/authorize", params=params)
    query = query_of(response.headers["location"])
    assert query["error"] == "invalid_request" and query["iss"]


async def test_wrong_verifier_is_refused(identity, mobile, person) -> None:
    code, _verifier = await code_for(identity, mobile, MOBILE_REDIRECT)
    wrong, _ = pkce()
    response = await exchange(identity, mobile, code, wrong)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


async def test_missing_verifier_is_refused(identity, mobile, person) -> None:
    code, _verifier = await code_for(identity, mobile, MOBILE_REDIRECT)
    response = await identity.post(
        "/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": MOBILE_REDIRECT, "client_id": mobile},
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


async def test_verifier_without_challenge_is_refused(identity, portal, person) -> None:
    client_id, secret = portal
    location = await authorize(identity, auth_params(client_id, PORTAL_REDIRECT))  # confidential: PKCE optional
    code = query_of(location)["code"]
    verifier, _ = pkce()
    response = await identity.post(
        "/oauth2/token",
        auth=(client_id, secret),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": PORTAL_REDIRECT,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


# -- redirect URIs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        PORTAL_REDIRECT + "/",  # trailing slash
        "https://Portal.example.vn/callback",  # case
        "https://portal.example.vn/CALLBACK",
        PORTAL_REDIRECT + "?next=1",  # extra query
        "https://portal.example.vn@evil.example/callback",  # userinfo@host
        "https://evil.example@portal.example.vn/callback",
        "https://evil.example/callback",  # other host
        "https://portal.example.vn:8443/callback",  # other port
        "https://portal.example.vn/callback/../evil",  # path traversal
        "https://portal.example.vn/evil/../callback",
        "https://portal.example.vn/callback%2F..%2Fevil",
        "https://portal.example.vn/callback#frag",
    ],
)
async def test_unregistered_redirect_uri_is_never_used(identity, portal, uri) -> None:
    client_id, _ = portal
    response = await identity.get("/oauth2/authorize", params=auth_params(client_id, uri))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "text/html" in response.headers["content-type"]


async def test_loopback_redirect_may_change_only_its_port(identity, mobile, person) -> None:
    _verifier, challenge = pkce()
    location = await authorize(identity, auth_params(mobile, "http://127.0.0.1:53127/callback", challenge=challenge))
    assert location.startswith("http://127.0.0.1:53127/callback?") and "code=" in location
    for uri in (
        "http://127.0.0.1:53127/other",
        "http://localhost:53127/callback",
        "http://127.0.0.1:53127@evil.example/callback",
    ):
        response = await identity.get("/oauth2/authorize", params=auth_params(mobile, uri, challenge=challenge))
        assert response.status_code == 400 and "location" not in response.headers


async def test_missing_redirect_uri_is_refused(identity, portal) -> None:
    params = auth_params(portal[0], PORTAL_REDIRECT)
    del params["redirect_uri"]
    response = await identity.get("/oauth2/authorize", params=params)
    assert response.status_code == 400 and "location" not in response.headers


# -- clients ----------------------------------------------------------------------------------------


async def test_unknown_client(identity) -> None:
    response = await identity.get("/oauth2/authorize", params=auth_params("nobody", PORTAL_REDIRECT))
    assert response.status_code == 400 and "location" not in response.headers
    response = await identity.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=("nobody", "x" * 40)
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_wrong_secret(identity, agency) -> None:
    client_id, secret = agency
    for attempt in (
        {"auth": (client_id, secret[:-1] + "x")},
        {"data": {"client_id": client_id, "client_secret": "wrong"}},
    ):
        data = {"grant_type": "client_credentials", **attempt.pop("data", {})}
        response = await identity.post("/oauth2/token", data=data, **attempt)
        assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"


async def test_client_secret_post_works_only_for_its_registered_method(identity, agency) -> None:
    client_id, secret = agency  # registered for client_secret_basic
    response = await identity.post(
        "/oauth2/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    )
    assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"


# -- codes --------------------------------------------------------------------------------------------


async def test_code_reuse_fails_and_revokes_the_first_tokens(identity, mobile, person, agency) -> None:
    code, verifier = await code_for(identity, mobile, MOBILE_REDIRECT, scope="openid profile offline_access")
    first = await exchange(identity, mobile, code, verifier)
    assert first.status_code == 200
    tokens = first.json()
    assert (await identity.get("/oauth2/userinfo", headers=bearer(tokens["access_token"]))).status_code == 200
    second = await exchange(identity, mobile, code, verifier)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert (await identity.get("/oauth2/userinfo", headers=bearer(tokens["access_token"]))).status_code == 401
    assert (await introspect(identity, agency, tokens["access_token"]))["active"] is False
    assert (await refresh(identity, mobile, tokens["refresh_token"])).json()["error"] == "invalid_grant"


async def test_code_of_another_client(identity, mobile, person) -> None:
    from tests.oauth.conftest import register

    other, _ = await register(
        client_id="other-mobile",
        name="Other app",
        client_type="public",
        grant_types=["authorization_code"],
        redirect_uris=[MOBILE_REDIRECT],
        scopes=["openid"],
    )
    code, verifier = await code_for(identity, mobile, MOBILE_REDIRECT)
    response = await exchange(identity, other, code, verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    # It still works for its own client (nothing was consumed).
    assert (await exchange(identity, mobile, code, verifier)).status_code == 200


async def test_code_redirect_uri_must_match(identity, mobile, person) -> None:
    code, verifier = await code_for(identity, mobile, MOBILE_REDIRECT)
    response = await exchange(identity, mobile, code, verifier, redirect_uri="http://127.0.0.1/callback")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


async def test_expired_code(identity, mobile, person) -> None:
    code, verifier = await code_for(identity, mobile, MOBILE_REDIRECT)
    db = Database(database_url("identity"))
    async with db.sessionmaker() as session, session.begin():
        await session.execute(update(AuthorizationCode).values(expires_at=utcnow()))
    await db.dispose()
    response = await exchange(identity, mobile, code, verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


async def test_codes_are_long_and_short_lived(identity, mobile, person) -> None:
    code, _ = await code_for(identity, mobile, MOBILE_REDIRECT)
    assert len(code) * 5.9 >= 128  # 48 characters of a 62-letter alphabet: ~285 bits
    db = Database(database_url("identity"))
    async with db.sessionmaker() as session:
        row = (await session.execute(AuthorizationCode.__table__.select())).one()
    await db.dispose()
    assert row.code_sha256 != code and (row.expires_at - row.created_at).total_seconds() <= 60


# -- refresh tokens -----------------------------------------------------------------------------------


async def test_refresh_rotates_and_reuse_revokes_the_family(identity, mobile, person, agency) -> None:
    tokens = await tokens_for(identity, mobile)
    rotated = await refresh(identity, mobile, tokens["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    reuse = await refresh(identity, mobile, tokens["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    # The whole family is revoked: the newest refresh token and every access token.
    assert (await refresh(identity, mobile, new["refresh_token"])).json()["error"] == "invalid_grant"
    for access in (tokens["access_token"], new["access_token"]):
        assert (await identity.get("/oauth2/userinfo", headers=bearer(access))).status_code == 401
        assert (await introspect(identity, agency, access))["active"] is False


async def test_refresh_scope_cannot_grow(identity, mobile, person) -> None:
    tokens = await tokens_for(identity, mobile)
    response = await identity.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": mobile,
            "refresh_token": tokens["refresh_token"],
            "scope": "openid parking",
        },
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


async def test_fifty_concurrent_refreshes_exactly_one_succeeds(identity, mobile, person) -> None:
    tokens = await tokens_for(identity, mobile)
    responses = await asyncio.gather(*[refresh(identity, mobile, tokens["refresh_token"]) for _ in range(50)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code != 200)


# -- access tokens ------------------------------------------------------------------------------------


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_forged_and_misused_tokens_fail_at_userinfo_and_introspection(
    identity, mobile, person, agency, tokens
) -> None:
    issued = await tokens_for(identity, mobile)
    access, id_token = issued["access_token"], issued["id_token"]
    header_b64, payload_b64, signature = access.split(".")
    claims = jwt.decode(access, options={"verify_signature": False})
    header = jwt.get_unverified_header(access)
    tampered = ".".join([header_b64, _b64({**claims, "scope": claims["scope"] + " payments"}), signature])
    alg_none = ".".join([_b64({"alg": "none", "typ": "at+jwt", "kid": header["kid"]}), payload_b64, ""])
    jwks = (await identity.get("/oauth2/jwks")).json()["keys"]
    public_pem = jwt.PyJWK(next(k for k in jwks if k["kid"] == header["kid"])).key.public_bytes(
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).Encoding.PEM,
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).PublicFormat.SubjectPublicKeyInfo,
    )
    hs256 = ".".join([_b64({"alg": "HS256", "typ": "at+jwt", "kid": header["kid"]}), payload_b64])
    import hashlib
    import hmac

    hs256 += (
        "."
        + base64.urlsafe_b64encode(hmac.new(public_pem, hs256.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    )
    expired = tokens.user(person, ["openid", "profile"], client_id=mobile, now=int(time.time()) - 3600)
    for bad in (tampered, alg_none, hs256, id_token, expired, "not-a-token", access + "x"):
        assert (await identity.get("/oauth2/userinfo", headers=bearer(bad))).status_code == 401, bad
        assert (await introspect(identity, agency, bad))["active"] is False
    # The genuine one still works.
    assert (await identity.get("/oauth2/userinfo", headers=bearer(access))).status_code == 200
    assert (await introspect(identity, agency, access))["active"] is True


async def test_client_token_has_no_userinfo(identity, agency) -> None:
    token = (await identity.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=agency)).json()
    response = await identity.get("/oauth2/userinfo", headers=bearer(token["access_token"]))
    assert response.status_code == 401 and "invalid_token" in response.headers["www-authenticate"]


# -- scopes and grant types ---------------------------------------------------------------------------


async def test_scope_not_allowed_for_the_client(identity, mobile, agency, person) -> None:
    _verifier, challenge = pkce()
    response = await identity.get(
        "/oauth2/authorize", params=auth_params(mobile, MOBILE_REDIRECT, scope="openid health", challenge=challenge)
    )
    query = query_of(response.headers["location"])
    assert query["error"] == "invalid_scope" and query["state"] == "st-1" and query["iss"]
    response = await identity.post(
        "/oauth2/token",
        auth=agency,
        data={"grant_type": "client_credentials", "scope": "health.schedules.write payments.write"},
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"
    response = await identity.post(
        "/oauth2/token", auth=agency, data={"grant_type": "client_credentials", "scope": "health.schedules.write"}
    )
    assert response.status_code == 200
    assert (
        jwt.decode(response.json()["access_token"], options={"verify_signature": False})["scope"]
        == "health.schedules.write"
    )


@pytest.mark.parametrize("response_type", ["token", "id_token", "code id_token", "code token", "id_token token"])
async def test_implicit_and_hybrid_are_refused(identity, mobile, response_type) -> None:
    _verifier, challenge = pkce()
    params = auth_params(mobile, MOBILE_REDIRECT, challenge=challenge)
    params["response_type"] = response_type
    response = await identity.get("/oauth2/authorize", params=params)
    assert response.status_code == 302
    location = response.headers["location"]
    assert "#" not in location and "access_token" not in location and "id_token=" not in location
    query = query_of(location)
    assert query["error"] == "unsupported_response_type" and query["state"] == "st-1" and query["iss"]


async def test_password_grant_is_refused(identity, agency, person) -> None:
    response = await identity.post(
        "/oauth2/token",
        auth=agency,
        data={"grant_type": "password", "username": "+84905123456", "password": "Mật-khẩu-rất-dài-2026"},
    )
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"


async def test_client_credentials_refused_to_clients_without_it(identity, portal) -> None:
    response = await identity.post("/oauth2/token", auth=portal, data={"grant_type": "client_credentials"})
    assert response.status_code == 400 and response.json()["error"] == "unauthorized_client"


async def test_prompt_none_without_session_is_login_required(identity, mobile) -> None:
    _verifier, challenge = pkce()
    response = await identity.get(
        "/oauth2/authorize", params=auth_params(mobile, MOBILE_REDIRECT, challenge=challenge, prompt="none")
    )
    query = query_of(response.headers["location"])
    assert query["error"] == "login_required" and query["state"] == "st-1" and query["iss"]


async def test_prompt_none_without_consent_is_consent_required(identity, mobile, person) -> None:
    await code_for(identity, mobile, MOBILE_REDIRECT)  # signed in, consented to openid profile
    _verifier, challenge = pkce()
    response = await identity.get(
        "/oauth2/authorize",
        params=auth_params(mobile, MOBILE_REDIRECT, scope="openid phone", challenge=challenge, prompt="none"),
    )
    assert query_of(response.headers["location"])["error"] == "consent_required"
    response = await identity.get(
        "/oauth2/authorize", params=auth_params(mobile, MOBILE_REDIRECT, challenge=challenge, prompt="none")
    )
    assert "code" in query_of(response.headers["location"])


async def test_prompt_login_and_max_age_ask_to_sign_in_again(identity, mobile, person) -> None:
    await code_for(identity, mobile, MOBILE_REDIRECT)
    _verifier, challenge = pkce()
    for extra in ({"prompt": "login"}, {"max_age": "0"}):
        await asyncio.sleep(1.1) if "max_age" in extra else None
        response = await identity.get(
            "/oauth2/authorize", params=auth_params(mobile, MOBILE_REDIRECT, challenge=challenge, **extra)
        )
        assert response.headers["location"].startswith("/oauth2/signin"), extra


async def test_token_endpoint_refuses_repeated_parameters_and_get(identity, agency) -> None:
    body = urlencode([("grant_type", "client_credentials"), ("grant_type", "client_credentials")])
    response = await identity.post(
        "/oauth2/token", content=body, auth=agency, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    response = await identity.get("/oauth2/token")
    assert response.status_code == 405


async def test_expired_refresh_token(identity, mobile, person) -> None:
    from services.identity.oauth.models import RefreshToken

    issued = await tokens_for(identity, mobile)
    db = Database(database_url("identity"))
    async with db.sessionmaker() as session, session.begin():
        await session.execute(update(RefreshToken).values(expires_at=utcnow()))
    await db.dispose()
    response = await refresh(identity, mobile, issued["refresh_token"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
