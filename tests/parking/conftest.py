"""Parking test fixtures: the parking app with a real service token source, operators' lots built
through the operator API, and (for money flows) the real payments service and sandbox provider."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from dncity.cli import service_settings
from dncity.embedded_redis import free_port
from services.parking.app import create_app
from services.parking.settings import ParkingSettings
from shared.service_auth import ServiceTokenProvider
from shared.settings import PlatformSettings
from tests.helpers.asgi import running
from tests.helpers.payments import LivePayments
from tests.helpers.tokens import TokenFactory

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
OPERATOR = "demo-parking-operator"


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LOCAL)


def tomorrow_at(hour: int, minute: int = 0, days: int = 1) -> datetime:
    """A local time on a coming day, so windows are always in the future."""
    d = (datetime.now(UTC).astimezone(LOCAL) + timedelta(days=days)).date()
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=LOCAL)


def build_parking(tokens: TokenFactory, *, payments_url: str | None = None, **settings: Any) -> FastAPI:
    async def service_token() -> tuple[str, int]:
        return tokens.client("svc-parking", ["payments.write"]), 600

    base = service_settings("parking")
    assert isinstance(base, ParkingSettings)
    return create_app(
        base.model_copy(update={"expiry_sweep_interval_s": 0.2, **settings}),
        # No payments URL: an unused port, so nothing (least of all a developer's running platform) answers.
        PlatformSettings(payments_url=payments_url or f"http://127.0.0.1:{free_port()}"),
        payment_tokens=ServiceTokenProvider(service_token),
    )


class Operator:
    """Drives the operator API with an agency's client-credentials token."""

    def __init__(self, client: httpx.AsyncClient, tokens: TokenFactory, client_id: str = OPERATOR) -> None:
        self.client = client
        self.headers = tokens.bearer(tokens.client(client_id, ["parking.lots.write"]))

    async def lot(
        self,
        *,
        name: str = "Bãi xe Cầu Rồng",
        lat: float = 16.0613,
        lon: float = 108.2270,
        spaces: int = 0,
        accessible: int = 0,
        pools: dict[str, int] | None = None,
        rates: dict[str, dict[str, Any]] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/parking/operator/lots",
            headers=self.headers,
            json={"name": name, "address": "Đường Trần Hưng Đạo, Sơn Trà, Đà Nẵng", "lat": lat, "lon": lon, **extra},
        )
        assert response.status_code == 201, response.text
        lot = response.json()
        if spaces:
            body = {
                "spaces": [
                    {"label": f"A{i:03d}", "vehicle_type": "car", "accessible": i < accessible} for i in range(spaces)
                ]
            }
            r = await self.client.post(f"/v1/parking/operator/lots/{lot['id']}/spaces", headers=self.headers, json=body)
            assert r.status_code == 201, r.text
        for vehicle, capacity in (pools or {}).items():
            r = await self.client.post(
                f"/v1/parking/operator/lots/{lot['id']}/pools",
                headers=self.headers,
                json={"vehicle_type": vehicle, "capacity": capacity},
            )
            assert r.status_code == 201, r.text
        for vehicle, rate in (rates or {}).items():
            r = await self.client.put(
                f"/v1/parking/operator/lots/{lot['id']}/rates/{vehicle}", headers=self.headers, json=rate
            )
            assert r.status_code == 200, r.text
        r = await self.client.get(f"/v1/parking/operator/lots/{lot['id']}", headers=self.headers)
        return dict(r.json())


CAR_DAY_NIGHT = {"mode": "per_visit", "day_price_vnd": 30_000, "night_price_vnd": 50_000}
MOTORBIKE_DAY_NIGHT = {"mode": "per_visit", "day_price_vnd": 5_000, "night_price_vnd": 10_000}
FREE = {"mode": "per_visit", "day_price_vnd": 0, "night_price_vnd": 0}


@pytest.fixture
async def parking(tokens: TokenFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The parking app with no payments service behind it (lots, search, free parking)."""
    async with running(build_parking(tokens)) as client:
        yield client


@pytest.fixture
def operator(parking: httpx.AsyncClient, tokens: TokenFactory) -> Operator:
    return Operator(parking, tokens)


@pytest.fixture
def person(tokens: TokenFactory) -> Callable[[str], dict[str, str]]:
    def headers(sub: str) -> dict[str, str]:
        return tokens.bearer(tokens.user(sub, ["parking"]))

    return headers


Reserve = Callable[..., Awaitable[httpx.Response]]


def reserve_with(client: httpx.AsyncClient, tokens: TokenFactory) -> Reserve:
    counter = {"n": 0}

    async def reserve(
        sub: str,
        lot_id: str,
        start: datetime,
        end: datetime,
        *,
        vehicle_type: str = "car",
        plate: str = "43A-123.45",
        key: str | None = None,
        **extra: Any,
    ) -> httpx.Response:
        counter["n"] += 1
        headers = {
            **tokens.bearer(tokens.user(sub, ["parking"])),
            "Idempotency-Key": key or f"k-{sub}-{counter['n']}-{datetime.now(UTC).timestamp()}",
        }
        body = {
            "lot_id": lot_id,
            "vehicle_type": vehicle_type,
            "plate_number": plate,
            "start_at": start.isoformat(),
            "end_at": end.isoformat(),
            **extra,
        }
        return await client.post("/v1/parking/reservations", headers=headers, json=body)

    return reserve


@pytest.fixture
def reserve(parking: httpx.AsyncClient, tokens: TokenFactory) -> Reserve:
    return reserve_with(parking, tokens)


class Money:
    """The real payments service and sandbox provider on loopback ports, and parking wired to them."""

    def __init__(
        self, client: httpx.AsyncClient, tokens: TokenFactory, sandbox_url: str, payments_url: str, app: FastAPI
    ) -> None:
        self.client = client
        self.tokens = tokens
        self.sandbox_url = sandbox_url
        self.payments_url = payments_url
        self.app = app
        self.operator = Operator(client, tokens)
        self.reserve = reserve_with(client, tokens)
        self.writer = tokens.bearer(tokens.client("svc-parking", ["payments.write"]))

    def person(self, sub: str) -> dict[str, str]:
        return self.tokens.bearer(self.tokens.user(sub, ["parking"]))

    async def decide(self, payment: dict[str, Any], decision: str = "approve") -> None:
        """What the payer does on the sandbox wallet page."""
        await LivePayments.decide(payment["next_action"]["url"], decision)

    async def payment(self, payment_id: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.payments_url) as http:
            return dict((await http.get(f"/v1/payments/{payment_id}", headers=self.writer)).json())

    async def reservation(self, sub: str, reservation_id: str) -> dict[str, Any]:
        r = await self.client.get(f"/v1/parking/reservations/{reservation_id}", headers=self.person(sub))
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def wait(
        self, sub: str, reservation_id: str, check: Callable[[dict[str, Any]], bool], timeout: float = 20.0
    ) -> dict[str, Any]:
        import asyncio
        import time

        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = await self.reservation(sub, reservation_id)
            if check(body):
                return body
            await asyncio.sleep(0.1)
        raise AssertionError(f"reservation never reached the expected state: {body}")


@pytest.fixture
async def money_factory(tokens: TokenFactory) -> AsyncIterator[Callable[..., Awaitable[Money]]]:
    stacks: list[LivePayments] = []
    contexts: list[Any] = []

    async def start(**parking_settings: Any) -> Money:
        live = LivePayments.start()
        stacks.append(live)
        app = build_parking(tokens, payments_url=live.payments_url, **parking_settings)
        context = running(app)
        client = await context.__aenter__()
        contexts.append(context)
        return Money(client, tokens, live.sandbox_url, live.payments_url, app)

    yield start
    for context in reversed(contexts):
        await context.__aexit__(None, None, None)
    for live in reversed(stacks):
        live.stop()


@pytest.fixture
async def money(money_factory: Callable[..., Awaitable[Money]]) -> Money:
    return await money_factory()
