"""Payment outcomes from the payments stream, and the background task that lets lapsed holds go."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.parking.reservations import service
from shared.app import ConsumerSpec
from shared.db import utcnow
from shared.events import CloudEvent

log = structlog.get_logger("parking.consumers")

PAYMENT_EVENTS = ("payment.succeeded", "payment.failed", "payment.expired", "payment.canceled", "payment.refunded")


def payment_consumer(app_ref: dict[str, FastAPI]) -> ConsumerSpec:
    """Handlers need the app (the payments client for refunds); it exists only after the factory ran."""

    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        await service.on_payment_event(app_ref["app"], session, event.type, event.data, utcnow())

    return ConsumerSpec(group="parking.payments", sources=["payments"], handlers=dict.fromkeys(PAYMENT_EVENTS, handle))


async def start_expiry_task(app: FastAPI) -> None:
    async def loop() -> None:
        interval = app.state.settings.expiry_sweep_interval_s
        while True:
            try:
                await service.sweep_expired(app, utcnow())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("hold_sweep_failed")
            await asyncio.sleep(interval)

    app.state.expiry_task = asyncio.create_task(loop(), name="parking-hold-expiry")


async def stop_expiry_task(app: FastAPI) -> None:
    task = getattr(app.state, "expiry_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
