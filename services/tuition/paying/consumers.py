"""Payments events → invoice settlement (consumer group ``tuition.payments`` on the payments stream)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.tuition.paying.service import handle_payment_event
from services.tuition.runtime import TuitionRuntime
from shared.app import ConsumerSpec
from shared.clients.payments import PaymentEventData
from shared.events import CloudEvent, Handler

PAYMENT_EVENTS = ("payment.succeeded", "payment.failed", "payment.expired", "payment.canceled", "payment.refunded")


def payments_consumer(runtime: TuitionRuntime) -> ConsumerSpec:
    async def on_payment(session: AsyncSession, event: CloudEvent) -> None:
        if event.data.get("purpose") != "tuition":
            return  # parking's, health's … payments are not ours
        data = PaymentEventData.model_validate(event.data)
        await handle_payment_event(session, event.type, data, runtime.payments)

    handlers: dict[str, Handler] = dict.fromkeys(PAYMENT_EVENTS, on_payment)
    return ConsumerSpec(group="tuition.payments", sources=["payments"], handlers=handlers)
