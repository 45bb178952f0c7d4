"""The sandbox mobile-money provider: a Stripe-like payment-intents API with its own state.

- ``POST /v1/payment_intents`` (Idempotency-Key) → an intent in ``requires_action`` whose
  ``next_action.redirect_to_url.url`` is the wallet page; ``GET /v1/payment_intents/{id}``;
  ``POST /v1/payment_intents/{id}/cancel``; ``GET /v1/payment_intents?day=YYYY-MM-DD`` (Vietnam day);
  ``POST /v1/refunds``; ``GET /v1/refunds/{id}``. Bearer API key on every API call.
- ``GET /wallet/{id}``: the page where the payer approves or declines (as the wallet app would after
  the OTP); its form POSTs ``decision=approve|decline`` to the same URL, so scripts can do it too.
- Webhooks signed ``Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.raw_body">``, delivered in
  order and retried with exponential backoff until a 2xx.
- Test behaviours (``PUT /v1/sandbox/behaviour``): decline every approval, delayed confirmation,
  slow answers after acting (client timeouts), failing the next N calls with 500/429 before acting,
  duplicate webhooks, out-of-order webhooks, holding webhooks until flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import structlog
from fastapi import APIRouter, Depends, FastAPI, Form, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel

from services.payments.provider import signing
from services.payments.sandbox.settings import SandboxSettings
from services.payments.sandbox.store import ApiError, Store
from shared.settings import PlatformSettings

log = structlog.get_logger("sandbox_provider")
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)


IdemKey = Annotated[str | None, Header(alias="Idempotency-Key")]


class Behaviour(BaseModel):
    decline_all: bool = False
    confirm_delay_s: float = 0.0
    # Act, then wait this long before answering API calls (the caller's read timeout fires).
    response_delay_s: float = 0.0
    # Refuse the next N API calls with this status before acting (500, 503 or 429).
    fail_next_status: int | None = None
    fail_next_count: int = 0
    duplicate_webhooks: bool = False
    out_of_order_webhooks: bool = False
    hold_webhooks: bool = False


def format_vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".") + " ₫"


def create_app(settings: SandboxSettings | None = None, platform: PlatformSettings | None = None) -> FastAPI:
    settings = settings or SandboxSettings()
    platform = platform or PlatformSettings()
    settings.check(platform)
    public_url = (settings.public_url or platform.sandbox_provider_url).rstrip("/")
    webhook_url = settings.webhook_url or platform.payments_url.rstrip("/") + "/v1/payments/webhooks/sandbox"
    store = Store(settings.database_path(platform), public_url)
    behaviour = Behaviour(decline_all=settings.decline_all, confirm_delay_s=settings.confirm_delay_s)
    wake = asyncio.Event()

    async def deliver_once(http: httpx.AsyncClient) -> int:
        rows = await store.due_deliveries(settings.webhook_max_attempts)
        if behaviour.hold_webhooks:
            return 0
        if behaviour.out_of_order_webhooks:
            rows = list(reversed(rows))
        sent = 0
        for row in rows:
            raw = row["payload"].encode()
            error: str | None = None
            try:
                response = await http.post(
                    webhook_url,
                    content=raw,
                    headers={
                        "Content-Type": "application/json",
                        signing.SIGNATURE_HEADER: signing.sign(settings.webhook_secret, raw),
                    },
                )
                ok = 200 <= response.status_code < 300
                error = None if ok else f"HTTP {response.status_code}"
                if ok and behaviour.duplicate_webhooks:
                    await http.post(
                        webhook_url,
                        content=raw,
                        headers={
                            "Content-Type": "application/json",
                            signing.SIGNATURE_HEADER: signing.sign(settings.webhook_secret, raw),
                        },
                    )
            except httpx.HTTPError as exc:
                ok, error = False, type(exc).__name__
            await store.delivery_result(
                row["seq"], ok, error, settings.webhook_backoff_base_s, settings.webhook_backoff_max_s
            )
            sent += ok
        return sent

    async def background(stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=settings.webhook_timeout_s) as http:
            while not stop.is_set():
                try:
                    await store.sweep()
                    await deliver_once(http)
                except Exception:
                    log.exception("sandbox_background_failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=settings.sweep_interval_s)
                wake.clear()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.open()
        stop = asyncio.Event()
        task = asyncio.create_task(background(stop), name="sandbox-webhooks")
        try:
            yield
        finally:
            stop.set()
            wake.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            await store.close()

    app = FastAPI(
        title="Sandbox mobile-money provider",
        lifespan=lifespan,
        description="A Stripe-like payment-intents API for development and tests.",
    )
    app.state.store, app.state.behaviour, app.state.settings = store, behaviour, settings

    @app.exception_handler(ApiError)
    async def on_api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    async def authorized(authorization: Annotated[str | None, Header()] = None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), settings.api_key):
            raise ApiError(401, "invalid_api_key", "Invalid API key provided", "authentication_error")

    async def misbehave() -> None:
        if behaviour.fail_next_count > 0 and behaviour.fail_next_status:
            behaviour.fail_next_count -= 1
            status = behaviour.fail_next_status
            raise ApiError(
                status, "rate_limited" if status == 429 else "api_error", "Sandbox-injected failure", "api_error"
            )

    async def answer(result: dict[str, Any]) -> dict[str, Any]:
        wake.set()  # new webhook deliveries may be queued
        if behaviour.response_delay_s > 0:
            await asyncio.sleep(behaviour.response_delay_s)
        return result

    api = APIRouter(dependencies=[Depends(authorized)])

    async def json_body(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "parameter_invalid", "The body must be a JSON object") from None
        if not isinstance(body, dict):
            raise ApiError(400, "parameter_invalid", "The body must be a JSON object")
        return body

    @api.post("/v1/payment_intents")
    async def create_intent(request: Request, key: IdemKey = None) -> dict[str, Any]:
        """Create a payment intent (Idempotency-Key required)."""
        body = await json_body(request)
        await misbehave()
        return await answer(await store.create_intent(key, body, settings.default_expires_in_s))

    @api.get("/v1/payment_intents")
    async def list_intents(
        day: Annotated[str, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")],
        limit: Annotated[int, Query(ge=1, le=100)] = 100,
        starting_after: str | None = None,
    ) -> dict[str, Any]:
        """Intents created on one Asia/Ho_Chi_Minh calendar day, oldest first."""
        await misbehave()
        await store.sweep()
        return await store.list_intents(day, limit, starting_after)

    @api.get("/v1/payment_intents/{intent_id}")
    async def retrieve_intent(intent_id: str) -> dict[str, Any]:
        """One intent."""
        await misbehave()
        return await answer(await store.retrieve_intent(intent_id))

    @api.post("/v1/payment_intents/{intent_id}/cancel")
    async def cancel_intent(intent_id: str, request: Request, key: IdemKey = None) -> dict[str, Any]:
        """Cancel an intent that has not succeeded."""
        body = await json_body(request)
        await misbehave()
        return await answer(await store.cancel_intent(key, intent_id, body))

    @api.post("/v1/refunds")
    async def create_refund(request: Request, key: IdemKey = None) -> dict[str, Any]:
        """Refund all or part of a succeeded intent."""
        body = await json_body(request)
        await misbehave()
        return await answer(await store.create_refund(key, body))

    @api.get("/v1/refunds/{refund_id}")
    async def retrieve_refund(refund_id: str) -> dict[str, Any]:
        """One refund."""
        return await store.retrieve_refund(refund_id)

    @api.get("/v1/sandbox/behaviour")
    async def get_behaviour() -> Behaviour:
        """The current test behaviours."""
        return behaviour

    @api.put("/v1/sandbox/behaviour")
    async def set_behaviour(new: Behaviour) -> Behaviour:
        """Replace the test behaviours."""
        for name, value in new.model_dump().items():
            setattr(behaviour, name, value)
        wake.set()
        return behaviour

    @api.post("/v1/sandbox/webhooks/flush")
    async def flush_webhooks(order: Literal["forward", "reverse"] = "forward") -> dict[str, Any]:
        """Deliver every held webhook now, in creation or reverse order (out-of-order tests)."""
        held, behaviour.hold_webhooks = behaviour.hold_webhooks, False
        reverse, behaviour.out_of_order_webhooks = behaviour.out_of_order_webhooks, order == "reverse"
        try:
            async with httpx.AsyncClient(timeout=settings.webhook_timeout_s) as http:
                sent = await deliver_once(http)
        finally:
            behaviour.hold_webhooks, behaviour.out_of_order_webhooks = held, reverse
        return {"delivered": sent}

    @api.get("/v1/sandbox/deliveries")
    async def list_deliveries() -> dict[str, Any]:
        """Webhook deliveries and their attempts."""
        return {"data": await store.deliveries()}

    app.include_router(api)

    def page(intent: dict[str, Any], action: str, message: str | None = None, status_code: int = 200) -> HTMLResponse:
        html = TEMPLATES.get_template("wallet.html").render(
            amount=format_vnd(intent["amount"]),
            description=intent["description"],
            intent_id=intent["id"],
            status=intent["status"],
            action=action,
            message=message,
            return_url=intent.get("return_url"),
        )
        return HTMLResponse(html, status_code=status_code)

    @app.get("/wallet/{intent_id}", response_class=HTMLResponse)
    async def wallet_page(intent_id: str, request: Request) -> HTMLResponse:
        """The wallet's approval page (what the payer sees after the OTP)."""
        try:
            intent = await store.retrieve_intent(intent_id)
        except ApiError:
            return HTMLResponse("<h1>Không tìm thấy giao dịch / Payment not found</h1>", status_code=404)
        return page(intent, request.url.path)

    @app.post("/wallet/{intent_id}", response_class=HTMLResponse)
    async def wallet_decide(
        intent_id: str, request: Request, decision: Annotated[Literal["approve", "decline"], Form()]
    ) -> HTMLResponse:
        """The payer approves or declines (form field decision=approve|decline)."""
        try:
            intent = await store.decide(
                intent_id,
                decision == "approve",
                decline_all=behaviour.decline_all,
                confirm_delay_s=behaviour.confirm_delay_s,
            )
        except ApiError as exc:
            if exc.status == 404:
                return HTMLResponse("<h1>Không tìm thấy giao dịch / Payment not found</h1>", status_code=404)
            intent = await store.retrieve_intent(intent_id)
            return page(intent, request.url.path, "Giao dịch đã kết thúc / This payment is closed", 409)
        wake.set()
        message = {
            "succeeded": "Đã thanh toán / Paid",
            "processing": "Đang xử lý / Processing",
            "failed": "Đã từ chối / Declined",
        }.get(intent["status"], intent["status"])
        return page(intent, request.url.path, message)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok", "service": "sandbox_provider"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        """Readiness: the store answers."""
        await store.tx(lambda conn: conn.execute("SELECT 1").fetchone())
        return {"status": "ok", "service": "sandbox_provider"}

    return app
