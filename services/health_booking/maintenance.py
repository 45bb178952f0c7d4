"""The maintenance loop: lapse unpaid holds, expire waitlist offers, derive the next days' slots."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import structlog
from fastapi import FastAPI

from services.health_booking.appointments.service import expire_holds, expire_offers
from services.health_booking.schedules.service import roll_horizons
from shared.db import Database

log = structlog.get_logger("health_booking.maintenance")


async def run_once(app: FastAPI, now: datetime | None = None) -> dict[str, int]:
    now = now or app.state.clock()
    db: Database = app.state.db
    settings = app.state.settings
    counts: dict[str, int] = {}
    # One short transaction per chore so a slow payments call never holds the others back.
    async with db.sessionmaker() as session, session.begin():
        counts["holds_lapsed"] = await expire_holds(session, now, app.state.payments, settings.waitlist_offer_minutes)
    async with db.sessionmaker() as session, session.begin():
        counts["offers_expired"] = await expire_offers(session, now, settings.waitlist_offer_minutes)
    async with db.sessionmaker() as session, session.begin():
        counts["schedules_rolled"] = await roll_horizons(session, now, settings.max_horizon_days)
    return counts


async def start(app: FastAPI) -> None:
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            try:
                await run_once(app)
            except Exception:
                log.exception("maintenance_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=app.state.settings.maintenance_interval_s)

    app.state.maintenance_stop = stop
    app.state.maintenance_task = asyncio.create_task(loop(), name="health_booking-maintenance")


async def stop(app: FastAPI) -> None:
    app.state.maintenance_stop.set()
    task = app.state.maintenance_task
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
