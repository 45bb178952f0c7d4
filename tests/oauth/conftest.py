"""Fixtures for the OpenID provider's tests: a running identity app and registered clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from dncity.cli import database_url
from services.identity.clients.schemas import ClientCreate
from services.identity.clients.service import create_client
from shared.db import Database
from tests.helpers.asgi import running

MOBILE_REDIRECT = "vn.gov.danang.superapp:/oauth2redirect"
PORTAL_REDIRECT = "https://portal.example.vn/callback"


async def register(**fields: Any) -> tuple[str, str | None]:
    """Register a client directly in identity's database; returns (client_id, client_secret)."""
    db = Database(database_url("identity"))
    try:
        async with db.sessionmaker() as session, session.begin():
            created = await create_client(session, ClientCreate(**fields))
    finally:
        await db.dispose()
    return created.client_id, created.client_secret


@pytest.fixture
async def identity(service_app: Callable[..., FastAPI]) -> AsyncIterator[httpx.AsyncClient]:
    async with running(service_app("identity")) as client:
        yield client


@pytest.fixture
async def agency() -> tuple[str, str]:
    client_id, secret = await register(
        client_id="test-hospital",
        name="Test hospital",
        client_type="confidential",
        grant_types=["client_credentials"],
        scopes=["health.schedules.write", "health.records.write"],
    )
    assert secret
    return client_id, secret


@pytest.fixture
async def mobile() -> str:
    client_id, _ = await register(
        client_id="test-mobile",
        name="Test mobile app",
        client_type="public",
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=[MOBILE_REDIRECT, "http://127.0.0.1/callback"],
        scopes=["openid", "profile", "phone", "offline_access", "parking", "dncity.identity"],
    )
    return client_id


@pytest.fixture
async def portal() -> tuple[str, str]:
    client_id, secret = await register(
        client_id="test-portal",
        name="Cổng dịch vụ thử nghiệm",
        client_type="confidential",
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=[PORTAL_REDIRECT],
        scopes=["openid", "profile", "phone"],
    )
    assert secret
    return client_id, secret


async def make_person(
    phone: str = "+84905123456",
    password: str = "Mật-khẩu-rất-dài-2026",
    *,
    citizen_id: str | None = "048090001234",
    level: int = 1,
    **fields: Any,
) -> str:
    """An active account that can sign in (the accounts engineer's model, stored directly)."""
    from services.identity.accounts.models import Account
    from services.identity.accounts.passwords import hash_password

    db = Database(database_url("identity"))
    try:
        async with db.sessionmaker() as session, session.begin():
            account = Account(
                kind="citizen",
                status="active",
                level=level,
                full_name="Nguyễn Văn An",
                phone_e164=phone,
                phone_verified=True,
                citizen_id=citizen_id,
                password_hash=await hash_password(password),
                preferred_language="vi",
                **fields,
            )
            session.add(account)
            await session.flush()
            return account.id
    finally:
        await db.dispose()


@pytest.fixture
async def person() -> str:
    return await make_person()


@pytest.fixture
def via_gateway(service_app: Callable[..., FastAPI]):  # type: ignore[no-untyped-def]
    """Identity behind a real gateway on real ports; yields the issuer (the gateway's URL)."""
    from dncity.embedded_redis import free_port
    from gateway.app import create_app as gateway_app
    from gateway.settings import GatewaySettings
    from shared.settings import SERVICE_NAMES, PlatformSettings
    from tests.helpers.live import LiveServer

    gateway_port = free_port()
    issuer = f"http://127.0.0.1:{gateway_port}"
    identity = LiveServer(service_app("identity", public_base_url=issuer)).start()
    platform = PlatformSettings(public_base_url=issuer, **{f"{s}_url": identity.url for s in SERVICE_NAMES})
    gateway = LiveServer(gateway_app(GatewaySettings(), platform), port=gateway_port).start()
    yield issuer
    gateway.stop()
    identity.stop()
