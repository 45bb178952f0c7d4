"""Authorization code + PKCE: the happy path, ID token, userinfo, refresh rotation."""

from __future__ import annotations

import jwt

from services.identity.oauth.server import sha256  # noqa: F401
from tests.oauth.conftest import MOBILE_REDIRECT
from tests.oauth.flow import auth_params, authorize, code_for, pkce, query_of


async def exchange(identity, client_id: str, code: str, verifier: str, redirect_uri: str = MOBILE_REDIRECT):
    return await identity.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )


async def test_code_pkce_flow_issues_tokens_and_id_token(identity, mobile, person) -> None:
    verifier, challenge = pkce()
    params = auth_params(mobile, MOBILE_REDIRECT, scope="openid profile phone offline_access", challenge=challenge)
    location = await authorize(identity, params)
    assert location.startswith(MOBILE_REDIRECT + "?")
    query = query_of(location)
    assert query["state"] == "st-1" and query["iss"] == "http://127.0.0.1:8000" and len(query["code"]) >= 22
    response = await exchange(identity, mobile, query["code"], verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["refresh_token"] and body["id_token"]
    access = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert access["sub"] == person and access["client_id"] == mobile and access["acr"] == "urn:dncity:loa:1"
    assert "auth_time" in access
    id_header = jwt.get_unverified_header(body["id_token"])
    assert id_header["alg"] == "RS256" and id_header["kid"]
    id_claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert id_claims["nonce"] == params["nonce"] and id_claims["aud"] == [mobile] and id_claims["sub"] == person
    assert id_claims["at_hash"] and id_claims["acr"] == "urn:dncity:loa:1" and id_claims["auth_time"]
    assert id_claims["phone_number"] == "+84905123456" and id_claims["name"] == "Nguyễn Văn An"
    info = await identity.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == person and info.json()["phone_number"] == "+84905123456"
    assert "citizen_id" not in info.json()  # dncity.identity not requested
    # POST with the token in the form body.
    info = await identity.post("/oauth2/userinfo", data={"access_token": body["access_token"]})
    assert info.status_code == 200 and info.json()["sub"] == person


async def test_consent_is_remembered_and_session_reused(identity, mobile, person) -> None:
    await code_for(identity, mobile, MOBILE_REDIRECT)
    # Same browser, same scopes: neither sign-in nor consent is shown again.
    _verifier, challenge = pkce()
    response = await identity.get("/oauth2/authorize", params=auth_params(mobile, MOBILE_REDIRECT, challenge=challenge))
    assert response.status_code == 302 and response.headers["location"].startswith(MOBILE_REDIRECT)
    # A new scope: consent asked again.
    response = await identity.get(
        "/oauth2/authorize",
        params=auth_params(mobile, MOBILE_REDIRECT, scope="openid profile parking", challenge=challenge),
    )
    assert response.headers["location"].startswith("/oauth2/consent")
