"""Client of the payments API for the services that take money (parking, health booking, tuition).

The contract (services/payments implements it):

- ``POST /v1/payments`` (client token with ``payments.write``; ``Idempotency-Key`` required)
  body :class:`PaymentCreate` → 201 :class:`Payment`. The same key and body return the first payment;
  the same key with another body → 409.
- ``GET /v1/payments/{id}`` → :class:`Payment` (the agency that created it, or the payer).
- ``POST /v1/payments/{id}/cancel`` (``payments.write``) → 200 :class:`Payment`; cancels a payment that
  has not succeeded (a lapsed hold); 409 ``payment_not_cancelable`` once it succeeded.
- ``POST /v1/payments/{id}/refunds`` (``payments.write``; ``Idempotency-Key``) body :class:`RefundCreate`
  → 201 :class:`Refund`; never more than what remains (409 ``refund_exceeds_remaining``).
- Events on the ``payments`` stream (``shared.events.stream_for("payments")``), CloudEvents whose
  ``data`` is :class:`PaymentEventData`: ``payment.succeeded``, ``payment.failed``, ``payment.expired``,
  ``payment.canceled``, ``payment.refunded``. Consumers pick theirs by ``purpose``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.errors import ProblemError, ServiceUnavailable
from shared.http import ServiceClient
from shared.service_auth import ServiceTokenProvider

Purpose = Literal["parking", "health", "tuition", "admin_fee"]
PaymentStatus = Literal[
    "requires_action", "processing", "succeeded", "failed", "canceled", "expired", "partially_refunded", "refunded"
]


class NextAction(BaseModel):
    type: Literal["redirect_to_url"]
    url: str


class PaymentCreate(BaseModel):
    amount_vnd: int = Field(gt=0)
    purpose: Purpose
    reference: str = Field(min_length=1, max_length=100)
    payer_sub: str = Field(min_length=1, max_length=64)
    description: str = Field(min_length=1, max_length=300)
    wallet: str = "sandbox"
    return_url: str | None = Field(default=None, max_length=2000)  # the column is varchar(2000)


class Payment(BaseModel):
    id: str
    status: PaymentStatus
    amount_vnd: int
    amount_refunded_vnd: int = 0
    purpose: Purpose
    reference: str
    payer_sub: str
    description: str | None = None
    next_action: NextAction | None = None
    expires_at: datetime | None = None
    created_at: datetime


class RefundCreate(BaseModel):
    amount_vnd: int | None = Field(default=None, gt=0)
    reason: str = Field(min_length=1, max_length=300)


class Refund(BaseModel):
    id: str
    payment_id: str
    amount_vnd: int
    status: str
    created_at: datetime


class PaymentEventData(BaseModel):
    payment_id: str
    purpose: Purpose
    reference: str
    payer_sub: str
    amount_vnd: int
    amount_refunded_vnd: int = 0
    status: PaymentStatus
    requested_by: str | None = None


class PaymentsError(ProblemError):
    """The payments service refused the request; carries its problem code."""


class PaymentsClient:
    """``budget_s`` bounds a whole call, retries included: callers often hold a booking's locks while
    they ask for a payment, and a slow payments service must not hold them for several read timeouts.
    Past it the call is ``payments_unavailable`` (503); the caller's transaction rolls back, and an
    intent the payments service may have created meanwhile is never shown to anyone and expires unpaid."""

    def __init__(
        self, http: ServiceClient, base_url: str, tokens: ServiceTokenProvider, *, budget_s: float = 8.0
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.budget_s = budget_s

    async def _call(
        self, method: str, path: str, *, idempotency_key: str | None = None, json: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        headers = await self.tokens.headers()
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        try:
            async with asyncio.timeout(self.budget_s):
                response = await self.http.request(method, self.base_url + path, headers=headers, json=json)
        except Exception as exc:  # TimeoutError (the budget) included
            raise ServiceUnavailable("The payments service is unavailable", code="payments_unavailable") from exc
        if response.status_code >= 500:
            raise ServiceUnavailable("The payments service is unavailable", code="payments_unavailable")
        body = response.json()
        if response.status_code >= 400:
            raise PaymentsError(
                body.get("detail"),
                code=body.get("code", "payments_error"),
                status=409 if response.status_code == 409 else 502,
                title="Payment refused",
            )
        return dict(body)

    async def create(self, data: PaymentCreate, *, idempotency_key: str) -> Payment:
        body = await self._call(
            "POST", "/v1/payments", idempotency_key=idempotency_key, json=data.model_dump(exclude_none=True)
        )
        return Payment.model_validate(body)

    async def get(self, payment_id: str) -> Payment:
        return Payment.model_validate(await self._call("GET", f"/v1/payments/{payment_id}"))

    async def cancel(self, payment_id: str) -> Payment:
        return Payment.model_validate(await self._call("POST", f"/v1/payments/{payment_id}/cancel"))

    async def refund(self, payment_id: str, data: RefundCreate, *, idempotency_key: str) -> Refund:
        body = await self._call(
            "POST",
            f"/v1/payments/{payment_id}/refunds",
            idempotency_key=idempotency_key,
            json=data.model_dump(exclude_none=True),
        )
        return Refund.model_validate(body)
