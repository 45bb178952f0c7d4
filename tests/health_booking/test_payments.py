"""Consultation fees against the real payments service and sandbox wallet: pay, lapse, refunds."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from services.health_booking import maintenance
from services.health_booking.db import events
from services.health_booking.schedules.models import Slot
from tests.health_booking.conftest import Money


async def prepaid_setup(money: Money, **rules):
    rules = {
        "prepayment_required": True,
        "hold_minutes": 15,
        "cancel_cutoff_minutes": 120,
        "full_refund_minutes": 24 * 60,
        "late_cancel_refund_percent": 50,
        **rules,
    }
    return await money.setup_basic(**rules)


async def booked_slot_count(money: Money, slot_id: str) -> int:
    async with money.app.state.db.sessionmaker() as session:
        slot = await session.get(Slot, slot_id)
        return slot.booked_count if slot else -1


async def test_book_pay_on_the_wallet_page_and_the_payment_event_books_it(money: Money) -> None:
    fac, _doc, slots = await prepaid_setup(money)
    response = await money.book(slots[0]["id"], reason="Khám định kỳ")
    assert response.status_code == 201, response.text
    appt = response.json()
    assert appt["status"] == "pending_payment" and appt["hold_expires_at"] and appt["queue_number"] is None
    assert appt["payment"]["url"].startswith(money.sandbox_url)
    payment = await money.payment(appt["payment"]["id"])
    assert payment["purpose"] == "health" and payment["reference"] == appt["id"]
    assert payment["amount_vnd"] == 150_000 and payment["payer_sub"] == "patient-1"
    await money.pay(appt)
    done = await money.wait(appt["id"], lambda a: a["status"] == "booked")
    assert done["paid_vnd"] == 150_000 and done["queue_number"] == 1 and done["hold_expires_at"] is None
    upcoming = await money.client.get(
        "/v1/health/appointments", params={"upcoming": "true"}, headers=money.user("patient-1")
    )
    assert [a["status"] for a in upcoming.json()["items"]] == ["booked"]
    assert fac["prepayment_required"] is True


async def test_declined_payment_releases_the_slot(money: Money) -> None:
    _fac, _doc, slots = await prepaid_setup(money)
    appt = (await money.book(slots[0]["id"])).json()
    await money.pay(appt, "decline")
    done = await money.wait(appt["id"], lambda a: a["status"] == "expired")
    assert done["cancelled_by"] == "system"
    assert await booked_slot_count(money, slots[0]["id"]) == 0
    assert (await money.book(slots[0]["id"], sub="patient-2")).status_code == 201


async def test_an_unpaid_hold_lapses_and_its_payment_is_canceled(money: Money) -> None:
    _fac, _doc, slots = await prepaid_setup(money, hold_minutes=10)
    appt = (await money.book(slots[0]["id"])).json()
    money.set_now(money.now() + timedelta(minutes=9))
    assert (await maintenance.run_once(money.app))["holds_lapsed"] == 0
    money.set_now(money.now() + timedelta(minutes=2))
    assert (await maintenance.run_once(money.app))["holds_lapsed"] == 1
    lapsed = await money.appointment(appt["id"])
    assert lapsed["status"] == "expired" and lapsed["cancel_reason"] == "hold_expired"
    assert (await money.payment(appt["payment"]["id"]))["status"] == "canceled"
    assert await booked_slot_count(money, slots[0]["id"]) == 0


async def test_early_cancellation_refunds_in_full(money: Money) -> None:
    _fac, _doc, slots = await prepaid_setup(money)
    far = slots[-1]  # days ahead: beyond the full-refund window
    appt = (await money.book(far["id"])).json()
    await money.pay(appt)
    await money.wait(appt["id"], lambda a: a["status"] == "booked")
    cancelled = await money.client.post(
        f"/v1/health/appointments/{appt['id']}/cancel", json={}, headers=money.user("patient-1")
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["refund_vnd"] == 150_000
    payment = await money.wait_payment(appt["payment"]["id"], lambda p: p["status"] == "refunded")
    assert payment["amount_refunded_vnd"] == 150_000
    confirmed = await money.wait(appt["id"], lambda a: a["refunded_vnd"] == 150_000)
    assert confirmed["status"] == "cancelled"


async def test_late_cancellation_refunds_per_policy(money: Money) -> None:
    _fac, _doc, slots = await prepaid_setup(money, late_cancel_refund_percent=40)
    appt = (await money.book(slots[0]["id"])).json()
    await money.pay(appt)
    await money.wait(appt["id"], lambda a: a["status"] == "booked")
    # Between the cut-off (2 h) and the full-refund window (24 h): 40 % back.
    money.set_now(datetime.fromisoformat(appt["start_at"]) - timedelta(hours=5))
    cancelled = await money.client.post(
        f"/v1/health/appointments/{appt['id']}/cancel", json={}, headers=money.user("patient-1")
    )
    assert cancelled.json()["refund_vnd"] == 60_000
    payment = await money.wait_payment(appt["payment"]["id"], lambda p: p["amount_refunded_vnd"] == 60_000)
    assert payment["status"] == "partially_refunded"


async def test_facility_cancellation_always_refunds_in_full_and_notifies(money: Money) -> None:
    _fac, _doc, slots = await prepaid_setup(money, late_cancel_refund_percent=0)
    appt = (await money.book(slots[0]["id"])).json()
    await money.pay(appt)
    await money.wait(appt["id"], lambda a: a["status"] == "booked")
    money.set_now(datetime.fromisoformat(appt["start_at"]) - timedelta(minutes=30))  # past the patient cut-off
    cancelled = await money.client.post(
        f"/v1/health/agency/appointments/{appt['id']}/cancel", json={"reason": "Mất điện"}, headers=money.agency()
    )
    assert cancelled.status_code == 200 and cancelled.json()["refund_vnd"] == 150_000
    await money.wait_payment(appt["payment"]["id"], lambda p: p["status"] == "refunded")
    async with money.app.state.db.sessionmaker() as session:
        notes = (
            (
                await session.execute(
                    select(events.outbox.c.data).where(events.outbox.c.type == "notification.requested")
                )
            )
            .scalars()
            .all()
        )
    assert [n["sub"] for n in notes] == ["patient-1"]


async def test_cancelling_an_unpaid_booking_cancels_its_payment(money: Money) -> None:
    _fac, _doc, slots = await prepaid_setup(money)
    appt = (await money.book(slots[0]["id"])).json()
    cancelled = await money.client.post(
        f"/v1/health/appointments/{appt['id']}/cancel", json={}, headers=money.user("patient-1")
    )
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["refund_vnd"] == 0
    assert (await money.payment(appt["payment"]["id"]))["status"] == "canceled"


async def test_reschedule_keeps_the_payment(money: Money) -> None:
    _fac, _doc, slots = await prepaid_setup(money)
    appt = (await money.book(slots[0]["id"])).json()
    await money.pay(appt)
    await money.wait(appt["id"], lambda a: a["status"] == "booked")
    moved = await money.client.post(
        f"/v1/health/appointments/{appt['id']}/reschedule",
        json={"slot_id": slots[3]["id"]},
        headers={**money.user("patient-1"), "Idempotency-Key": "mv"},
    )
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert body["payment"]["id"] == appt["payment"]["id"] and body["paid_vnd"] == 150_000
    assert body["status"] == "booked" and body["slot_id"] == slots[3]["id"]
    assert (await money.payment(appt["payment"]["id"]))["status"] == "succeeded"  # not refunded, not recharged
