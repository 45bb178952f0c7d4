"""Schedules → slots through the agency API; changes never silently drop bookings; slot search."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.health_booking import maintenance
from services.health_booking.common import LOCAL_TZ, local_date
from tests.health_booking.conftest import Health, tomorrow_at


def local_hhmm(slot: dict) -> str:
    return datetime.fromisoformat(slot["start_at"]).astimezone(LOCAL_TZ).strftime("%H:%M")


async def test_slots_are_derived_in_da_nang_time_with_breaks(health: Health) -> None:
    fac = await health.facility()
    doc = await health.practitioner(fac["id"])
    change = await health.schedule(
        fac["id"],
        practitioner_id=doc["id"],
        start_time="07:30",
        end_time="11:30",
        breaks=[{"start": "09:30", "end": "10:00"}],
        slot_minutes=60,
    )
    assert change["slots_created"] > 0 and change["conflicts"] == []
    day = tomorrow_at(health.now(), 0)
    slots = await health.slots(facility_id=fac["id"], to=(day + timedelta(days=1)).isoformat())
    assert [local_hhmm(s) for s in slots] == ["07:30", "08:30", "10:00"]
    assert {s["fee_vnd"] for s in slots} == {150_000}
    assert slots[0]["practitioner_name"] == doc["name"] and slots[0]["languages"] == ["vi", "en"]
    assert slots[0]["start_at"].endswith("Z") or slots[0]["start_at"].endswith("+00:00")


async def test_horizon_notice_and_search_filters(health: Health) -> None:
    fac = await health.facility(max_days_ahead=3, min_notice_minutes=24 * 60)
    doc = await health.practitioner(fac["id"], languages=["vi"])
    await health.schedule(fac["id"], practitioner_id=doc["id"])
    await health.schedule(
        fac["id"], service_name="Tiêm chủng", specialty="vaccination", capacity=20, fee_vnd=0, mode="in_person"
    )
    everything = await health.slots(facility_id=fac["id"], limit=200, **{"from": health.now().isoformat()})
    starts = [datetime.fromisoformat(s["start_at"]) for s in everything]
    assert min(starts) >= health.now() + timedelta(hours=24)  # minimum notice
    assert max(starts) <= health.now() + timedelta(days=3)  # booking horizon
    vaccination = await health.slots(facility_id=fac["id"], specialty="vaccination")
    assert vaccination and all(s["capacity"] == 20 and s["practitioner_id"] is None for s in vaccination)
    assert await health.slots(facility_id=fac["id"], language="en") == []
    assert await health.slots(facility_id=fac["id"], mode="telemedicine") == []
    by_doc = await health.slots(practitioner_id=doc["id"])
    assert by_doc and {s["practitioner_id"] for s in by_doc} == {doc["id"]}


async def test_slot_search_pages_with_a_cursor(health: Health) -> None:
    fac, _doc, _ = await health.setup_basic()
    first = await health.client.get(
        "/v1/health/slots", params={"facility_id": fac["id"], "limit": 4}, headers=health.user("p1")
    )
    page = first.json()
    assert len(page["items"]) == 4 and page["next_cursor"]
    second = await health.client.get(
        "/v1/health/slots",
        params={"facility_id": fac["id"], "limit": 4, "cursor": page["next_cursor"]},
        headers=health.user("p1"),
    )
    assert second.json()["items"][0]["start_at"] > page["items"][-1]["start_at"]
    bad = await health.client.get("/v1/health/slots", params={"cursor": "garbage!"}, headers=health.user("p1"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.cursor"
    naive = await health.client.get(
        "/v1/health/slots", params={"from": "2030-01-01T08:00:00"}, headers=health.user("p1")
    )
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "query.from"


async def test_changing_a_schedule_reports_booked_slots_instead_of_dropping_them(health: Health) -> None:
    fac = await health.facility()
    doc = await health.practitioner(fac["id"])
    created = await health.schedule(fac["id"], practitioner_id=doc["id"])
    schedule = created["schedule"]
    slots = await health.slots(facility_id=fac["id"])
    booked_slot = next(s for s in slots if local_hhmm(s) == "10:30")
    appt = (await health.book(booked_slot["id"])).json()
    assert appt["status"] == "booked"

    body = {
        k: schedule[k]
        for k in (
            "practitioner_id",
            "specialty",
            "mode",
            "weekdays",
            "slot_minutes",
            "capacity",
            "fee_vnd",
            "valid_from",
        )
    }
    changed = await health.client.put(
        f"/v1/health/agency/schedules/{schedule['id']}",
        json={**body, "start_time": "08:00", "end_time": "10:00"},
        headers=health.agency(),
    )
    assert changed.status_code == 200, changed.text
    conflicts = changed.json()["conflicts"]
    assert [c["appointment_ids"] for c in conflicts] == [[appt["id"]]]
    assert conflicts[0]["reason"] == "removed" and changed.json()["slots_removed"] > 0
    # The appointment is untouched; its slot is no longer offered.
    mine = await health.client.get(f"/v1/health/appointments/{appt['id']}", headers=health.user("patient-1"))
    assert mine.json()["status"] == "booked"
    assert all(local_hhmm(s) < "10:00" for s in await health.slots(facility_id=fac["id"]))
    # The facility can list what is still to resolve; cancelling the appointment resolves it.
    path = f"/v1/health/agency/facilities/{fac['id']}/conflicts"
    still = await health.client.get(path, headers=health.agency())
    assert [c["appointment_ids"] for c in still.json()] == [[appt["id"]]]
    await health.client.post(
        f"/v1/health/agency/appointments/{appt['id']}/cancel", json={"reason": "Đổi lịch"}, headers=health.agency()
    )
    assert (await health.client.get(path, headers=health.agency())).json() == []


async def test_lowering_capacity_below_bookings_is_reported(health: Health) -> None:
    fac = await health.facility()
    created = await health.schedule(
        fac["id"], service_name="Tiêm chủng", specialty="vaccination", capacity=3, fee_vnd=0
    )
    slot = (await health.slots(facility_id=fac["id"]))[0]
    for n in range(2):
        assert (await health.book(slot["id"], sub=f"kid-{n}")).status_code == 201
    schedule = created["schedule"]
    body = {
        k: schedule[k]
        for k in (
            "service_name",
            "specialty",
            "mode",
            "weekdays",
            "start_time",
            "end_time",
            "slot_minutes",
            "fee_vnd",
            "valid_from",
        )
    }
    changed = await health.client.put(
        f"/v1/health/agency/schedules/{schedule['id']}", json={**body, "capacity": 1}, headers=health.agency()
    )
    over = [c for c in changed.json()["conflicts"] if c["slot_id"] == slot["id"]]
    assert over and over[0]["reason"] == "over_capacity" and len(over[0]["appointment_ids"]) == 2
    assert (await health.book(slot["id"], sub="kid-9")).json()["code"] == "slot_full"


async def test_closures_remove_free_slots_report_booked_ones_and_reopen(health: Health) -> None:
    fac, _doc, slots = await health.setup_basic()
    day_after = local_date(tomorrow_at(health.now(), 0, days=2))
    target = next(s for s in slots if local_date(datetime.fromisoformat(s["start_at"])) == day_after)
    appt = (await health.book(target["id"])).json()
    closure = await health.client.post(
        f"/v1/health/agency/facilities/{fac['id']}/closures",
        json={
            "kind": "holiday",
            "start_date": day_after.isoformat(),
            "end_date": day_after.isoformat(),
            "reason": "Ngày lễ",
        },
        headers=health.agency(),
    )
    assert closure.status_code == 201
    assert [c["appointment_ids"] for c in closure.json()["conflicts"]] == [[appt["id"]]]
    assert closure.json()["conflicts"][0]["reason"] == "closed"
    remaining = await health.slots(facility_id=fac["id"], limit=200)
    assert not [s for s in remaining if local_date(datetime.fromisoformat(s["start_at"])) == day_after]
    reopened = await health.client.delete(
        f"/v1/health/agency/facilities/{fac['id']}/closures/{closure.json()['closure']['id']}", headers=health.agency()
    )
    assert reopened.status_code == 204
    again = await health.slots(facility_id=fac["id"], limit=200)
    assert len([s for s in again if local_date(datetime.fromisoformat(s["start_at"])) == day_after]) == 5


async def test_deactivating_a_schedule_and_rolling_the_horizon(health: Health) -> None:
    fac = await health.facility(max_days_ahead=2)
    created = await health.schedule(fac["id"], service_name="Khám tổng quát", specialty="general")
    before = await health.slots(facility_id=fac["id"], limit=200, **{"from": health.now().isoformat()})
    # A day later the maintenance loop derives one more day.
    health.set_now(health.now() + timedelta(days=1))
    counts = await maintenance.run_once(health.app)
    assert counts["schedules_rolled"] == 1
    later = await health.slots(facility_id=fac["id"], limit=200, **{"from": health.now().isoformat()})
    assert max(s["start_at"] for s in later) > max(s["start_at"] for s in before)
    stopped = await health.client.delete(
        f"/v1/health/agency/schedules/{created['schedule']['id']}", headers=health.agency()
    )
    assert stopped.status_code == 200 and stopped.json()["schedule"]["active"] is False
    assert await health.slots(facility_id=fac["id"]) == []


async def test_bad_schedule_input_names_the_field_and_stores_nothing(health: Health) -> None:
    fac = await health.facility()
    other = await health.facility(name="Phòng khám khác")
    stranger = await health.practitioner(other["id"])
    base = {
        "service_name": "Khám",
        "specialty": "general",
        "weekdays": [0],
        "start_time": "08:00",
        "end_time": "11:00",
        "slot_minutes": 30,
        "fee_vnd": 100000,
        "valid_from": "2030-01-01",
    }
    cases = [
        ({"start_time": "25:00"}, "body.start_time"),
        ({"slot_minutes": 2}, "body.slot_minutes"),
        ({"fee_vnd": -1}, "body.fee_vnd"),
        ({"capacity": 0}, "body.capacity"),
        ({"end_time": "07:00"}, "body"),
        ({"breaks": [{"start": "12:00", "end": "13:00"}]}, "body"),
        ({"practitioner_id": stranger["id"]}, "body.practitioner_id"),
        ({"specialty": "Pediatrics!"}, "body.specialty"),
    ]
    for override, field in cases:
        response = await health.client.post(
            f"/v1/health/agency/facilities/{fac['id']}/schedules", json={**base, **override}, headers=health.agency()
        )
        assert response.status_code == 422, override
        assert field in [e["field"] for e in response.json()["errors"]], (override, response.json())
    listed = await health.client.get(f"/v1/health/agency/facilities/{fac['id']}/schedules", headers=health.agency())
    assert listed.json() == []
