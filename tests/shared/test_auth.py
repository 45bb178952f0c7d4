"""Token verification as every service does it, against identity's JWKS over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Annotated

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import APIRouter

from dncity.cli import service_settings
from services.parking.db import Base
from shared.app import ServiceParts, create_service_app
from shared.auth import Principal, RequireClient, RequireScopes, RequireUser
from shared.settings import PlatformSettings
from tests.helpers.asgi import running
from tests.helpers.tokens import TokenFactory

router = APIRouter(prefix="/v1/parking/authtest")


@router.get("/mine")
async def mine(p: Annotated[Principal, RequireUser("parking")]) -> dict[str, object]:
    return {"sub": p.sub, "level": p.level}


@router.get("/level2")
async def level2(p: Annotated[Principal, RequireUser("parking", min_level=2)]) -> dict[str, object]:
    return {"sub": p.sub}


@router.get("/agency")
async def agency(p: Annotated[Principal, RequireClient("parking.lots.write")]) -> dict[str, object]:
    return {"client": p.client_id}


@router.get("/any")
async def any_scope(p: Annotated[Principal, RequireScopes("parking", "health", any_of=True)]) -> dict[str, str]:
    return {"client": p.client_id}


def app():
    return create_service_app(
        "parking",
        settings=service_settings("parking"),
        metadata=Base.metadata,
        parts=ServiceParts(routers=[router]),
        title="t",
        platform=PlatformSettings(),
    )


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_valid_user_and_client_tokens(tokens: TokenFactory) -> None:
    async with running(app()) as client:
        ok = await client.get("/v1/parking/authtest/mine", headers=tokens.bearer(tokens.user("u1", ["parking"])))
        assert ok.status_code == 200 and ok.json() == {"sub": "u1", "level": 1}
        agency = tokens.client("demo-parking-operator", ["parking.lots.write"])
        assert (await client.get("/v1/parking/authtest/agency", headers=tokens.bearer(agency))).status_code == 200
        # A person's token cannot act as the agency, nor the agency as a person.
        assert (await client.get("/v1/parking/authtest/mine", headers=tokens.bearer(agency))).status_code == 403
        user_token = tokens.user("u1", ["parking.lots.write", "parking"])
        denied = await client.get("/v1/parking/authtest/agency", headers=tokens.bearer(user_token))
        assert denied.status_code == 403 and denied.json()["code"] == "client_token_required"
        any_ok = await client.get("/v1/parking/authtest/any", headers=tokens.bearer(tokens.user("u", ["health"])))
        assert any_ok.status_code == 200


async def test_scope_and_level_rules(tokens: TokenFactory) -> None:
    async with running(app()) as client:
        wrong = await client.get("/v1/parking/authtest/mine", headers=tokens.bearer(tokens.user("u1", ["health"])))
        assert wrong.status_code == 403
        assert wrong.json()["code"] == "insufficient_scope" and wrong.json()["required_scopes"] == ["parking"]
        assert 'error="insufficient_scope"' in wrong.headers["www-authenticate"]
        low = await client.get("/v1/parking/authtest/level2", headers=tokens.bearer(tokens.user("u", ["parking"])))
        assert low.status_code == 403 and low.json()["code"] == "insufficient_assurance"
        high = tokens.user("u", ["parking"], level=2)
        assert (await client.get("/v1/parking/authtest/level2", headers=tokens.bearer(high))).status_code == 200


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "not_bearer",
        "garbage",
        "expired",
        "future_nbf",
        "wrong_aud",
        "wrong_iss",
        "alg_none",
        "hs256_with_public_key",
        "unknown_kid",
        "foreign_key",
        "id_token_typ",
        "tampered",
    ],
)
async def test_bad_tokens_are_401_invalid_token(tokens: TokenFactory, case: str) -> None:
    now = int(time.time())
    good = tokens.user("u1", ["parking"])
    header = jwt.get_unverified_header(good)
    claims = jwt.decode(good, options={"verify_signature": False})
    active = tokens.keyring.active("ES256")
    sign = lambda c, **h: jwt.encode(c, active.private_key, algorithm="ES256", headers={**header, **h})  # noqa: E731
    headers: dict[str, str] = {}
    if case == "missing":
        pass
    elif case == "not_bearer":
        headers = {"Authorization": f"Basic {good}"}
    elif case == "garbage":
        headers = tokens.bearer("not.a.jwt")
    elif case == "expired":
        headers = tokens.bearer(sign({**claims, "exp": now - 120, "iat": now - 700}))
    elif case == "future_nbf":
        headers = tokens.bearer(sign({**claims, "nbf": now + 300}))
    elif case == "wrong_aud":
        headers = tokens.bearer(sign({**claims, "aud": "someone-else"}))
    elif case == "wrong_iss":
        headers = tokens.bearer(sign({**claims, "iss": "https://evil.example"}))
    elif case == "alg_none":
        headers = tokens.bearer(f"{b64({'alg': 'none', 'typ': 'at+jwt', 'kid': header['kid']})}.{b64(claims)}.")
    elif case == "hs256_with_public_key":
        # The classic confusion attack: HMAC keyed with the verifier's public key.
        public_pem = active.private_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        forged = f"{b64({**header, 'alg': 'HS256'})}.{b64(claims)}"
        sig = base64.urlsafe_b64encode(hmac.new(public_pem, forged.encode(), hashlib.sha256).digest()).rstrip(b"=")
        headers = tokens.bearer(f"{forged}.{sig.decode()}")
    elif case == "unknown_kid":
        headers = tokens.bearer(sign(claims, kid="no-such-key"))
    elif case == "foreign_key":
        other = ec.generate_private_key(ec.SECP256R1())
        headers = tokens.bearer(jwt.encode(claims, other, algorithm="ES256", headers=header))
    elif case == "id_token_typ":
        headers = tokens.bearer(sign(claims, typ="JWT"))
    elif case == "tampered":
        head, _body, sig = good.split(".")
        headers = tokens.bearer(f"{head}.{b64({**claims, 'sub': 'someone-else'})}.{sig}")
    async with running(app()) as client:
        response = await client.get("/v1/parking/authtest/mine", headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    if case not in ("missing", "not_bearer"):
        assert response.json()["code"] == "invalid_token"


async def test_jwks_cache_backs_off_while_identity_is_unreachable() -> None:
    from shared.auth import JWKSCache
    from shared.errors import ServiceUnavailable

    calls = 0

    async def failing_fetch() -> dict:
        nonlocal calls
        calls += 1
        raise ConnectionError("identity down")

    cache = JWKSCache(failing_fetch, ttl_s=300, min_refetch_interval_s=60)
    for _ in range(20):
        with pytest.raises(ServiceUnavailable):
            await cache.get("some-kid")
    assert calls == 1


async def test_jwks_cache_refetches_an_unknown_kid_at_most_once_per_interval() -> None:
    from shared.auth import JWKSCache

    calls = 0
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "kid": "k1",
        "use": "sig",
        "alg": "ES256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    }

    async def fetch() -> dict:
        nonlocal calls
        calls += 1
        return {"keys": [jwk]}

    cache = JWKSCache(fetch, ttl_s=300, min_refetch_interval_s=60)
    assert (await cache.get("k1")) is not None
    for _ in range(10):
        assert await cache.get("unknown") is None
    assert calls == 1


async def test_services_remember_a_verified_token_until_it_expires(tokens: TokenFactory) -> None:
    """The cache in front of the verifier: one signature check per token and window, never past exp,
    failures never remembered, bounded in size."""
    import asyncio

    import httpx

    from shared.auth import CachingVerifier, JWKSCache, TokenVerifier
    from shared.errors import Unauthorized

    platform = PlatformSettings()

    async def fetch() -> dict:
        async with httpx.AsyncClient() as http:
            return (await http.get(platform.service_url("identity") + "/oauth2/jwks")).json()

    class Counting(TokenVerifier):
        calls = 0

        async def verify(self, token: str) -> Principal:
            Counting.calls += 1
            return await super().verify(token)

    inner = Counting(issuer=platform.issuer, audience=platform.api_audience, jwks=JWKSCache(fetch))
    cache = CachingVerifier(inner, ttl_s=0.5, max_size=10)
    token = tokens.user("citizen-1", ["openid", "parking"])
    first, second = await cache.verify(token), await cache.verify(token)
    assert first == second and first.sub == "citizen-1" and Counting.calls == 1
    await asyncio.sleep(0.6)  # past ttl_s: checked again
    assert (await cache.verify(token)).sub == "citizen-1" and Counting.calls == 2

    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await cache.verify(forged)
    assert Counting.calls == 4  # a failure is re-examined every time

    tokens.ttl_s = 1
    short = tokens.user("citizen-2", ["openid"])
    await cache.verify(short)
    entry = cache._cache[short]
    assert entry[1] <= entry[0].expires_at  # remembered no longer than the token lives

    for n in range(25):
        await cache.verify(tokens.user(f"citizen-{n + 10}", ["openid"]))
    assert len(cache._cache) <= 10
