"""Payment outcomes from the payments stream settle appointments (purpose "health" only)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.health_booking.appointments.service import settle_payment
from shared.app import ConsumerSpec
from shared.clients.payments import PaymentEventData
from shared.events import CloudEvent, Handler

PAYMENT_EVENTS = ("payment.succeeded", "payment.failed", "payment.expired", "payment.canceled", "payment.refunded")


def payment_consumer(app_ref: Callable[[], FastAPI]) -> ConsumerSpec:
    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        data = PaymentEventData.model_validate(event.data)
        if data.purpose != "health":
            return
        app = app_ref()
        await settle_payment(
            session,
            event.type,
            data.model_dump(),
            app.state.clock(),
            app.state.payments,
            app.state.settings.waitlist_offer_minutes,
        )

    handlers: dict[str, Handler] = dict.fromkeys(PAYMENT_EVENTS, handle)
    return ConsumerSpec(group="health_booking.payments", sources=["payments"], handlers=handlers)
