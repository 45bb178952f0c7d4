"""Discovery metadata, JWKS, introspection, revocation, private_key_jwt, consents and the admin API."""

from __future__ import annotations

import time
import uuid

import jwt
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oauth2.rfc9207 import AuthorizationServerMetadata as IssMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from tests.oauth.conftest import MOBILE_REDIRECT, register
from tests.oauth.flow import code_for
from tests.oauth.test_code_flow import exchange
from tests.oauth.test_negative import bearer, introspect, refresh, tokens_for


async def test_discovery_documents_are_valid_and_exact(identity) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"):
        response = await identity.get(path)
        assert response.status_code == 200
        doc = response.json()
        OpenIDProviderMetadata(doc).validate()
        AuthorizationServerMetadata(doc).validate(metadata_classes=[IssMetadata])
        assert doc["issuer"] == "http://127.0.0.1:8000"
        assert doc["code_challenge_methods_supported"] == ["S256"]
        assert doc["authorization_response_iss_parameter_supported"] is True
        assert doc["response_types_supported"] == ["code"]
        assert set(doc["grant_types_supported"]) == {"authorization_code", "refresh_token", "client_credentials"}
        assert "private_key_jwt" in doc["token_endpoint_auth_methods_supported"]
        assert doc["id_token_signing_alg_values_supported"] == ["RS256"]


async def test_jwks_names_every_signing_key(identity, agency, mobile, person) -> None:
    keys = {k["kid"]: k for k in (await identity.get("/oauth2/jwks")).json()["keys"]}
    assert all("d" not in k for k in keys.values())
    tokens = await tokens_for(identity, mobile)
    for token in (tokens["access_token"], tokens["id_token"]):
        header = jwt.get_unverified_header(token)
        assert header["kid"] in keys and keys[header["kid"]]["alg"] == header["alg"]


async def test_introspection(identity, agency, mobile, person) -> None:
    tokens = await tokens_for(identity, mobile)
    body = await introspect(identity, agency, tokens["access_token"])
    assert body["active"] is True and body["sub"] == person and body["client_id"] == mobile
    assert body["scope"] and body["exp"] > time.time() and body["token_type"] == "Bearer"
    # A refresh token: only its own client may introspect it.
    assert (await introspect(identity, agency, tokens["refresh_token"]))["active"] is False
    # Public clients may not introspect at all.
    response = await identity.post("/oauth2/introspect", data={"token": tokens["access_token"], "client_id": mobile})
    assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"
    # No client authentication: refused.
    response = await identity.post("/oauth2/introspect", data={"token": tokens["access_token"]})
    assert response.status_code == 401


async def test_revoking_an_access_token(identity, agency, mobile, person) -> None:
    tokens = await tokens_for(identity, mobile)
    response = await identity.post(
        "/oauth2/revoke", data={"token": tokens["access_token"], "client_id": mobile, "token_type_hint": "access_token"}
    )
    assert response.status_code == 200
    assert (await identity.get("/oauth2/userinfo", headers=bearer(tokens["access_token"]))).status_code == 401
    assert (await introspect(identity, agency, tokens["access_token"]))["active"] is False
    # The refresh token is still good.
    assert (await refresh(identity, mobile, tokens["refresh_token"])).status_code == 200


async def test_revoking_a_refresh_token_revokes_its_grant(identity, agency, mobile, person) -> None:
    tokens = await tokens_for(identity, mobile)
    response = await identity.post("/oauth2/revoke", data={"token": tokens["refresh_token"], "client_id": mobile})
    assert response.status_code == 200
    assert (await refresh(identity, mobile, tokens["refresh_token"])).json()["error"] == "invalid_grant"
    assert (await identity.get("/oauth2/userinfo", headers=bearer(tokens["access_token"]))).status_code == 401


async def test_revoking_unknown_or_other_clients_tokens(identity, agency, mobile, person) -> None:
    response = await identity.post("/oauth2/revoke", data={"token": "unknown", "client_id": mobile})
    assert response.status_code == 200  # RFC 7009 §2.2
    cc = (await identity.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=agency)).json()
    response = await identity.post("/oauth2/revoke", data={"token": cc["access_token"], "client_id": mobile})
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert (await introspect(identity, agency, cc["access_token"]))["active"] is True
    # The agency revokes its own client-credentials token.
    assert (await identity.post("/oauth2/revoke", data={"token": cc["access_token"]}, auth=agency)).status_code == 200
    assert (await introspect(identity, agency, cc["access_token"]))["active"] is False


def _assertion(key: ec.EllipticCurvePrivateKey, client_id: str, audience: str, **over: object) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
        **over,
    }
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k1"})


async def test_private_key_jwt(identity) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public = ECKey.import_key(key.public_key()).as_dict(private=False) | {"kid": "k1", "use": "sig", "alg": "ES256"}
    client_id, secret = await register(
        client_id="test-pkjwt",
        name="Agency with keys",
        client_type="confidential",
        grant_types=["client_credentials"],
        scopes=["tuition.invoices.write"],
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [public]},
    )
    assert secret is None
    token_url = "http://127.0.0.1:8000/oauth2/token"
    assertion = _assertion(key, client_id, token_url)
    form = {
        "grant_type": "client_credentials",
        "client_assertion": assertion,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    response = await identity.post("/oauth2/token", data=form)
    assert response.status_code == 200, response.text
    assert jwt.decode(response.json()["access_token"], options={"verify_signature": False})["sub"] == client_id
    # Replayed assertion, wrong audience, wrong key, expired: refused.
    assert (await identity.post("/oauth2/token", data=form)).json()["error"] == "invalid_client"
    other = ec.generate_private_key(ec.SECP256R1())
    for bad in (
        _assertion(key, client_id, "https://elsewhere.example/token"),
        _assertion(other, client_id, token_url),
        _assertion(key, client_id, token_url, exp=int(time.time()) - 120),
        _assertion(key, client_id, token_url, exp=int(time.time()) + 86400),
    ):
        response = await identity.post("/oauth2/token", data={**form, "client_assertion": bad})
        assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client", bad


async def test_consents_listed_and_withdrawn(identity, mobile, person, tokens) -> None:
    issued = await tokens_for(identity, mobile)
    me = bearer(tokens.user(person, ["openid"]))
    listed = (await identity.get("/v1/identity/me/consents", headers=me)).json()
    assert [c["client_id"] for c in listed["items"]] == [mobile]
    assert set(listed["items"][0]["scopes"]) == {"openid", "profile", "offline_access"}
    assert listed["items"][0]["client_name"] == "Test mobile app"
    assert (await identity.delete(f"/v1/identity/me/consents/{mobile}", headers=me)).status_code == 204
    assert (await identity.get("/v1/identity/me/consents", headers=me)).json()["items"] == []
    assert (await refresh(identity, mobile, issued["refresh_token"])).json()["error"] == "invalid_grant"
    assert (await identity.get("/oauth2/userinfo", headers=bearer(issued["access_token"]))).status_code == 401
    assert (await identity.delete(f"/v1/identity/me/consents/{mobile}", headers=me)).status_code == 404
    # The next authorization asks for consent again.
    from tests.oauth.flow import auth_params, pkce

    _v, challenge = pkce()
    response = await identity.get("/oauth2/authorize", params=auth_params(mobile, MOBILE_REDIRECT, challenge=challenge))
    assert response.headers["location"].startswith("/oauth2/consent")


async def test_identity_numbers_only_with_the_scope(identity, mobile, person) -> None:
    code, verifier = await code_for(identity, mobile, MOBILE_REDIRECT, scope="openid dncity.identity")
    body = (await exchange(identity, mobile, code, verifier)).json()
    info = (await identity.get("/oauth2/userinfo", headers=bearer(body["access_token"]))).json()
    assert info["citizen_id"] == "048090001234" and "phone_number" not in info


async def test_admin_api_registers_lists_and_disables_clients(identity, tokens) -> None:
    admin = bearer(tokens.client("platform-admin", ["clients.admin"]))
    body = {
        "name": "Bệnh viện C",
        "client_type": "confidential",
        "grant_types": ["client_credentials"],
        "scopes": ["health.schedules.write"],
        "client_id": "hospital-c",
        "logo_uri": "https://c.example/logo.png",
    }
    assert (await identity.post("/v1/identity/clients", json=body)).status_code == 401
    no_scope = bearer(tokens.client("someone", ["health.schedules.write"]))
    assert (await identity.post("/v1/identity/clients", json=body, headers=no_scope)).status_code == 403
    created = await identity.post("/v1/identity/clients", json=body, headers=admin)
    assert created.status_code == 201, created.text
    secret = created.json()["client_secret"]
    assert (await identity.post("/v1/identity/clients", json=body, headers=admin)).status_code == 409
    bad = await identity.post(
        "/v1/identity/clients", headers=admin, json={**body, "client_id": "x-2", "scopes": ["nonsense"]}
    )
    assert bad.status_code == 422 and "scopes" in bad.text
    bad = await identity.post(
        "/v1/identity/clients",
        headers=admin,
        json={
            **body,
            "client_id": "x-3",
            "grant_types": ["authorization_code"],
            "redirect_uris": ["http://evil.example/cb"],
        },
    )
    assert bad.status_code == 422
    listed = (await identity.get("/v1/identity/clients", headers=admin)).json()
    assert "hospital-c" in [c["client_id"] for c in listed["items"]]
    assert secret not in str(listed) and "secret_sha256" not in str(listed)
    ok = await identity.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=("hospital-c", secret))
    assert ok.status_code == 200
    assert (await identity.delete("/v1/identity/clients/hospital-c", headers=admin)).status_code == 204
    refused = await identity.post(
        "/oauth2/token", data={"grant_type": "client_credentials"}, auth=("hospital-c", secret)
    )
    assert refused.status_code == 401
    assert (await identity.get("/v1/identity/clients/nope", headers=admin)).status_code == 404


async def test_export_lists_consents_and_erasure_revokes_tokens(identity, mobile, person, tokens) -> None:
    issued = await tokens_for(identity, mobile)
    me = bearer(tokens.user(person, ["openid"]))
    export = await identity.get("/v1/identity/me/export", headers=me)
    assert export.status_code == 200, export.text
    assert [c["client_id"] for c in export.json()["consents"]] == [mobile]
    assert export.json()["authorizations"][0]["client_id"] == mobile
    deleted = await identity.request(
        "DELETE", "/v1/identity/me", headers=me, json={"password": "Mật-khẩu-rất-dài-2026"}
    )
    assert deleted.status_code == 204, deleted.text
    assert (await refresh(identity, mobile, issued["refresh_token"])).status_code == 400
    assert (await identity.get("/oauth2/userinfo", headers=bearer(issued["access_token"]))).status_code == 401
