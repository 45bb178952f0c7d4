from __future__ import annotations

import jwt


async def test_client_credentials_issues_rfc9068_token(identity, agency, tokens) -> None:
    client_id, secret = agency
    response = await identity.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0 and "refresh_token" not in body
    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256" and header["kid"]
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == claims["client_id"] == client_id
    assert claims["aud"] == "urn:dncity:api"
    assert set(claims["scope"].split()) == {"health.schedules.write", "health.records.write"}
    assert {"iss", "exp", "iat", "jti"} <= set(claims)
