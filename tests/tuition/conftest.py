"""Tuition test fixtures: the tuition app with a real service-token source, a School and a Guardian
that drive the public API, and (for money flows) the real payments service and sandbox provider."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from dncity.cli import service_settings
from dncity.embedded_redis import free_port
from services.tuition.app import create_app
from services.tuition.settings import TuitionSettings
from shared.service_auth import ServiceTokenProvider
from shared.settings import PlatformSettings
from tests.helpers.asgi import running
from tests.helpers.payments import LivePayments
from tests.helpers.tokens import TokenFactory

SCHOOL = "demo-school"
OTHER_SCHOOL = "other-school"


def build_tuition(tokens: TokenFactory, *, payments_url: str | None = None, **settings: Any) -> FastAPI:
    async def service_token() -> tuple[str, int]:
        return tokens.client("svc-tuition", ["payments.write"]), 600

    base = service_settings("tuition")
    assert isinstance(base, TuitionSettings)
    return create_app(
        base.model_copy(update={"reminder_interval_s": 0, **settings}),
        # No payments URL: an unused port, so nothing (least of all a developer's running platform) answers.
        PlatformSettings(payments_url=payments_url or f"http://127.0.0.1:{free_port()}"),
        payment_tokens=ServiceTokenProvider(service_token),
    )


def student_row(code: str, **overrides: Any) -> dict[str, Any]:
    return {
        "student_code": code,
        "full_name": f"Học sinh {code}",
        "date_of_birth": "2014-05-01",
        "grade": "6",
        "class_name": "6A",
        **overrides,
    }


class School:
    """Drives the school API with an agency's client-credentials token."""

    def __init__(self, client: httpx.AsyncClient, tokens: TokenFactory, client_id: str = SCHOOL) -> None:
        self.client = client
        self.client_id = client_id
        self.headers = tokens.bearer(tokens.client(client_id, ["tuition.students.write", "tuition.invoices.write"]))

    async def import_students(self, rows: list[dict[str, Any]], mode: str = "all_or_nothing") -> httpx.Response:
        return await self.client.post(
            f"/v1/tuition/students/import?mode={mode}", json={"students": rows}, headers=self.headers
        )

    async def students(self, *rows: dict[str, Any]) -> list[dict[str, Any]]:
        response = await self.import_students(list(rows))
        assert response.status_code == 200, response.text
        return [{"id": r["id"], **row} for r, row in zip(response.json()["rows"], rows, strict=True)]

    async def link_code(self, student_id: str) -> str:
        response = await self.client.post(f"/v1/tuition/students/{student_id}/link-codes", headers=self.headers)
        assert response.status_code == 201, response.text
        return str(response.json()["code"])

    async def fee_item(
        self,
        code: str,
        amount: int,
        *,
        kind: str = "tuition",
        grade: str = "6",
        term: str = "2025-2026/HK1",
        name: str | None = None,
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/tuition/fee-items",
            headers=self.headers,
            json={"code": code, "name": name or code, "kind": kind, "grade": grade, "term": term, "amount_vnd": amount},
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def round(
        self, code: str = "2025-09", *, due_dates: list[date] | None = None, term: str = "2025-2026/HK1"
    ) -> dict[str, Any]:
        dates = due_dates or [date.today() + timedelta(days=30)]
        response = await self.client.post(
            "/v1/tuition/rounds",
            headers=self.headers,
            json={"code": code, "name": f"Đợt thu {code}", "term": term, "due_dates": [d.isoformat() for d in dates]},
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def invoice(self, round_id: str, student_code: str, *lines: tuple[str, str, int]) -> dict[str, Any]:
        body = {
            "lines": [{"student_code": student_code, "kind": k, "description": d, "amount_vnd": a} for k, d, a in lines]
        }
        response = await self.client.post(
            f"/v1/tuition/rounds/{round_id}/invoices/import", headers=self.headers, json=body
        )
        assert response.status_code == 200, response.text
        return await self.get_invoice(response.json()["rows"][0]["id"])

    async def get_invoice(self, invoice_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/tuition/invoices/{invoice_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())


class Guardian:
    def __init__(self, client: httpx.AsyncClient, tokens: TokenFactory, sub: str) -> None:
        self.client = client
        self.sub = sub
        self.headers = tokens.bearer(tokens.user(sub, ["openid", "tuition"]))

    async def link(self, code: str) -> httpx.Response:
        return await self.client.post("/v1/tuition/me/students", headers=self.headers, json={"link_code": code})

    async def invoices(self, status: str | None = "open") -> list[dict[str, Any]]:
        response = await self.client.get(
            "/v1/tuition/me/invoices", headers=self.headers, params={"status": status} if status else {}
        )
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    async def pay(self, *invoice_ids: str, amount: str = "full", key: str | None = None) -> httpx.Response:
        return await self.client.post(
            "/v1/tuition/me/payments",
            headers={**self.headers, "Idempotency-Key": key or f"pay-{time.monotonic_ns()}"},
            json={"items": [{"invoice_id": i, "amount": amount} for i in invoice_ids]},
        )


@pytest.fixture
def tuition_app(tokens: TokenFactory) -> FastAPI:
    return build_tuition(tokens)


@pytest.fixture
async def tuition(tuition_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(tuition_app) as client:
        yield client


@pytest.fixture
def school(tuition: httpx.AsyncClient, tokens: TokenFactory) -> School:
    return School(tuition, tokens)


@pytest.fixture
def guardian_factory(tuition: httpx.AsyncClient, tokens: TokenFactory) -> Callable[[str], Guardian]:
    return lambda sub: Guardian(tuition, tokens, sub)


async def wait_for(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


# ---- the real payments service and sandbox provider (for money flows) --------------------------------


class PaymentsStack:
    """Payments and the sandbox wallet provider on real ports; a tuition app pointed at them."""

    def __init__(self, payments_url: str, sandbox_url: str, tokens: TokenFactory) -> None:
        self.payments_url = payments_url
        self.sandbox_url = sandbox_url
        self.service_headers = tokens.bearer(tokens.client("svc-tuition", ["payments.write"]))

    async def approve(self, order: dict[str, Any], decision: str = "approve") -> None:
        """What the guardian's browser does on the sandbox wallet page."""
        await LivePayments.decide(order["payment_url"], decision)

    async def payment(self, payment_id: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.payments_url, timeout=30) as http:
            response = await http.get(f"/v1/payments/{payment_id}", headers=self.service_headers)
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture
def payments_stack(tokens: TokenFactory) -> Any:
    live = LivePayments.start()
    yield PaymentsStack(live.payments_url, live.sandbox_url, tokens)
    live.stop()


@pytest.fixture
async def paying(tokens: TokenFactory, payments_stack: PaymentsStack) -> AsyncIterator[httpx.AsyncClient]:
    """The tuition app wired to the live payments service."""
    async with running(build_tuition(tokens, payments_url=payments_stack.payments_url)) as client:
        yield client
