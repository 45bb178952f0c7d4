"""All SQL (and Redis) of the OAuth provider: gathering an Exchange's data and applying its intents."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidGrantError, OAuth2Error
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.clients.models import OAuthClient
from services.identity.oauth.claims import load_active_account
from services.identity.oauth.exchange import Exchange, RefreshTokenInfo, UserContext
from services.identity.oauth.models import (
    AuthorizationCode,
    IssuedAccessToken,
    OAuthGrant,
    RefreshToken,
    RevokedToken,
)
from services.identity.oauth.server import CODE_TTL_S, ClientView, sha256
from shared.db import utcnow


class LazySession:
    """An AsyncSession proxy that opens the real session (and transaction) on first use; commits on a
    clean exit, rolls back on an exception — the request-is-the-transaction rule, without the cost when
    nothing touches the database."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self._session: AsyncSession | None = None

    @property
    def opened(self) -> bool:
        return self._session is not None

    def __getattr__(self, name: str) -> Any:
        if self._session is None:
            self._session = self._db.sessionmaker()
        return getattr(self._session, name)

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._session is None:
            return
        try:
            if exc_type is None:
                await self._session.commit()
            else:
                await self._session.rollback()
        finally:
            await self._session.close()


class ClientCache:
    """Registered clients, cached per process: every token request needs one and they rarely change.
    Changes made through this process invalidate at once; other processes see them within ``ttl_s``."""

    def __init__(self, ttl_s: float = 30.0) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, ClientView | None]] = {}

    def invalidate(self, client_id: str | None = None) -> None:
        if client_id is None:
            self._entries.clear()
        else:
            self._entries.pop(client_id, None)

    async def get(self, session: AsyncSession, client_id: str) -> ClientView | None:
        now = time.monotonic()
        hit = self._entries.get(client_id)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        row = await session.get(OAuthClient, client_id) if len(client_id) <= 64 else None
        view = ClientView.of(row) if row is not None and row.disabled_at is None else None
        self._entries[client_id] = (now, view)
        if len(self._entries) > 10_000:  # unknown ids must not grow the cache without bound
            self._entries.clear()
        return view


def to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


async def load_user(session: AsyncSession, sub: str) -> UserContext | None:
    """The account behind a grant, if it may still sign in (the accounts engineer's model)."""
    account = await load_active_account(session, sub)
    if account is None:
        return None
    return UserContext(sub=sub, acr="", auth_time=0, account=account)


async def gather_refresh(session: AsyncSession, ex: Exchange, token: str) -> None:
    digest = sha256(token)
    row = await session.get(RefreshToken, digest) if len(token) < 200 else None
    if row is None:
        ex.refresh_tokens[digest] = None
        return
    grant = await session.get(OAuthGrant, row.grant_id)
    assert grant is not None
    ex.refresh_tokens[digest] = RefreshTokenInfo(row, grant)
    if grant.sub not in ex.users:
        ex.users[grant.sub] = await load_user(session, grant.sub)


async def gather_code(session: AsyncSession, ex: Exchange, code: str) -> None:
    digest = sha256(code)
    row = await session.get(AuthorizationCode, digest) if len(code) < 200 else None
    ex.codes[digest] = row
    if row is not None and row.used_at is None and row.sub not in ex.users:
        ex.users[row.sub] = await load_user(session, row.sub)


async def is_access_token_revoked(session: AsyncSession, claims: dict[str, Any]) -> bool:
    jti = str(claims.get("jti", ""))
    if await session.get(RevokedToken, jti) is not None:
        return True
    issued = await session.get(IssuedAccessToken, jti)
    if issued is None:
        return False
    grant = await session.get(OAuthGrant, issued.grant_id)
    return grant is None or grant.revoked_at is not None


async def revoke_grant(session: AsyncSession, grant_id: str, reason: str) -> None:
    now = utcnow()
    await session.execute(
        update(OAuthGrant)
        .where(OAuthGrant.id == grant_id, OAuthGrant.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.grant_id == grant_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def revoke_grants_of(session: AsyncSession, *, sub: str, client_id: str | None = None, reason: str) -> int:
    query = select(OAuthGrant.id).where(OAuthGrant.sub == sub, OAuthGrant.revoked_at.is_(None))
    if client_id is not None:
        query = query.where(OAuthGrant.client_id == client_id)
    ids = list((await session.execute(query)).scalars())
    for grant_id in ids:
        await revoke_grant(session, grant_id, reason)
    return len(ids)


async def commit_exchange(
    session: AsyncSession, redis: Redis | None, ex: Exchange, refresh_ttl_s: int
) -> OAuth2Error | None:
    """Apply what the core decided. Returns an error when a guard lost a race: the prepared response
    must then not be sent (its tokens were never seen by anyone, and are recorded nowhere)."""
    now = utcnow()
    # A client assertion is single-use (RFC 7523 §3 jti).
    for client_id, jti, exp in ex.assertion_jtis:
        if redis is None:
            break
        ttl = max(1, exp - int(time.time()) + 60)
        if not await redis.set(f"dncity:oauth:assertion:{sha256(client_id + ':' + jti)}", b"1", nx=True, ex=ttl):
            return InvalidClientError(description="The client assertion was already used.")
    error: OAuth2Error | None = None
    if ex.revoke_code_family is not None:
        await _revoke_code_family(session, ex.revoke_code_family.code_sha256)
    if ex.redeem_code is not None:
        assert ex.grant_id is not None
        result = await session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.code_sha256 == ex.redeem_code.code_sha256, AuthorizationCode.used_at.is_(None))
            .values(used_at=now, grant_id=ex.grant_id)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            await _revoke_code_family(session, ex.redeem_code.code_sha256)
            error = InvalidGrantError("The authorization code was already used.")
    if error is None and ex.rotate_refresh is not None:
        result = await session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.token_sha256 == ex.rotate_refresh.token_sha256,
                RefreshToken.rotated_at.is_(None),
                RefreshToken.revoked_at.is_(None),
            )
            .values(rotated_at=now)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            # Someone else exchanged it first: this presentation is a reuse (RFC 9700 §4.14.2).
            ex.revoke_grant_ids[ex.rotate_refresh.grant_id] = "refresh_token_reuse"
            error = InvalidGrantError("The refresh token was already used.")
    for grant_id, reason in ex.revoke_grant_ids.items():
        await revoke_grant(session, grant_id, reason)
    for jti, exp in ex.revoke_jtis:
        if await session.get(RevokedToken, jti) is None:
            session.add(RevokedToken(jti=jti, expires_at=to_datetime(exp), revoked_at=now))
    if error is not None:
        return error
    if ex.new_grant is not None:
        session.add(OAuthGrant(**ex.new_grant, created_at=now))
        await session.flush()  # before the rows that reference it (no ORM relationship orders them)
    if ex.grant_id is not None:
        for raw in ex.new_refresh_tokens:
            session.add(
                RefreshToken(
                    token_sha256=sha256(raw),
                    grant_id=ex.grant_id,
                    client_id=ex.client_id or "",
                    created_at=now,
                    expires_at=now + timedelta(seconds=refresh_ttl_s),
                )
            )
        for claims in ex.minted:
            session.add(
                IssuedAccessToken(jti=claims["jti"], grant_id=ex.grant_id, expires_at=to_datetime(int(claims["exp"])))
            )
    if ex.new_code is not None:
        new = ex.new_code
        session.add(
            AuthorizationCode(
                code_sha256=sha256(new.code),
                client_id=new.client_id,
                sub=new.user.sub,
                redirect_uri=new.redirect_uri,
                scope=new.scope,
                nonce=new.nonce,
                code_challenge=new.code_challenge,
                code_challenge_method=new.code_challenge_method,
                auth_time=new.user.auth_time,
                acr=new.user.acr,
                amr=new.user.amr,
                created_at=now,
                expires_at=now + timedelta(seconds=CODE_TTL_S),
            )
        )
    if getattr(session, "opened", True):
        await session.flush()
    return None


async def _revoke_code_family(session: AsyncSession, code_sha256: str) -> None:
    row = await session.get(AuthorizationCode, code_sha256, populate_existing=True)
    if row is not None and row.grant_id:
        await revoke_grant(session, row.grant_id, "code_reuse")
    else:
        # Not redeemed yet as far as this transaction sees: revoke whatever grant the code produced.
        ids = (await session.execute(select(OAuthGrant.id).where(OAuthGrant.code_sha256 == code_sha256))).scalars()
        for grant_id in list(ids):
            await revoke_grant(session, grant_id, "code_reuse")


async def purge_expired(session: AsyncSession) -> None:
    """Housekeeping: forget codes, revoked jtis and issued-token rows nobody can use any more."""
    from sqlalchemy import delete

    now = utcnow()
    await session.execute(delete(AuthorizationCode).where(AuthorizationCode.expires_at < now - timedelta(days=1)))
    await session.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))
    await session.execute(delete(IssuedAccessToken).where(IssuedAccessToken.expires_at < now))
