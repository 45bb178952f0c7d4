"""Another agency or another person never reads or changes objects reached by their own id (BOLA)."""

from __future__ import annotations

from datetime import datetime

from tests.health_booking.conftest import OTHER_HOSPITAL, Health, tomorrow_at


async def test_another_agency_cannot_touch_schedules_closures_practitioners_or_records(health: Health) -> None:
    fac, doc, slots = await health.setup_basic()
    schedules = await health.client.get(f"/v1/health/agency/facilities/{fac['id']}/schedules", headers=health.agency())
    schedule = schedules.json()[0]
    day = datetime.fromisoformat(slots[-1]["start_at"]).astimezone(tomorrow_at(health.now(), 0).tzinfo).date()
    closure = await health.client.post(
        f"/v1/health/agency/facilities/{fac['id']}/closures",
        json={"kind": "holiday", "start_date": day.isoformat(), "end_date": day.isoformat(), "reason": "Lễ"},
        headers=health.agency(),
    )
    assert closure.status_code == 201, closure.text
    closure_id = closure.json()["closure"]["id"]
    appt = (await health.book(slots[0]["id"])).json()
    assert (
        await health.client.post(f"/v1/health/agency/appointments/{appt['id']}/arrive", headers=health.agency())
    ).status_code == 200

    rival = health.agency(OTHER_HOSPITAL)
    own = await health.facility(OTHER_HOSPITAL, name="Phòng khám khác")
    keys = (
        "practitioner_id",
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
    body = {k: schedule[k] for k in keys if schedule.get(k) is not None}
    for method, path, payload in [
        ("PUT", f"/v1/health/agency/schedules/{schedule['id']}", {**body, "capacity": 5}),
        ("DELETE", f"/v1/health/agency/schedules/{schedule['id']}", None),
        ("GET", f"/v1/health/agency/facilities/{fac['id']}/schedules", None),
        ("GET", f"/v1/health/agency/facilities/{fac['id']}/closures", None),
        ("GET", f"/v1/health/agency/facilities/{fac['id']}/conflicts", None),
        ("DELETE", f"/v1/health/agency/facilities/{fac['id']}/closures/{closure_id}", None),
        # Their own facility in the path, the victim's object id after it.
        ("DELETE", f"/v1/health/agency/facilities/{own['id']}/closures/{closure_id}", None),
        ("PATCH", f"/v1/health/agency/facilities/{own['id']}/practitioners/{doc['id']}", {"active": False}),
        ("PATCH", f"/v1/health/agency/facilities/{fac['id']}/practitioners/{doc['id']}", {"active": False}),
        ("POST", f"/v1/health/agency/appointments/{appt['id']}/records", {"title": "Forged"}),
        ("POST", f"/v1/health/agency/appointments/{appt['id']}/fulfil", None),
        ("GET", "/v1/health/agency/patients/patient-1/records", None),
    ]:
        response = await health.client.request(method, path, json=payload, headers=rival)
        assert response.status_code == 404, (method, path, response.status_code, response.text)
    # Naming the victim's practitioner on a schedule of their own facility is refused too.
    stolen = await health.client.post(
        f"/v1/health/agency/facilities/{own['id']}/schedules",
        json={**body, "capacity": 1, "practitioner_id": doc["id"]},
        headers=rival,
    )
    assert stolen.status_code == 422 and stolen.json()["errors"][0]["field"] == "body.practitioner_id"

    # Nothing changed for the owner.
    after = (
        await health.client.get(f"/v1/health/agency/facilities/{fac['id']}/schedules", headers=health.agency())
    ).json()
    assert [(s["id"], s["active"], s["capacity"]) for s in after] == [(schedule["id"], True, schedule["capacity"])]
    closures = (
        await health.client.get(f"/v1/health/agency/facilities/{fac['id']}/closures", headers=health.agency())
    ).json()
    assert [c["id"] for c in closures] == [closure_id]
    doctors = await health.client.get(
        "/v1/health/practitioners", params={"facility_id": fac["id"]}, headers=health.user("p1")
    )
    assert [d["id"] for d in doctors.json()["items"]] == [doc["id"]]
    mine = await health.client.get(f"/v1/health/appointments/{appt['id']}", headers=health.user("patient-1"))
    assert mine.json()["status"] == "arrived"
    records = await health.client.get("/v1/health/me/records", headers=health.user("patient-1"))
    assert records.status_code == 200 and records.json()["records"] == []


async def test_another_person_cannot_withdraw_my_waitlist_entry(health: Health) -> None:
    fac, _doc, slots = await health.setup_basic()
    day = datetime.fromisoformat(slots[0]["start_at"]).astimezone(tomorrow_at(health.now(), 0).tzinfo).date()
    joined = await health.client.post(
        "/v1/health/waitlist", json={"facility_id": fac["id"], "date": day.isoformat()}, headers=health.user("waiter-1")
    )
    assert joined.status_code == 201, joined.text
    entry = joined.json()
    stranger = await health.client.delete(f"/v1/health/waitlist/{entry['id']}", headers=health.user("waiter-2"))
    assert stranger.status_code == 404
    assert (await health.client.get("/v1/health/waitlist", headers=health.user("waiter-2"))).json()["items"] == []
    mine = (await health.client.get("/v1/health/waitlist", headers=health.user("waiter-1"))).json()["items"]
    assert [(e["id"], e["status"]) for e in mine] == [(entry["id"], "waiting")]
