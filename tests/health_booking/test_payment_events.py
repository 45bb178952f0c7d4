"""The payments-stream consumer with events through Redis: duplicates, out-of-order, other purposes."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from services.health_booking.db import events
from shared.db import new_id, utcnow
from shared.events import CloudEvent, stream_for
from shared.redis import create_redis
from tests.health_booking.conftest import Money


async def publish(redis_url: str, type_: str, data: dict[str, Any], event_id: str | None = None) -> None:
    """Publish on the payments stream exactly as the payments relay does."""
    redis = create_redis(redis_url)
    event = CloudEvent(id=event_id or new_id(), source="/dncity/payments", type=type_, time=utcnow(), data=data)
    await redis.xadd(stream_for("payments"), event.to_fields())
    await redis.aclose()


def event_data(appt: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {
        "payment_id": appt["payment"]["id"],
        "purpose": "health",
        "reference": appt["id"],
        "payer_sub": "patient-1",
        "amount_vnd": appt["fee_vnd"],
        "amount_refunded_vnd": 0,
        "status": "succeeded",
        **overrides,
    }


async def processed(money: Money) -> int:
    async with money.app.state.db.sessionmaker() as session:
        table = events.processed
        return int(
            await session.scalar(
                select(func.count()).select_from(table).where(table.c.consumer_group == "health_booking.payments")
            )
            or 0
        )


async def wait_processed(money: Money, n: int) -> None:
    for _ in range(200):
        if await processed(money) >= n:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {await processed(money)} events processed")


async def test_duplicates_and_out_of_order_events_settle_once(money: Money, redis_url: str) -> None:
    _fac, _doc, slots = await money.setup_basic(prepayment_required=True)
    appt = (await money.book(slots[0]["id"])).json()
    same_id = new_id()
    await publish(redis_url, "payment.succeeded", event_data(appt), same_id)
    await publish(redis_url, "payment.succeeded", event_data(appt), same_id)  # redelivery
    await publish(redis_url, "payment.succeeded", event_data(appt))  # a second, distinct copy
    await publish(redis_url, "payment.failed", event_data(appt, status="failed"))  # late and stale
    await wait_processed(money, 3)
    booked = await money.appointment(appt["id"])
    assert booked["status"] == "booked" and booked["queue_number"] == 1 and booked["paid_vnd"] == 150_000
    async with money.app.state.db.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(events.outbox).where(events.outbox.c.type == "appointment.booked")
        )
    assert count == 1


async def test_events_of_other_purposes_and_unknown_payments_are_ignored(money: Money, redis_url: str) -> None:
    _fac, _doc, slots = await money.setup_basic(prepayment_required=True)
    appt = (await money.book(slots[0]["id"])).json()
    await publish(redis_url, "payment.succeeded", event_data(appt, purpose="parking"))
    await publish(redis_url, "payment.succeeded", event_data(appt, payment_id="someone-elses-payment"))
    await publish(redis_url, "payment.succeeded", event_data(appt, reference="no-such-appointment"))
    await wait_processed(money, 3)
    assert (await money.appointment(appt["id"]))["status"] == "pending_payment"


async def test_a_payment_that_succeeds_after_the_booking_ended_is_refunded(money: Money, redis_url: str) -> None:
    _fac, _doc, slots = await money.setup_basic(prepayment_required=True)
    appt = (await money.book(slots[0]["id"])).json()
    await publish(redis_url, "payment.expired", event_data(appt, status="expired"))
    await money.wait(appt["id"], lambda a: a["status"] == "expired")
    # The payer still approves the (real) payment on the wallet page: the money goes back in full.
    await money.pay(appt)
    payment = await money.wait_payment(appt["payment"]["id"], lambda p: p["status"] == "refunded")
    assert payment["amount_refunded_vnd"] == 150_000
    final = await money.wait(appt["id"], lambda a: a["refunded_vnd"] == 150_000)
    assert final["status"] == "expired" and final["paid_vnd"] == 150_000 and final["refund_vnd"] == 150_000
