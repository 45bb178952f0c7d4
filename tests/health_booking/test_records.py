"""Visit records: attached by the treating facility, read by the patient, every read in the access log."""

from __future__ import annotations

import logging

from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError

from services.health_booking.records.models import RecordAccess
from tests.health_booking.conftest import OTHER_HOSPITAL, Health

SUMMARY = {
    "kind": "visit_summary",
    "title": "Khám nhi",
    "summary": "Viêm họng cấp, kê kháng sinh 5 ngày.",
    "diagnosis_codes": ["J02.9"],
    "documents": [
        {"title": "Đơn thuốc", "content_type": "application/pdf", "url": "https://bv.danang.gov.vn/docs/rx-1.pdf"}
    ],
}


async def visited(health: Health, sub: str = "patient-1") -> dict:
    _fac, _doc, slots = await health.setup_basic()
    appt = (await health.book(slots[0]["id"], sub=sub)).json()
    arrived = await health.client.post(f"/v1/health/agency/appointments/{appt['id']}/arrive", headers=health.agency())
    assert arrived.status_code == 200
    return appt


async def test_facility_attaches_a_visit_summary_and_the_patient_reads_it(health: Health) -> None:
    appt = await visited(health)
    attached = await health.client.post(
        f"/v1/health/agency/appointments/{appt['id']}/records", json=SUMMARY, headers=health.agency()
    )
    assert attached.status_code == 201, attached.text
    mine = await health.client.get("/v1/health/me/records", headers=health.user("patient-1"))
    assert mine.status_code == 200
    body = mine.json()
    assert body["patient_id"] == "patient-1" and [a["id"] for a in body["appointments"]] == [appt["id"]]
    assert body["records"][0]["summary"] == SUMMARY["summary"] and body["records"][0]["diagnosis_codes"] == ["J02.9"]
    log = await health.client.get("/v1/health/me/records/access-log", headers=health.user("patient-1"))
    assert [(e["accessor"], e["accessor_role"], e["what"]) for e in log.json()["items"]] == [
        ("patient-1", "patient", "records")
    ]


async def test_records_only_after_arrival_and_only_by_the_treating_facility(health: Health) -> None:
    _fac, _doc, slots = await health.setup_basic()
    appt = (await health.book(slots[0]["id"])).json()
    early = await health.client.post(
        f"/v1/health/agency/appointments/{appt['id']}/records", json=SUMMARY, headers=health.agency()
    )
    assert early.status_code == 409 and early.json()["code"] == "visit_not_started"
    await health.client.post(f"/v1/health/agency/appointments/{appt['id']}/arrive", headers=health.agency())
    other = await health.client.post(
        f"/v1/health/agency/appointments/{appt['id']}/records", json=SUMMARY, headers=health.agency(OTHER_HOSPITAL)
    )
    assert other.status_code == 404
    wrong_scope = await health.client.post(
        f"/v1/health/agency/appointments/{appt['id']}/records",
        json=SUMMARY,
        headers=health.agency(scopes=["health.schedules.write"]),
    )
    assert wrong_scope.status_code == 403
    bad = await health.client.post(
        f"/v1/health/agency/appointments/{appt['id']}/records",
        json={**SUMMARY, "documents": [{"title": "x", "content_type": "pdf", "url": "http://insecure"}]},
        headers=health.agency(),
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"body.documents.0.content_type", "body.documents.0.url"}
    mine = await health.client.get("/v1/health/me/records", headers=health.user("patient-1"))
    assert mine.json()["records"] == []


async def test_treating_facility_reads_its_patient_records_and_the_read_is_logged(health: Health) -> None:
    appt = await visited(health)
    await health.client.post(
        f"/v1/health/agency/appointments/{appt['id']}/records", json=SUMMARY, headers=health.agency()
    )
    read = await health.client.get("/v1/health/agency/patients/patient-1/records", headers=health.agency())
    assert read.status_code == 200 and len(read.json()["records"]) == 1
    stranger = await health.client.get(
        "/v1/health/agency/patients/patient-1/records", headers=health.agency(OTHER_HOSPITAL)
    )
    assert stranger.status_code == 404
    log = (await health.client.get("/v1/health/me/records/access-log", headers=health.user("patient-1"))).json()
    assert [(e["accessor"], e["accessor_role"]) for e in log["items"]] == [("demo-hospital", "facility")]
    assert log["items"][0]["facility_id"] == appt["facility_id"]


async def test_other_people_cannot_read_records(health: Health) -> None:
    appt = await visited(health)
    await health.client.post(
        f"/v1/health/agency/appointments/{appt['id']}/records", json=SUMMARY, headers=health.agency()
    )
    stranger = await health.client.get("/v1/health/me/records", headers=health.user("patient-2"))
    assert stranger.json()["records"] == [] and stranger.json()["appointments"] == []
    wrong_scope = await health.client.get("/v1/health/me/records", headers=health.user("patient-1", ("parking",)))
    assert wrong_scope.status_code == 403
    agency_token = await health.client.get("/v1/health/me/records", headers=health.agency())
    assert agency_token.status_code == 403


async def test_the_access_log_is_append_only(health: Health) -> None:
    await visited(health)
    await health.client.get("/v1/health/me/records", headers=health.user("patient-1"))
    async with health.app.state.db.sessionmaker() as session:
        try:
            await session.execute(update(RecordAccess).values(accessor="someone-else"))
            await session.commit()
            raised = False
        except DBAPIError:
            raised = True
    assert raised
    log = (await health.client.get("/v1/health/me/records/access-log", headers=health.user("patient-1"))).json()
    assert log["items"][0]["accessor"] == "patient-1"


async def test_health_data_never_reaches_the_logs(health: Health, caplog, capfd) -> None:
    caplog.set_level(logging.INFO)  # the platform default; DEBUG drivers echo SQL parameters
    appt = await visited(health)
    await health.client.post(
        f"/v1/health/agency/appointments/{appt['id']}/records", json=SUMMARY, headers=health.agency()
    )
    # Also a refused write carrying health data: the problem response and logs must not echo it.
    refused = await health.client.post(
        f"/v1/health/agency/appointments/{appt['id']}/records",
        json={**SUMMARY, "kind": "Viêm họng"},
        headers=health.agency(),
    )
    assert refused.status_code == 422 and "Viêm họng" not in refused.text
    await health.client.get("/v1/health/me/records", headers=health.user("patient-1"))
    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    assert "Viêm họng" not in logged and "J02.9" not in logged


async def test_profile_without_identity_data_names_the_field(health: Health) -> None:
    bad = await health.client.put(
        "/v1/health/me/profile", json={"bhyt_number": "12345", "citizen_id": "1"}, headers=health.user("patient-1")
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"body.bhyt_number", "body.citizen_id"}
    empty = await health.client.get("/v1/health/me/profile", headers=health.user("patient-1"))
    assert empty.json()["bhyt_number"] is None
    async with health.app.state.db.sessionmaker() as session:
        assert (await session.execute(text("SELECT count(*) FROM health_profiles"))).scalar_one() == 0
