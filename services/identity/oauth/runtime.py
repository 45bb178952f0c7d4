"""The OAuth provider's per-process state (``app.state.oauth``): Authlib server, client cache and the
local access-token verifier, built at startup once the keyring is loaded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
import structlog
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from fastapi import FastAPI, Request
from joserfc import jws
from joserfc.errors import JoseError
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.keys import service as keys_service
from services.identity.oauth import repository
from services.identity.oauth.adapter import CoreRequest
from services.identity.oauth.claims import user_info
from services.identity.oauth.exchange import AccessTokenInfo, Exchange
from services.identity.oauth.server import Provider
from services.identity.settings import IdentitySettings
from shared.auth import JWKSCache, TokenVerifier
from shared.errors import ProblemError, ServiceUnavailable
from shared.settings import PlatformSettings

log = structlog.get_logger("identity.oauth")


@dataclass
class OAuthRuntime:
    provider: Provider
    clients: repository.ClientCache
    verifier: TokenVerifier
    settings: IdentitySettings
    issuer: str

    async def gather_clients(self, session: AsyncSession, ex: Exchange, core: CoreRequest) -> None:
        """Every client the request could name: Basic auth, client_id, or a client assertion's sub."""
        candidates: list[str] = []
        basic_id, _ = extract_basic_authorization(core.headers)
        if basic_id:
            candidates.append(basic_id)
        if core.payload.data.get("client_id"):
            candidates.append(core.payload.data["client_id"])
        assertion = core.form.get("client_assertion")
        if assertion:
            try:
                claims = json.loads(jws.extract_compact(assertion.encode()).payload)
                if isinstance(claims, dict) and isinstance(claims.get("sub"), str):
                    candidates.append(claims["sub"])
            except (JoseError, ValueError, TypeError):
                pass
        for client_id in candidates[:3]:
            if client_id not in ex.clients:
                ex.clients[client_id] = await self.clients.get(session, client_id)

    async def verify_access_token(self, session: AsyncSession, token: str) -> AccessTokenInfo | None:
        """A valid, unexpired RFC 9068 access token signed by us (ID tokens are refused by typ), with
        its revocation status; None for anything else."""
        try:
            await self.verifier.verify(token)
        except ServiceUnavailable:
            raise
        except ProblemError:
            return None
        # Verified just above; read the full claim set.
        claims = pyjwt.decode(token, options={"verify_signature": False})
        revoked = await repository.is_access_token_revoked(session, claims)
        return AccessTokenInfo(token, claims, revoked=revoked)

    async def gather_presented_token(self, session: AsyncSession, ex: Exchange, core: CoreRequest) -> None:
        token = core.form.get("token")
        if not token or len(token) > 8192:
            return
        if token.count(".") == 2:
            ex.access_tokens[token] = await self.verify_access_token(session, token)
        else:
            await repository.gather_refresh(session, ex, token)


def build_runtime(app: FastAPI) -> OAuthRuntime:
    settings: IdentitySettings = app.state.settings
    platform: PlatformSettings = app.state.platform

    keyring = app.state.keyring

    async def local_jwks() -> dict[str, Any]:
        # From the keyring's memory (reloaded with it): a second database session here could wait on
        # the request's own SQLite write lock.
        return dict(keyring.published())

    verifier = TokenVerifier(
        issuer=platform.issuer,
        audience=platform.api_audience,
        jwks=JWKSCache(local_jwks, ttl_s=5, min_refetch_interval_s=1),
        leeway_s=platform.token_leeway_s,
        algorithms=(keys_service.ACCESS_TOKEN_ALG,),
    )
    provider = Provider(
        keyring=app.state.keyring,
        issuer=platform.issuer,
        audience=platform.api_audience,
        access_token_ttl_s=settings.access_token_ttl_s,
        id_token_ttl_s=settings.id_token_ttl_s,
        refresh_token_ttl_s=settings.refresh_token_ttl_s,
        claims=user_info,
    )
    return OAuthRuntime(
        provider=provider,
        clients=repository.ClientCache(),
        verifier=verifier,
        settings=settings,
        issuer=platform.issuer,
    )


async def start_oauth(app: FastAPI) -> None:
    """Startup hook (after the keyring's): the provider, and hourly clean-up of spent codes and tokens."""
    app.state.oauth = build_runtime(app)

    async def housekeeping() -> None:
        while True:
            await asyncio.sleep(3600)
            try:
                async with app.state.db.sessionmaker() as session, session.begin():
                    await repository.purge_expired(session)
            except Exception:
                log.exception("oauth_purge_failed")

    app.state.oauth_housekeeping = asyncio.create_task(housekeeping())


async def stop_oauth(app: FastAPI) -> None:
    task = getattr(app.state, "oauth_housekeeping", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def runtime(request: Request) -> OAuthRuntime:
    return request.app.state.oauth  # type: ignore[no-any-return]


def redis_of(request: Request) -> Redis | None:
    return request.app.state.redis  # type: ignore[no-any-return]


def new_exchange() -> Exchange:
    return Exchange(now=time.time())
