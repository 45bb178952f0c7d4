"""Booking rules, lifecycle, cancellation, reschedule and waitlist (facilities without prepayment)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import func, select

from services.health_booking import maintenance
from services.health_booking.appointments.models import Appointment
from services.health_booking.db import events
from services.health_booking.schedules.models import Slot
from tests.health_booking.conftest import OTHER_HOSPITAL, Health, tomorrow_at


async def count(health: Health, model=Appointment, *where) -> int:
    async with health.app.state.db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def outbox_events(health: Health, type_: str) -> list[dict]:
    async with health.app.state.db.sessionmaker() as session:
        rows = await session.execute(select(events.outbox.c.data).where(events.outbox.c.type == type_))
        return [r[0] for r in rows]


async def test_book_without_prepayment_is_booked_at_once_with_a_queue_number(health: Health) -> None:
    fac, doc, slots = await health.setup_basic()
    response = await health.book(slots[0]["id"], reason="Sốt cao")
    assert response.status_code == 201, response.text
    appt = response.json()
    assert appt["status"] == "booked" and appt["payment"] is None and appt["queue_number"] == 1
    assert appt["patient_id"] == "patient-1" and appt["patient_kind"] == "self"
    assert appt["fee_vnd"] == 150_000 and appt["practitioner_id"] == doc["id"]
    second = await health.book(slots[1]["id"], sub="patient-2")
    assert second.json()["queue_number"] == 2
    upcoming = await health.client.get(
        "/v1/health/appointments", params={"upcoming": "true"}, headers=health.user("patient-1")
    )
    assert upcoming.status_code == 200
    assert [a["id"] for a in upcoming.json()["items"]] == [appt["id"]] and "next_cursor" in upcoming.json()
    assert upcoming.json()["items"][0]["facility_name"] == fac["name"]
    booked = await outbox_events(health, "appointment.booked")
    assert len(booked) == 2 and "reason" not in booked[0]  # events carry no health data


async def test_idempotency_key_replays_and_refuses_a_different_body(health: Health) -> None:
    _fac, _doc, slots = await health.setup_basic()
    first = await health.book(slots[0]["id"], key="k-1")
    again = await health.book(slots[0]["id"], key="k-1")
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    other = await health.book(slots[1]["id"], key="k-1")
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    missing = await health.client.post(
        "/v1/health/appointments", json={"slot_id": slots[2]["id"]}, headers=health.user("patient-1")
    )
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "header.Idempotency-Key"
    assert await count(health) == 1


async def test_notice_and_horizon_rules(health: Health) -> None:
    fac, _doc, slots = await health.setup_basic(min_notice_minutes=60, max_days_ahead=14)
    first = datetime.fromisoformat(slots[0]["start_at"])
    health.set_now(first - timedelta(minutes=30))  # half an hour before: inside the minimum notice
    too_soon = await health.book(slots[0]["id"])
    assert too_soon.status_code == 422 and too_soon.json()["code"] == "minimum_notice"
    assert too_soon.json()["errors"][0]["field"] == "body.slot_id"
    last = datetime.fromisoformat(slots[-1]["start_at"])
    far = await health.slots(facility_id=fac["id"], limit=200)
    last = max(datetime.fromisoformat(s["start_at"]) for s in far)
    last_id = next(s["id"] for s in far if datetime.fromisoformat(s["start_at"]) == last)
    health.set_now(last - timedelta(days=15))  # the slot is now more than 14 days ahead
    too_far = await health.book(last_id)
    assert too_far.status_code == 422 and too_far.json()["code"] == "too_far_ahead"
    assert await count(health) == 0


async def test_one_active_appointment_per_overlapping_time_and_n_per_day(health: Health) -> None:
    fac = await health.facility(max_per_patient_per_day=2)
    doc1 = await health.practitioner(fac["id"])
    doc2 = await health.practitioner(fac["id"], name="BS. Trần Thị Bình")
    await health.schedule(fac["id"], practitioner_id=doc1["id"])
    await health.schedule(fac["id"], practitioner_id=doc2["id"])
    day = tomorrow_at(health.now(), 0)
    window = {"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()}
    a = await health.slots(practitioner_id=doc1["id"], **window)
    b = await health.slots(practitioner_id=doc2["id"], **window)
    assert (await health.book(a[0]["id"])).status_code == 201
    overlap = await health.book(b[0]["id"])  # same time, other doctor
    assert overlap.status_code == 409 and overlap.json()["code"] == "overlapping_appointment"
    assert (await health.book(b[1]["id"])).status_code == 201
    third = await health.book(a[3]["id"])
    assert third.status_code == 409 and third.json()["code"] == "daily_limit_reached"
    assert await count(health) == 2


async def test_capacity_is_never_exceeded_under_50_concurrent_bookings(health: Health) -> None:
    fac = await health.facility(max_per_patient_per_day=5)
    await health.schedule(fac["id"], service_name="Tiêm chủng", specialty="vaccination", capacity=5, fee_vnd=0)
    slot = (await health.slots(facility_id=fac["id"]))[0]
    responses = await asyncio.gather(*[health.book(slot["id"], sub=f"child-{i}") for i in range(50)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 5 and statuses.count(409) == 45, statuses
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"slot_full"}
    assert await count(health, Appointment, Appointment.slot_id == slot["id"]) == 5
    async with health.app.state.db.sessionmaker() as session:
        stored = await session.get(Slot, slot["id"])
        assert stored is not None and stored.booked_count == 5
    numbers = sorted(r.json()["queue_number"] for r in responses if r.status_code == 201)
    assert numbers == [1, 2, 3, 4, 5]


async def test_one_patient_racing_two_overlapping_bookings_gets_one(health: Health) -> None:
    fac = await health.facility()
    docs = [await health.practitioner(fac["id"], name=f"BS. {n}") for n in ("An", "Bình", "Chi", "Dũng")]
    for doc in docs:
        await health.schedule(fac["id"], practitioner_id=doc["id"])
    day = tomorrow_at(health.now(), 0)
    firsts = [(await health.slots(practitioner_id=d["id"], **{"from": day.isoformat()}))[0] for d in docs]
    responses = await asyncio.gather(*[health.book(s["id"], sub="same-patient") for s in firsts])
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]


async def test_bad_booking_input_names_the_field_and_stores_nothing(health: Health) -> None:
    _fac, _doc, slots = await health.setup_basic()
    for body, field in [
        ({"slot_id": "nope"}, "body.slot_id"),
        ({}, "body.slot_id"),
        ({"slot_id": slots[0]["id"], "mode": "telemedicine"}, "body.mode"),
        ({"slot_id": slots[0]["id"], "mode": "video"}, "body.mode"),
        ({"slot_id": slots[0]["id"], "reason": "x" * 501}, "body.reason"),
        ({"slot_id": slots[0]["id"], "patient": "bad id!"}, "body.patient"),
        ({"slot_id": slots[0]["id"], "extra": 1}, "body.extra"),
    ]:
        response = await health.client.post(
            "/v1/health/appointments", json=body, headers={**health.user("p1"), "Idempotency-Key": f"bad-{field}"}
        )
        assert response.status_code == 422, body
        assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert await count(health) == 0
    async with health.app.state.db.sessionmaker() as session:
        assert (await session.get(Slot, slots[0]["id"])).booked_count == 0  # type: ignore[union-attr]


async def test_appointments_are_invisible_to_other_patients_and_facilities(health: Health) -> None:
    _fac, _doc, slots = await health.setup_basic()
    appt = (await health.book(slots[0]["id"])).json()
    stranger = health.user("patient-2")
    for method, path, body in [
        ("GET", f"/v1/health/appointments/{appt['id']}", None),
        ("POST", f"/v1/health/appointments/{appt['id']}/cancel", {}),
        ("GET", f"/v1/health/fhir/Appointment/{appt['id']}", None),
    ]:
        response = await health.client.request(method, path, json=body, headers=stranger)
        assert response.status_code == 404, path
    moved = await health.client.post(
        f"/v1/health/appointments/{appt['id']}/reschedule",
        json={"slot_id": slots[1]["id"]},
        headers={**stranger, "Idempotency-Key": "steal"},
    )
    assert moved.status_code == 404
    listed = await health.client.get("/v1/health/appointments", headers=stranger)
    assert listed.json()["items"] == []
    other_facility = health.agency(OTHER_HOSPITAL)
    for action in ("arrive", "cancel", "noshow"):
        response = await health.client.post(
            f"/v1/health/agency/appointments/{appt['id']}/{action}", json={}, headers=other_facility
        )
        assert response.status_code == 404
    mine = await health.client.get(f"/v1/health/appointments/{appt['id']}", headers=health.user("patient-1"))
    assert mine.json()["status"] == "booked"


async def test_lifecycle_arrived_fulfilled_and_noshow(health: Health) -> None:
    _fac, _doc, slots = await health.setup_basic()
    a = (await health.book(slots[0]["id"])).json()
    b = (await health.book(slots[1]["id"], sub="patient-2")).json()
    agency = health.agency()
    early_noshow = await health.client.post(f"/v1/health/agency/appointments/{b['id']}/noshow", headers=agency)
    assert early_noshow.status_code == 409
    arrived = await health.client.post(f"/v1/health/agency/appointments/{a['id']}/arrive", headers=agency)
    assert arrived.json()["status"] == "arrived"
    again = await health.client.post(f"/v1/health/agency/appointments/{a['id']}/arrive", headers=agency)
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
    done = await health.client.post(f"/v1/health/agency/appointments/{a['id']}/fulfil", headers=agency)
    assert done.json()["status"] == "fulfilled"
    health.set_now(datetime.fromisoformat(b["start_at"]) + timedelta(minutes=20))
    noshow = await health.client.post(f"/v1/health/agency/appointments/{b['id']}/noshow", headers=agency)
    assert noshow.json()["status"] == "noshow"
    day = await health.client.get(f"/v1/health/agency/facilities/{a['facility_id']}/appointments", headers=agency)
    assert {x["status"] for x in day.json()["items"]} == {"fulfilled", "noshow"}


async def test_patient_cancels_before_the_cutoff_and_not_after(health: Health) -> None:
    _fac, _doc, slots = await health.setup_basic(cancel_cutoff_minutes=180)
    appt = (await health.book(slots[0]["id"])).json()
    start = datetime.fromisoformat(appt["start_at"])
    health.set_now(start - timedelta(minutes=179))
    late = await health.client.post(
        f"/v1/health/appointments/{appt['id']}/cancel", json={}, headers=health.user("patient-1")
    )
    assert late.status_code == 409 and late.json()["code"] == "cancel_cutoff_passed"
    health.set_now(start - timedelta(minutes=181))
    ok = await health.client.post(
        f"/v1/health/appointments/{appt['id']}/cancel", json={"reason": "Khỏi bệnh"}, headers=health.user("patient-1")
    )
    assert ok.status_code == 200 and ok.json()["status"] == "cancelled" and ok.json()["cancelled_by"] == "patient"
    again = await health.client.post(
        f"/v1/health/appointments/{appt['id']}/cancel", json={}, headers=health.user("patient-1")
    )
    assert again.status_code == 409
    # The place is free again.
    assert (await health.book(slots[0]["id"], sub="patient-2")).status_code == 201


async def test_facility_cancellation_notifies_the_patient(health: Health) -> None:
    _fac, _doc, slots = await health.setup_basic()
    appt = (await health.book(slots[0]["id"], reason="Đau bụng")).json()
    response = await health.client.post(
        f"/v1/health/agency/appointments/{appt['id']}/cancel",
        json={"reason": "Bác sĩ nghỉ ốm"},
        headers=health.agency(),
    )
    assert response.status_code == 200 and response.json()["cancelled_by"] == "facility"
    notes = await outbox_events(health, "notification.requested")
    assert len(notes) == 1
    note = notes[0]
    assert note["sub"] == "patient-1" and note["kind"] == "health.appointment_cancelled"
    assert note["dedupe_key"] == f"health.appointment_cancelled:{appt['id']}"
    assert set(note["message"]) == {"vi", "en"} and "Đau bụng" not in str(note)  # no health data


async def test_reschedule_moves_atomically_and_frees_the_old_slot(health: Health) -> None:
    _fac, _doc, slots = await health.setup_basic()
    appt = (await health.book(slots[0]["id"])).json()
    taken = (await health.book(slots[2]["id"], sub="patient-2")).json()
    headers = {**health.user("patient-1"), "Idempotency-Key": "move-1"}
    full = await health.client.post(
        f"/v1/health/appointments/{appt['id']}/reschedule",
        json={"slot_id": taken["slot_id"]},
        headers={**headers, "Idempotency-Key": "m0"},
    )
    assert full.status_code == 409 and full.json()["code"] == "slot_full"
    moved = await health.client.post(
        f"/v1/health/appointments/{appt['id']}/reschedule", json={"slot_id": slots[1]["id"]}, headers=headers
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["id"] == appt["id"] and moved.json()["slot_id"] == slots[1]["id"]
    assert moved.json()["start_at"] == slots[1]["start_at"] and moved.json()["status"] == "booked"
    replay = await health.client.post(
        f"/v1/health/appointments/{appt['id']}/reschedule", json={"slot_id": slots[1]["id"]}, headers=headers
    )
    assert replay.json()["slot_id"] == slots[1]["id"]
    async with health.app.state.db.sessionmaker() as session:
        assert (await session.get(Slot, slots[0]["id"])).booked_count == 0  # type: ignore[union-attr]
        assert (await session.get(Slot, slots[1]["id"])).booked_count == 1  # type: ignore[union-attr]
    same = await health.client.post(
        f"/v1/health/appointments/{appt['id']}/reschedule",
        json={"slot_id": slots[1]["id"]},
        headers={**headers, "Idempotency-Key": "m2"},
    )
    assert same.status_code == 422 and same.json()["errors"][0]["field"] == "body.slot_id"


async def test_waitlist_offers_a_freed_place_first_to_the_earliest_waiting_patient(health: Health) -> None:
    fac, _doc, slots = await health.setup_basic()
    slot = slots[0]
    day = datetime.fromisoformat(slot["start_at"]).astimezone(tomorrow_at(health.now(), 0).tzinfo).date()
    holder = (await health.book(slot["id"], sub="holder")).json()
    for sub in ("waiter-1", "waiter-2"):
        joined = await health.client.post(
            "/v1/health/waitlist", json={"facility_id": fac["id"], "date": day.isoformat()}, headers=health.user(sub)
        )
        assert joined.status_code == 201 and joined.json()["status"] == "waiting"
    dup = await health.client.post(
        "/v1/health/waitlist", json={"facility_id": fac["id"], "date": day.isoformat()}, headers=health.user("waiter-1")
    )
    assert dup.status_code == 409
    # Fill the rest of the day so the freed slot is the only place.
    for i, other in enumerate(s for s in slots[1:] if s["start_at"][:10] == slot["start_at"][:10]):
        await health.book(other["id"], sub=f"filler-{i}")
    await health.client.post(f"/v1/health/appointments/{holder['id']}/cancel", json={}, headers=health.user("holder"))
    offer = (await health.client.get("/v1/health/waitlist", headers=health.user("waiter-1"))).json()["items"][0]
    assert offer["status"] == "offered" and offer["offered_slot_id"] == slot["id"]
    notes = await outbox_events(health, "notification.requested")
    assert [n["sub"] for n in notes] == ["waiter-1"] and notes[0]["kind"] == "health.waitlist_offer"
    # The place is reserved for waiter-1: a stranger cannot take it, waiter-1 can.
    assert (await health.book(slot["id"], sub="stranger")).json()["code"] == "slot_full"
    # The offer lapses: it passes to waiter-2.
    health.set_now(health.now() + timedelta(minutes=16))
    await maintenance.run_once(health.app)
    second = (await health.client.get("/v1/health/waitlist", headers=health.user("waiter-2"))).json()["items"][0]
    assert second["status"] == "offered"
    first = (await health.client.get("/v1/health/waitlist", headers=health.user("waiter-1"))).json()["items"][0]
    assert first["status"] == "expired"
    booked = await health.book(slot["id"], sub="waiter-2")
    assert booked.status_code == 201, booked.text
    final = (await health.client.get("/v1/health/waitlist", headers=health.user("waiter-2"))).json()["items"][0]
    assert final["status"] == "booked"
    async with health.app.state.db.sessionmaker() as session:
        assert (await session.get(Slot, slot["id"])).booked_count == 1  # type: ignore[union-attr]


async def test_waitlist_input_is_checked(health: Health) -> None:
    fac = await health.facility(max_days_ahead=7)
    for body, field in [
        ({"facility_id": "nope", "date": "2030-01-01"}, "body.facility_id"),
        ({"facility_id": fac["id"], "date": "2001-01-01"}, "body.date"),
        ({"facility_id": fac["id"], "date": "not-a-date"}, "body.date"),
    ]:
        response = await health.client.post("/v1/health/waitlist", json=body, headers=health.user("p1"))
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == field
    other = await health.client.delete("/v1/health/waitlist/nope", headers=health.user("p1"))
    assert other.status_code == 404
