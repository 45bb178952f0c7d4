"""A payments service and the sandbox provider, each on a real loopback port, wired to each other."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from dncity.embedded_redis import free_port
from services.payments.app import build_context, create_app
from services.payments.db import Base
from services.payments.payments.service import PaymentsContext
from services.payments.sandbox.app import create_app as create_sandbox
from services.payments.sandbox.settings import SandboxSettings
from services.payments.settings import PaymentsSettings
from shared.db import Database
from shared.events import Outbox, event_tables
from shared.settings import PlatformSettings
from tests.helpers.live import LiveServer
from tests.helpers.tokens import TokenFactory


@dataclass
class Stack:
    payments_url: str
    sandbox_url: str
    http: httpx.AsyncClient
    sandbox: httpx.AsyncClient
    settings: PaymentsSettings
    ctx: PaymentsContext  # a context in the test's own event loop (for calling the reconciler)
    db: Database
    writer: dict[str, str]  # headers of the service that asks for payments

    async def create(
        self, amount: int = 50_000, key: str | None = None, headers: dict[str, str] | None = None, **overrides: Any
    ) -> httpx.Response:
        body = {
            "amount_vnd": amount,
            "purpose": "parking",
            "reference": "res-1",
            "payer_sub": "citizen-1",
            "description": "Phí gửi xe",
            **overrides,
        }
        return await self.http.post(
            "/v1/payments",
            json=body,
            headers={**(headers or self.writer), "Idempotency-Key": key or f"k-{time.monotonic_ns()}"},
        )

    async def approve(self, payment: dict[str, Any], decision: str = "approve") -> httpx.Response:
        url = payment["next_action"]["url"]
        async with httpx.AsyncClient() as browser:
            return await browser.post(url, data={"decision": decision})

    async def events_of(self, payment_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The payment.* events written to the outbox for this payment, oldest first."""
        from sqlalchemy import select

        outbox = event_tables(Base.metadata).outbox
        async with self.db.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(outbox.c.type, outbox.c.data)
                    .where(outbox.c.subject == payment_id)
                    .order_by(outbox.c.created_at)
                )
            ).all()
        return [(t, d) for t, d in rows if t.startswith("payment.")]

    async def behave(self, **behaviour: Any) -> None:
        response = await self.sandbox.put("/v1/sandbox/behaviour", json=behaviour)
        assert response.status_code == 200, response.text

    async def wait_status(
        self, payment_id: str, *statuses: str, timeout: float = 15.0, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            response = await self.http.get(f"/v1/payments/{payment_id}", headers=headers or self.writer)
            body = response.json()
            if body.get("status") in statuses:
                return body
            await asyncio.sleep(0.1)
        raise AssertionError(f"payment {payment_id} stayed {body.get('status')}, expected {statuses}")


def start_probing_readyz(server: LiveServer, timeout: float = 20.0) -> LiveServer:
    """LiveServer.start waits for /healthz, which the gateway answers 503 while services it fronts (parking,
    tuition…) are not running in this test; its /readyz says whether it forwards."""
    server.thread.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.server.started:
            try:
                if httpx.get(server.url + "/readyz", timeout=1).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    raise RuntimeError(f"gateway on {server.url} did not start")


def payments_settings(sandbox_url: str, **overrides: Any) -> PaymentsSettings:
    values: dict[str, Any] = {
        "provider_url": sandbox_url,
        "reconciler_enabled": False,
        "provider_timeout_s": 2.0,
        "provider_retries": 1,
        "provider_backoff_s": 0.05,
    }
    return PaymentsSettings(**{**values, **overrides})


@pytest.fixture
async def stack_factory(tokens: TokenFactory) -> AsyncIterator[Callable[..., Any]]:
    servers: list[LiveServer] = []
    closers: list[Any] = []

    async def start(via_gateway: bool = False, **settings_overrides: Any) -> Stack:
        """With via_gateway, callers and the provider's webhooks reach payments through the gateway."""
        payments_port, sandbox_port, gateway_port = free_port(), free_port(), free_port()
        payments_url, sandbox_url = f"http://127.0.0.1:{payments_port}", f"http://127.0.0.1:{sandbox_port}"
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        entry = gateway_url if via_gateway else payments_url
        sandbox_settings = SandboxSettings(
            database=":memory:",
            public_url=sandbox_url,
            webhook_url=entry + "/v1/payments/webhooks/sandbox",
            webhook_backoff_base_s=0.2,
            sweep_interval_s=0.05,
        )
        platform = PlatformSettings(payments_url=payments_url, sandbox_provider_url=sandbox_url)
        sandbox = LiveServer(create_sandbox(sandbox_settings, platform), port=sandbox_port).start()
        servers.append(sandbox)
        settings = payments_settings(sandbox_url, **settings_overrides)
        payments = LiveServer(create_app(settings, platform), port=payments_port).start()
        servers.append(payments)
        if via_gateway:
            from gateway.app import create_app as create_gateway

            servers.append(start_probing_readyz(LiveServer(create_gateway(platform=platform), port=gateway_port)))
        http = httpx.AsyncClient(base_url=entry, timeout=30)
        admin = httpx.AsyncClient(
            base_url=sandbox_url, timeout=30, headers={"Authorization": f"Bearer {sandbox_settings.api_key}"}
        )
        ctx = build_context(settings, platform, Outbox(event_tables(Base.metadata)))
        db = Database(settings.resolved_database_url(platform))
        closers.extend([http.aclose, admin.aclose, db.dispose, *[c.aclose for c in ctx.providers.values()]])
        writer = tokens.bearer(tokens.client("svc-parking", ["payments.write"]))
        return Stack(entry, sandbox_url, http, admin, settings, ctx, db, writer)

    yield start
    for close in closers:
        await close()
    for server in reversed(servers):
        server.stop()


@pytest.fixture
async def stack(stack_factory: Callable[..., Any]) -> Stack:
    return await stack_factory()  # type: ignore[no-any-return]
