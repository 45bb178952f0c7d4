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


async def test_a_refresh_returns_a_new_id_token_for_the_same_authentication(identity, mobile, person) -> None:
    """OpenID Connect Core §12.2: same iss, sub, aud, azp, auth_time and acr; a new iat; no nonce."""
    import asyncio

    from authlib.oidc.core.util import create_half_hash

    verifier, challenge = pkce()
    params = auth_params(mobile, MOBILE_REDIRECT, scope="openid profile offline_access", challenge=challenge)
    query = query_of(await authorize(identity, params))
    first = (await exchange(identity, mobile, query["code"], verifier)).json()
    await asyncio.sleep(1.1)  # a later second, so the new iat shows
    refreshed = await identity.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "client_id": mobile, "refresh_token": first["refresh_token"]},
    )
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    jwks = jwt.PyJWKSet.from_dict((await identity.get("/oauth2/jwks")).json())
    kid = jwt.get_unverified_header(body["id_token"])["kid"]
    new = jwt.decode(
        body["id_token"], jwks[kid].key, algorithms=["RS256"], audience=mobile, issuer="http://127.0.0.1:8000"
    )
    old = jwt.decode(first["id_token"], options={"verify_signature": False})
    for claim in ("iss", "sub", "aud", "azp", "auth_time", "acr", "name"):
        assert new[claim] == old[claim], claim
    assert new["iat"] > old["iat"] and "nonce" in old and "nonce" not in new
    assert new["at_hash"] == create_half_hash(body["access_token"], "RS256").decode()
    # A refresh narrowed to scopes without openid is plain OAuth: no ID token.
    narrowed = await identity.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": mobile,
            "refresh_token": body["refresh_token"],
            "scope": "profile offline_access",
        },
    )
    assert narrowed.status_code == 200, narrowed.text
    assert "id_token" not in narrowed.json() and set(narrowed.json()["scope"].split()) == {"profile", "offline_access"}
