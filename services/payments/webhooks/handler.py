"""Applies stored provider notifications (consumer of our own stream, group "payments.webhooks").

Out-of-order tolerant: intent events carry the intent's state at that time and only forward moves
are applied; a refund notified before its payment's success makes us re-fetch the intent from the
provider, and if the provider still does not report success the event is held (the consumer retries it
with backoff).
"""

from __future__ import annotations

import json

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.payments import repository as repo
from services.payments.payments import service
from services.payments.payments.models import Payment, WebhookEvent
from services.payments.payments.state import CAPTURED
from services.payments.provider.client import ProviderIntent, ProviderRefund
from shared.db import utcnow
from shared.events import CloudEvent

log = structlog.get_logger("payments.webhooks")


class NotYet(RuntimeError):
    """The event cannot be applied yet (unknown intent, refund before success); retried later."""


def make_handler(ctx: service.PaymentsContext):  # type: ignore[no-untyped-def]
    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        row = await session.get(WebhookEvent, event.data["webhook_event_id"])
        if row is None or row.processed_at is not None:
            return
        payload = json.loads(row.payload)
        obj = payload["data"]["object"]
        kind = payload["type"]
        if kind.startswith("payment_intent."):
            outcome = await apply_intent(session, ctx, ProviderIntent.model_validate(obj), row.provider, kind)
        elif kind.startswith("refund."):
            outcome = await apply_refund(session, ctx, ProviderRefund.model_validate(obj), row.provider, kind)
        else:
            outcome = "ignored"
        row.processed_at = utcnow()
        row.outcome = outcome[:200]
        log.info("webhook_applied", event_id=row.event_id, type=kind, outcome=outcome)

    return handle


async def _payment_for(session: AsyncSession, intent_id: str, metadata: dict[str, str]) -> Payment:
    payment = await repo.by_intent(session, intent_id, for_update=True)
    if payment is None and metadata.get("payment_id"):
        payment = await repo.get(session, metadata["payment_id"], for_update=True)
    if payment is None:
        # Possibly our create transaction has not committed yet: hold and retry.
        raise NotYet(f"no payment for intent {intent_id}")
    return payment


async def apply_intent(
    session: AsyncSession, ctx: service.PaymentsContext, intent: ProviderIntent, provider: str, kind: str
) -> str:
    payment = await _payment_for(session, intent.id, intent.metadata)
    return await service.sync_from_intent(session, ctx, payment, intent, f"webhook {kind}")


async def apply_refund(
    session: AsyncSession, ctx: service.PaymentsContext, refund_obj: ProviderRefund, provider: str, kind: str
) -> str:
    payment = await _payment_for(session, refund_obj.payment_intent, {})
    if payment.status not in CAPTURED:
        # A refund notified before the payment's success: ask the provider what the intent is now.
        intent = await ctx.provider(payment.provider).retrieve_intent(refund_obj.payment_intent)
        await service.sync_from_intent(session, ctx, payment, intent, "re-fetched for an early refund event")
        if payment.status not in CAPTURED:
            raise NotYet(f"refund {refund_obj.id} before payment {payment.id} succeeded")
    local = await repo.refund_by_provider_id(session, refund_obj.id)
    ours = refund_obj.metadata.get("refund_id")
    if local is None and ours:
        local = await repo.refund(session, ours)
        if local is None:
            # Ours, but the request that asked for it has not committed yet: hold and retry.
            raise NotYet(f"refund {ours} not stored yet")
    if local is None:
        return await service.adopt_provider_refund(session, ctx, payment, refund_obj, f"webhook {kind}")
    return await service.apply_provider_refund(session, ctx, payment, local, refund_obj, f"webhook {kind}")
