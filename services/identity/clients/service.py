from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.clients.models import OAuthClient
from services.identity.clients.schemas import ClientCreate, ClientCreated
from shared.db import utcnow
from shared.errors import Conflict, NotFound


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(client: OAuthClient, presented: str) -> bool:
    if not client.secret_sha256:
        return False
    return hmac.compare_digest(client.secret_sha256, hash_secret(presented))


async def create_client(session: AsyncSession, data: ClientCreate, *, secret: str | None = None) -> ClientCreated:
    client_id = data.client_id or "dnc_" + secrets.token_urlsafe(12)
    if await session.get(OAuthClient, client_id) is not None:
        raise Conflict(f"client {client_id} already exists", code="client_exists")
    if data.client_type == "confidential" and data.token_endpoint_auth_method != "private_key_jwt":  # noqa: S105
        secret = secret or secrets.token_urlsafe(32)
    else:
        secret = None
    assert data.token_endpoint_auth_method
    session.add(
        OAuthClient(
            client_id=client_id,
            secret_sha256=hash_secret(secret) if secret else None,
            name=data.name,
            client_type=data.client_type,
            grant_types=list(data.grant_types),
            redirect_uris=list(data.redirect_uris),
            scopes=list(data.scopes),
            token_endpoint_auth_method=data.token_endpoint_auth_method,
            logo_uri=data.logo_uri,
            jwks=data.jwks,
        )
    )
    await session.flush()
    return ClientCreated(
        client_id=client_id,
        client_secret=secret,
        name=data.name,
        client_type=data.client_type,
        grant_types=list(data.grant_types),
        redirect_uris=list(data.redirect_uris),
        scopes=list(data.scopes),
        token_endpoint_auth_method=data.token_endpoint_auth_method,
        logo_uri=data.logo_uri,
    )


async def list_clients(session: AsyncSession, *, limit: int, after: str | None) -> list[OAuthClient]:
    query = select(OAuthClient).order_by(OAuthClient.client_id).limit(limit)
    if after:
        query = query.where(OAuthClient.client_id > after)
    return list((await session.execute(query)).scalars())


async def get_client(session: AsyncSession, client_id: str) -> OAuthClient:
    row = await session.get(OAuthClient, client_id)
    if row is None:
        raise NotFound(f"No client {client_id}", code="client_not_found")
    return row


async def disable_client(session: AsyncSession, client_id: str) -> None:
    row = await get_client(session, client_id)
    if row.disabled_at is None:
        row.disabled_at = utcnow()
    await session.flush()
