"""FHIR R4 read views, validated with the fhir.resources models (R4B package: Slot/Appointment/Bundle
are unchanged from R4 4.0.1)."""

from __future__ import annotations

from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.slot import Slot as FhirSlot

from tests.health_booking.conftest import Health


async def test_slot_search_is_a_valid_fhir_searchset_bundle(health: Health) -> None:
    fac, _doc, slots = await health.setup_basic()
    response = await health.client.get(
        "/v1/health/fhir/Slot",
        params={"facility_id": fac["id"], "_count": 5, "start": f"ge{slots[0]['start_at']}"},
        headers=health.user("p1"),
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(response.json())
    assert bundle.type == "searchset" and len(bundle.entry) == 5
    slot = FhirSlot.model_validate(response.json()["entry"][0]["resource"])
    assert slot.status == "free" and slot.id == slots[0]["id"]
    assert slot.extension[0].valueMoney.value == 150_000 and slot.extension[0].valueMoney.currency == "VND"


async def test_slot_search_by_fhir_date_prefixes(health: Health) -> None:
    fac, _doc, slots = await health.setup_basic()
    second = slots[1]["start_at"]
    response = await health.client.get(
        "/v1/health/fhir/Slot",
        params=[("facility_id", fac["id"]), ("start", f"ge{second}"), ("start", f"lt{slots[3]['start_at']}")],
        headers=health.user("p1"),
    )
    ids = [e["resource"]["id"] for e in response.json()["entry"]]
    assert ids == [slots[1]["id"], slots[2]["id"]]
    bad = await health.client.get("/v1/health/fhir/Slot", params={"start": "geyesterday"}, headers=health.user("p1"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.start"


async def test_appointment_read_is_valid_fhir_r4(health: Health) -> None:
    _fac, doc, slots = await health.setup_basic()
    appt = (await health.book(slots[0]["id"], reason="Ho kéo dài")).json()
    response = await health.client.get(f"/v1/health/fhir/Appointment/{appt['id']}", headers=health.user("patient-1"))
    assert response.status_code == 200
    resource = FhirAppointment.model_validate(response.json())
    assert resource.status == "booked" and resource.slot[0].reference == f"Slot/{slots[0]['id']}"
    actors = {p.actor.reference for p in resource.participant}
    assert actors == {"Patient/patient-1", f"Practitioner/{doc['id']}", f"Location/{appt['facility_id']}"}
    await health.client.post(f"/v1/health/appointments/{appt['id']}/cancel", json={}, headers=health.user("patient-1"))
    cancelled = FhirAppointment.model_validate(
        (await health.client.get(f"/v1/health/fhir/Appointment/{appt['id']}", headers=health.user("patient-1"))).json()
    )
    assert cancelled.status == "cancelled" and cancelled.cancelationReason is not None
    log = (await health.client.get("/v1/health/me/records/access-log", headers=health.user("patient-1"))).json()
    assert {e["what"] for e in log["items"]} == {f"fhir:Appointment/{appt['id']}"}
