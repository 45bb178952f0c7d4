"""The sandbox provider on its own: API key, idempotency, wallet page, persistence, signed webhooks
retried with backoff."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request

from dncity.embedded_redis import free_port
from services.payments.provider import signing
from services.payments.sandbox.app import create_app
from services.payments.sandbox.settings import SandboxSettings
from shared.settings import ConfigError, PlatformSettings, Profile
from tests.helpers.live import LiveServer

KEY = "dev-insecure-sandbox-provider-api-key"


class Receiver:
    """A webhook endpoint that fails the first ``failures`` deliveries."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[tuple[float, bytes, str]] = []
        self.app = FastAPI()

        @self.app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @self.app.post("/hook")
        async def hook(request: Request) -> Any:
            from fastapi.responses import JSONResponse

            self.received.append(
                (time.monotonic(), await request.body(), request.headers.get(signing.SIGNATURE_HEADER, ""))
            )
            if len(self.received) <= self.failures:
                return JSONResponse({"error": "down"}, status_code=500)
            return {"ok": True}


def start_sandbox(database: str, webhook_url: str = "http://127.0.0.1:9/none") -> LiveServer:
    port = free_port()
    settings = SandboxSettings(
        database=database,
        public_url=f"http://127.0.0.1:{port}",
        webhook_url=webhook_url,
        webhook_backoff_base_s=0.2,
        sweep_interval_s=0.05,
    )
    return LiveServer(create_app(settings, PlatformSettings()), port=port).start()


def api(server: LiveServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"})


async def test_api_key_idempotency_and_validation(tmp_path: Path) -> None:
    server = start_sandbox(":memory:")
    try:
        async with api(server) as client, httpx.AsyncClient(base_url=server.url) as anonymous:
            body = {"amount": 10_000, "currency": "vnd", "metadata": {"payment_id": "p"}}
            assert (
                await anonymous.post("/v1/payment_intents", json=body, headers={"Idempotency-Key": "a"})
            ).status_code == 401
            wrong = await anonymous.get("/v1/payment_intents/pi_x", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
            no_key = await client.post("/v1/payment_intents", json=body)
            assert no_key.status_code == 400 and no_key.json()["error"]["code"] == "idempotency_key_required"
            first = await client.post("/v1/payment_intents", json=body, headers={"Idempotency-Key": "a"})
            again = await client.post("/v1/payment_intents", json=body, headers={"Idempotency-Key": "a"})
            assert first.status_code == 200 and first.json()["id"] == again.json()["id"]
            conflict = await client.post(
                "/v1/payment_intents", json={**body, "amount": 1}, headers={"Idempotency-Key": "a"}
            )
            assert conflict.status_code == 400 and conflict.json()["error"]["type"] == "idempotency_error"
            for bad in ({**body, "amount": 0}, {**body, "amount": 1.5}, {**body, "currency": "usd"}):
                assert (
                    await client.post("/v1/payment_intents", json=bad, headers={"Idempotency-Key": f"b{bad}"})
                ).status_code == 400
            assert (await client.get("/v1/payment_intents/pi_missing")).status_code == 404
            # A refund of an unpaid intent is refused; so is more than what was paid.
            intent = first.json()
            refused = await client.post(
                "/v1/refunds", json={"payment_intent": intent["id"], "amount": 1}, headers={"Idempotency-Key": "r"}
            )
            assert refused.status_code == 400 and refused.json()["error"]["code"] == "charge_not_refundable"
            async with httpx.AsyncClient() as browser:
                approved = await browser.post(
                    intent["next_action"]["redirect_to_url"]["url"], data={"decision": "approve"}
                )
                assert approved.status_code == 200
                bad_decision = await browser.post(
                    intent["next_action"]["redirect_to_url"]["url"], data={"decision": "maybe"}
                )
                assert bad_decision.status_code == 422
            over = await client.post(
                "/v1/refunds",
                json={"payment_intent": intent["id"], "amount": 10_001},
                headers={"Idempotency-Key": "r2"},
            )
            assert over.status_code == 400 and over.json()["error"]["code"] == "amount_too_large"
    finally:
        server.stop()


async def test_state_survives_a_restart_and_lists_by_vietnam_day(tmp_path: Path) -> None:
    database = str(tmp_path / "sandbox.db")
    server = start_sandbox(database)
    try:
        async with api(server) as client:
            ids = []
            for i in range(3):
                created = await client.post(
                    "/v1/payment_intents",
                    json={"amount": 1000 + i, "currency": "vnd"},
                    headers={"Idempotency-Key": f"k{i}"},
                )
                ids.append(created.json()["id"])
    finally:
        server.stop()
    server = start_sandbox(database)
    try:
        async with api(server) as client:
            assert (await client.get(f"/v1/payment_intents/{ids[0]}")).json()["amount"] == 1000
            replay = await client.post(
                "/v1/payment_intents", json={"amount": 1000, "currency": "vnd"}, headers={"Idempotency-Key": "k0"}
            )
            assert replay.json()["id"] == ids[0]  # idempotency keys survive too
            from datetime import datetime
            from zoneinfo import ZoneInfo

            day = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
            page = (await client.get("/v1/payment_intents", params={"day": day, "limit": 2})).json()
            assert [i["id"] for i in page["data"]] == ids[:2] and page["has_more"]
            rest = (await client.get("/v1/payment_intents", params={"day": day, "starting_after": ids[1]})).json()
            assert [i["id"] for i in rest["data"]] == ids[2:] and not rest["has_more"]
            empty = (await client.get("/v1/payment_intents", params={"day": "2001-01-01"})).json()
            assert empty["data"] == []
    finally:
        server.stop()


async def test_webhooks_are_signed_and_retried_with_backoff() -> None:
    receiver = Receiver(failures=2)
    hook = LiveServer(receiver.app).start()
    server = start_sandbox(":memory:", webhook_url=hook.url + "/hook")
    try:
        async with api(server) as client:
            intent = (
                await client.post(
                    "/v1/payment_intents", json={"amount": 7000, "currency": "vnd"}, headers={"Idempotency-Key": "w"}
                )
            ).json()
            async with httpx.AsyncClient() as browser:
                page = await browser.get(intent["next_action"]["redirect_to_url"]["url"])
                assert "7.000 ₫" in page.text and "decision" in page.text
                await browser.post(intent["next_action"]["redirect_to_url"]["url"], data={"decision": "approve"})
            for _ in range(100):
                if len(receiver.received) >= 3:
                    break
                await asyncio.sleep(0.05)
            deliveries = (await client.get("/v1/sandbox/deliveries")).json()["data"]
        assert len(receiver.received) == 3
        bodies = {body for _, body, _ in receiver.received}
        assert len(bodies) == 1  # the same event every time
        for _, body, header in receiver.received:
            signing.verify("dev-insecure-sandbox-webhook-signing-secret", header, body)
        gaps = [b[0] - a[0] for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
        assert gaps[0] >= 0.18 and gaps[1] >= 0.38  # 0.2 s, then 0.4 s: exponential backoff
        assert deliveries == [
            {
                "event_id": deliveries[0]["event_id"],
                "type": "payment_intent.succeeded",
                "attempts": 3,
                "delivered": True,
                "last_error": "HTTP 500",
            }
        ]
    finally:
        server.stop()
        hook.stop()


def test_prod_refuses_placeholder_secrets() -> None:
    platform = PlatformSettings(profile=Profile.prod)
    try:
        create_app(SandboxSettings(), platform)
    except ConfigError as exc:
        assert "sandbox secret" in str(exc)
    else:
        raise AssertionError("placeholders accepted in prod")
    from services.payments.settings import PaymentsSettings

    problems = PaymentsSettings(database_url="postgresql+asyncpg://x/y")
    try:
        problems.check(PlatformSettings(profile=Profile.prod, redis_url="redis://x", dev_endpoints=False))
    except ConfigError as exc:
        assert "provider_api_key" in str(exc) and "webhook_secret" in str(exc)
    else:
        raise AssertionError("placeholders accepted in prod")


def test_one_variable_configures_both_sides(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DNCITY_PAYMENTS_WEBHOOK_SECRET", "s" * 40)
    monkeypatch.setenv("DNCITY_PAYMENTS_PROVIDER_API_KEY", "k" * 40)
    settings = SandboxSettings()
    assert settings.webhook_secret == "s" * 40 and settings.api_key == "k" * 40
