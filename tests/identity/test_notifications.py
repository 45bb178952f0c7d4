"""notification.requested events from other services become one SMS per dedupe_key."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from services.identity.notifications.models import NotificationDelivery
from shared.db import new_id
from shared.events import CloudEvent, stream_for
from tests.identity.helpers import citizen_body, foreigner_body, register, register_and_verify, sms_messages


async def publish(app: FastAPI, source: str, data: dict[str, Any], event_id: str | None = None) -> str:
    event = CloudEvent(
        id=event_id or new_id(),
        source=f"/dncity/{source}",
        type="notification.requested",
        time=datetime.now(UTC),
        data=data,
    )
    await app.state.redis.xadd(stream_for(source), event.to_fields())
    return event.id


async def wait_for_deliveries(app: FastAPI, count: int) -> list[NotificationDelivery]:
    for _ in range(100):
        async with app.state.db.sessionmaker() as session:
            rows = list(await session.scalars(select(NotificationDelivery)))
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} deliveries")


async def test_sms_once_per_dedupe_key(client: httpx.AsyncClient, app: FastAPI) -> None:
    body = citizen_body(phone="0905666777")
    sub = await register_and_verify(client, body)
    notice = {
        "sub": sub,
        "kind": "tuition.reminder",
        "dedupe_key": "tuition:inv-42:reminder-1",
        "message": {"vi": "Học phí tháng 12 đến hạn ngày 05/12.", "en": "December tuition is due on 5 Dec."},
    }
    first = await publish(app, "tuition", notice)
    await publish(app, "tuition", notice, event_id=first)  # the same event delivered twice
    await publish(app, "tuition", notice)  # another event meaning the same notice
    await publish(
        app,
        "parking",
        {
            **notice,
            "kind": "parking.expiring",
            "dedupe_key": "parking:r-7:expiring",
            "message": {"vi": "Chỗ đỗ xe sắp hết giờ.", "en": "Parking ends soon."},
        },
    )
    await wait_for_deliveries(app, 2)
    await asyncio.sleep(0.5)
    texts = [m["body"] for m in await sms_messages(client, "0905666777")]
    assert texts.count("Học phí tháng 12 đến hạn ngày 05/12.") == 1
    assert "Chỗ đỗ xe sắp hết giờ." in texts


async def test_preferred_language_and_people_without_a_verified_phone(client: httpx.AsyncClient, app: FastAPI) -> None:
    tourist = foreigner_body(preferred_language="en")
    tourist_sub = await register_and_verify(client, tourist)
    pending = await register(client, citizen_body(phone="0905666888"))
    async with app.state.db.sessionmaker() as session:
        from services.identity.accounts.models import PhoneCode

        pending_sub = (await session.get(PhoneCode, pending["id"])).account_id  # type: ignore[union-attr]
    message = {"vi": "Lịch khám của bạn đã được xác nhận.", "en": "Your appointment is confirmed."}
    await publish(
        app, "health_booking", {"sub": tourist_sub, "kind": "health.booked", "dedupe_key": "h:1", "message": message}
    )
    await publish(
        app, "health_booking", {"sub": pending_sub, "kind": "health.booked", "dedupe_key": "h:2", "message": message}
    )
    await publish(
        app, "payments", {"sub": "f" * 32, "kind": "payments.receipt", "dedupe_key": "p:1", "message": message}
    )
    await publish(app, "payments", {"kind": "malformed"})
    rows = {r.dedupe_key: r.outcome for r in await wait_for_deliveries(app, 3)}
    assert rows == {"h:1": "sent", "h:2": "no_verified_phone", "p:1": "unknown_person"}
    newest = (await sms_messages(client, tourist["phone"]))[0]
    assert newest["body"] == "Your appointment is confirmed."
    # Only the verification code went to the unverified phone.
    assert len(await sms_messages(client, "0905666888")) == 1
