"""Fixtures for the health_booking tests: the app with its real database, tokens and demo directory data."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from dncity.cli import service_settings
from dncity.embedded_redis import free_port
from services.health_booking.app import create_app
from services.health_booking.common import LOCAL_TZ, local_date
from shared.db import utcnow
from shared.service_auth import ServiceTokenProvider
from shared.settings import PlatformSettings
from tests.helpers.asgi import running
from tests.helpers.payments import LivePayments
from tests.helpers.tokens import TokenFactory

HOSPITAL = "demo-hospital"
OTHER_HOSPITAL = "other-hospital"
AGENCY_SCOPES = ["health.schedules.write", "health.records.write"]


def build_app(tokens: TokenFactory, **platform: Any) -> FastAPI:
    async def source() -> tuple[str, int]:
        return tokens.client("svc-health_booking", ["payments.write"]), 600

    # Without a payments service under test, payments calls go to a closed port (never the lead's 8102).
    platform.setdefault("payments_url", f"http://127.0.0.1:{free_port()}")

    return create_app(
        service_settings("health_booking"),
        PlatformSettings(**platform),  # type: ignore[arg-type]
        service_tokens=ServiceTokenProvider(source),
        background=False,
    )


@dataclass
class Health:
    """A running health_booking app with helpers to act as facilities and patients."""

    app: FastAPI
    client: httpx.AsyncClient
    tokens: TokenFactory
    _users: dict[str, str] = field(default_factory=dict)

    def agency(self, client_id: str = HOSPITAL, scopes: list[str] | None = None) -> dict[str, str]:
        return self.tokens.bearer(self.tokens.client(client_id, scopes or AGENCY_SCOPES))

    def user(self, sub: str, scopes: tuple[str, ...] = ("openid", "health")) -> dict[str, str]:
        return self.tokens.bearer(self.tokens.user(sub, scopes))

    def set_now(self, moment: datetime) -> None:
        self.app.state.clock = lambda: moment

    def now(self) -> datetime:
        return self.app.state.clock()  # type: ignore[no-any-return]

    async def facility(self, client_id: str = HOSPITAL, **overrides: Any) -> dict[str, Any]:
        body = {
            "name": "Bệnh viện Đà Nẵng",
            "kind": "hospital",
            "address": "124 Hải Phòng, Hải Châu",
            "lat": 16.0678,
            "lon": 108.2131,
            "prepayment_required": False,
            "min_notice_minutes": 60,
            "max_days_ahead": 14,
            "max_per_patient_per_day": 2,
            "hours": [{"weekday": d, "open": "07:00", "close": "17:00"} for d in range(7)],
        }
        body.update(overrides)
        response = await self.client.post("/v1/health/agency/facilities", json=body, headers=self.agency(client_id))
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def practitioner(self, facility_id: str, client_id: str = HOSPITAL, **overrides: Any) -> dict[str, Any]:
        body = {
            "name": "BS. Nguyễn Văn An",
            "title": "BS.CKI",
            "specialties": ["pediatrics"],
            "languages": ["vi", "en"],
        }
        body.update(overrides)
        response = await self.client.post(
            f"/v1/health/agency/facilities/{facility_id}/practitioners", json=body, headers=self.agency(client_id)
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def schedule(self, facility_id: str, client_id: str = HOSPITAL, **overrides: Any) -> dict[str, Any]:
        body = {
            "specialty": "pediatrics",
            "weekdays": list(range(7)),
            "start_time": "08:00",
            "end_time": "11:00",
            "slot_minutes": 30,
            "capacity": 1,
            "fee_vnd": 150_000,
            "valid_from": local_date(self.now()).isoformat(),
        }
        body.update(overrides)
        response = await self.client.post(
            f"/v1/health/agency/facilities/{facility_id}/schedules", json=body, headers=self.agency(client_id)
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def slots(self, sub: str = "patient-1", **params: Any) -> list[dict[str, Any]]:
        params.setdefault("from", tomorrow_at(self.now(), 0).isoformat())
        response = await self.client.get("/v1/health/slots", params=params, headers=self.user(sub))
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    async def book(self, slot_id: str, sub: str = "patient-1", key: str | None = None, **extra: Any) -> httpx.Response:
        return await self.client.post(
            "/v1/health/appointments",
            json={"slot_id": slot_id, **extra},
            headers={**self.user(sub), "Idempotency-Key": key or f"book-{slot_id}-{sub}"},
        )

    async def setup_basic(self, **facility: Any) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        """A facility with one English-speaking paediatrician, consultations 08:00-11:00 every day."""
        fac = await self.facility(**facility)
        doc = await self.practitioner(fac["id"])
        await self.schedule(fac["id"], practitioner_id=doc["id"])
        return fac, doc, await self.slots(facility_id=fac["id"])


def tomorrow_at(now: datetime, hour: int, minute: int = 0, days: int = 1) -> datetime:
    day: date = local_date(now) + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=LOCAL_TZ)


@pytest.fixture
async def health(tokens: TokenFactory) -> AsyncIterator[Health]:
    app = build_app(tokens)
    async with running(app) as client:
        app.state.clock = utcnow
        yield Health(app, client, tokens)


@dataclass
class Money(Health):
    """health_booking wired to the real payments service and sandbox wallet on loopback ports."""

    payments_url: str = ""
    sandbox_url: str = ""

    async def pay(self, appointment: dict[str, Any], decision: str = "approve") -> None:
        """What the payer does on the sandbox wallet page."""
        await LivePayments.decide(appointment["payment"]["url"], decision)

    async def payment(self, payment_id: str) -> dict[str, Any]:
        writer = self.tokens.bearer(self.tokens.client("svc-health_booking", ["payments.write"]))
        async with httpx.AsyncClient(base_url=self.payments_url) as http:
            return dict((await http.get(f"/v1/payments/{payment_id}", headers=writer)).json())

    async def appointment(self, appointment_id: str, sub: str = "patient-1") -> dict[str, Any]:
        response = await self.client.get(f"/v1/health/appointments/{appointment_id}", headers=self.user(sub))
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def wait(
        self,
        appointment_id: str,
        check: Callable[[dict[str, Any]], bool],
        sub: str = "patient-1",
        timeout: float = 20.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = await self.appointment(appointment_id, sub)
            if check(body):
                return body
            await asyncio.sleep(0.1)
        raise AssertionError(f"appointment never reached the expected state: {body}")

    async def wait_payment(
        self, payment_id: str, check: Callable[[dict[str, Any]], bool], timeout: float = 20.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = await self.payment(payment_id)
            if check(body):
                return body
            await asyncio.sleep(0.1)
        raise AssertionError(f"payment never reached the expected state: {body}")


@pytest.fixture
async def money(tokens: TokenFactory) -> AsyncIterator[Money]:
    live = LivePayments.start()
    try:
        app = build_app(tokens, payments_url=live.payments_url)
        async with running(app) as client:
            app.state.clock = utcnow
            yield Money(app, client, tokens, payments_url=live.payments_url, sandbox_url=live.sandbox_url)
    finally:
        live.stop()
