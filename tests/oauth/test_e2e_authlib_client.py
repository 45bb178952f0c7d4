"""End to end through the gateway on real ports: Authlib's own OAuth client does code + PKCE,
userinfo, refresh and revocation against Da Nang ID, as an agency's app would."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import jwt
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client

from dncity.embedded_redis import free_port
from tests.oauth.conftest import register
from tests.oauth.flow import PASSWORD, consent, sign_in


async def test_authlib_client_code_pkce_userinfo_refresh_revoke(via_gateway, person) -> None:
    issuer = via_gateway
    if True:
        client_id, _ = await register(
            client_id="e2e-app",
            name="E2E native app",
            client_type="public",
            grant_types=["authorization_code", "refresh_token"],
            redirect_uris=["http://127.0.0.1/callback"],
            scopes=["openid", "profile", "phone", "offline_access"],
        )
        async with httpx.AsyncClient(base_url=issuer, timeout=10) as plain:
            discovery = (await plain.get("/.well-known/openid-configuration")).json()
        assert discovery["issuer"] == issuer

        redirect_uri = f"http://127.0.0.1:{free_port()}/callback"  # a native app's loopback listener
        async with AsyncOAuth2Client(
            client_id=client_id,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            scope="openid profile phone offline_access",
            token_endpoint_auth_method="none",
            timeout=10,
        ) as client:
            verifier = generate_token(64)
            nonce = generate_token(16)
            url, state = client.create_authorization_url(
                discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce, ui_locales="en"
            )
            # The person's browser, through the gateway.
            async with httpx.AsyncClient(base_url=issuer, timeout=10) as browser:
                response = await browser.get(url)
                assert response.status_code == 302
                response = await sign_in(browser, response.headers["location"], password=PASSWORD)
                assert response.status_code == 303
                location = response.headers["location"]
                page = await browser.get(location)
                assert "Allow access" in page.text and "E2E native app" in page.text  # ui_locales=en
                response = await consent(browser, location)
                assert response.status_code == 303
                callback = response.headers["location"]
            assert callback.startswith(redirect_uri + "?")

            token = await client.fetch_token(
                discovery["token_endpoint"], authorization_response=callback, code_verifier=verifier, state=state
            )
            assert token["token_type"].lower() == "bearer" and token["refresh_token"] and token["id_token"]
            jwks = jwt.PyJWKSet.from_dict((await client.get(discovery["jwks_uri"])).json())
            id_header = jwt.get_unverified_header(token["id_token"])
            id_claims = jwt.decode(
                token["id_token"], jwks[id_header["kid"]].key, algorithms=["RS256"], audience=client_id, issuer=issuer
            )
            assert id_claims["nonce"] == nonce and id_claims["sub"] == person
            callback_query = dict(p.split("=", 1) for p in urlsplit(callback).query.split("&"))
            assert callback_query["iss"].replace("%3A", ":").replace("%2F", "/") == issuer

            info = await client.get(discovery["userinfo_endpoint"])
            assert info.status_code == 200 and info.json()["sub"] == person
            assert info.json()["phone_number"] == "+84905123456"

            first_refresh = token["refresh_token"]
            refreshed = await client.refresh_token(discovery["token_endpoint"])
            assert refreshed["refresh_token"] != first_refresh
            assert (await client.get(discovery["userinfo_endpoint"])).status_code == 200

            revoked = await client.revoke_token(
                discovery["revocation_endpoint"], token=refreshed["refresh_token"], token_type_hint="refresh_token"
            )
            assert revoked.status_code == 200
            after = await client.get(discovery["userinfo_endpoint"])
            assert after.status_code == 401
            async with httpx.AsyncClient(base_url=issuer, timeout=10) as plain:
                again = await plain.post(
                    "/oauth2/token",
                    data={
                        "grant_type": "refresh_token",
                        "client_id": client_id,
                        "refresh_token": refreshed["refresh_token"],
                    },
                )
            assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
