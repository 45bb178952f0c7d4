"""Async client of a Stripe-like mobile-money provider API (the sandbox in dev and tests).

Every POST carries an idempotency key chosen and stored by us before the call; retries (timeouts,
lost connections, 5xx, 429, unreadable bodies) reuse that key, so the provider acts at most once.
When retries are exhausted the outcome is *unknown* (:class:`ProviderUnavailable`): callers must
never treat that as a failure — a later query (the reconciler) settles it. A 4xx other than 409/429
is a definitive refusal (:class:`ProviderRefused`).
"""

from __future__ import annotations

import asyncio
import random
from datetime import date
from typing import Any

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.http import tracing_headers
from shared.http11 import Http11Transport

log = structlog.get_logger("payments.provider")


class ProviderError(Exception):
    """Base of provider failures."""


class ProviderRefused(ProviderError):
    """The provider answered with a definitive refusal (it did not act)."""

    def __init__(self, status: int, code: str, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.body = status, code, message, body or {}


class ProviderUnavailable(ProviderError):
    """No usable answer: the provider may or may not have acted. Query later; never mark failed."""


class ProviderNextAction(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    redirect_to_url: dict[str, Any] | None = None

    @property
    def url(self) -> str | None:
        return (self.redirect_to_url or {}).get("url")


class ProviderIntent(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    object: str = "payment_intent"
    amount: int
    amount_received: int = 0
    amount_refunded: int = 0
    currency: str
    status: str
    created: int
    expires_at: int | None = None
    cancellation_reason: str | None = None
    metadata: dict[str, str] = {}
    next_action: ProviderNextAction | None = None


class ProviderRefund(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    object: str = "refund"
    payment_intent: str
    amount: int
    status: str
    created: int
    metadata: dict[str, str] = {}


class ProviderList(BaseModel):
    data: list[ProviderIntent]
    has_more: bool = False


class ProviderClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 5.0,
        connect_timeout_s: float = 2.0,
        retries: int = 2,
        backoff_s: float = 0.1,
        max_retry_after_s: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 100,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_retry_after_s = max_retry_after_s
        self.client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            # httpx's own transport cost a quarter of the payments service's CPU per created payment.
            transport=transport or Http11Transport(max_connections=max_connections),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    # --- API ---------------------------------------------------------------------------------------

    async def create_intent(
        self,
        *,
        idempotency_key: str,
        amount: int,
        description: str,
        metadata: dict[str, str],
        return_url: str | None = None,
        expires_in_s: int | None = None,
    ) -> ProviderIntent:
        body: dict[str, Any] = {"amount": amount, "currency": "vnd", "description": description, "metadata": metadata}
        if return_url:
            body["return_url"] = return_url
        if expires_in_s:
            body["expires_in_s"] = expires_in_s
        return parse(
            ProviderIntent, await self._call("POST", "/v1/payment_intents", json=body, idempotency_key=idempotency_key)
        )

    async def retrieve_intent(self, intent_id: str) -> ProviderIntent:
        return parse(ProviderIntent, await self._call("GET", f"/v1/payment_intents/{intent_id}"))

    async def cancel_intent(
        self, intent_id: str, *, idempotency_key: str, reason: str = "requested_by_customer"
    ) -> ProviderIntent:
        return parse(
            ProviderIntent,
            await self._call(
                "POST",
                f"/v1/payment_intents/{intent_id}/cancel",
                json={"cancellation_reason": reason},
                idempotency_key=idempotency_key,
            ),
        )

    async def create_refund(
        self, *, idempotency_key: str, intent_id: str, amount: int, reason: str, metadata: dict[str, str]
    ) -> ProviderRefund:
        body = {"payment_intent": intent_id, "amount": amount, "reason": reason, "metadata": metadata}
        return parse(
            ProviderRefund, await self._call("POST", "/v1/refunds", json=body, idempotency_key=idempotency_key)
        )

    async def list_intents_for_day(self, day: date) -> list[ProviderIntent]:
        """Every intent created on ``day`` (Asia/Ho_Chi_Minh calendar day), all pages."""
        items: list[ProviderIntent] = []
        params: dict[str, Any] = {"day": day.isoformat(), "limit": 100}
        while True:
            page = parse(ProviderList, await self._call("GET", "/v1/payment_intents", params=params))
            items.extend(page.data)
            if not page.has_more or not page.data:
                return items
            params["starting_after"] = page.data[-1].id

    # --- transport ---------------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        headers = tracing_headers()
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if method == "POST" and not idempotency_key:
            raise ValueError("every POST to the provider carries an idempotency key")
        last: str = ""
        for attempt in range(self.retries + 1):
            retry_after: float | None = None
            try:
                response = await self.client.request(method, path, json=json, params=params, headers=headers)
            except httpx.TimeoutException as exc:
                last = f"timeout ({type(exc).__name__})"
            except httpx.TransportError as exc:
                # Includes a connection dropped after the request was sent: the provider may have acted.
                last = f"transport error ({type(exc).__name__})"
            else:
                status = response.status_code
                if status == 429 or status == 409 or status >= 500:
                    # 409: the provider is still processing a request with this key (Stripe's semantics).
                    last = f"HTTP {status}"
                    retry_after = _retry_after(response)
                else:
                    try:
                        body = response.json()
                        if not isinstance(body, dict):
                            raise ValueError("not an object")
                    except ValueError:
                        last = f"malformed JSON (HTTP {status})"
                    else:
                        if status >= 400:
                            raw_error = body.get("error")
                            error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
                            raise ProviderRefused(
                                status,
                                str(error.get("code") or "provider_error"),
                                str(error.get("message") or ""),
                                body,
                            )
                        return body
            if attempt < self.retries:
                delay = self.backoff_s * (2**attempt)
                if retry_after is not None:
                    delay = max(delay, min(retry_after, self.max_retry_after_s))
                await asyncio.sleep(delay + random.uniform(0, delay / 2))
        log.warning("provider_outcome_unknown", method=method, path=path, reason=last)
        raise ProviderUnavailable(f"{method} {path}: {last}")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def parse(model: type[BaseModel], data: Any) -> Any:
    """Validate provider data; an unreadable object counts as no answer."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ProviderUnavailable(f"malformed provider object: {exc.error_count()} errors") from exc
