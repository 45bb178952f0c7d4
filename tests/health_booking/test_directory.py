"""Directory: facilities manage their own entries; residents and tourists search them."""

from __future__ import annotations

from sqlalchemy import func, select

from services.health_booking.directory.models import Facility
from tests.health_booking.conftest import HOSPITAL, OTHER_HOSPITAL, Health


async def count_facilities(health: Health) -> int:
    async with health.app.state.db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Facility)) or 0)


async def test_agency_creates_facility_practitioner_and_department(health: Health) -> None:
    fac = await health.facility()
    dept = await health.client.post(
        f"/v1/health/agency/facilities/{fac['id']}/departments",
        json={"name": "Khoa Nhi", "specialty": "pediatrics"},
        headers=health.agency(),
    )
    assert dept.status_code == 201
    doc = await health.practitioner(fac["id"], department_id=dept.json()["id"])
    assert doc["languages"] == ["vi", "en"] and doc["department_id"] == dept.json()["id"]
    mine = await health.client.get("/v1/health/agency/facilities", headers=health.agency())
    assert [f["id"] for f in mine.json()["items"]] == [fac["id"]]
    departments = await health.client.get(f"/v1/health/facilities/{fac['id']}/departments", headers=health.user("p1"))
    assert departments.json()[0]["name"] == "Khoa Nhi"


async def test_a_facility_never_touches_another_facilitys_data(health: Health) -> None:
    fac = await health.facility(HOSPITAL)
    other = health.agency(OTHER_HOSPITAL)
    for method, path, body in [
        ("PATCH", f"/v1/health/agency/facilities/{fac['id']}", {"name": "Hijacked"}),
        (
            "POST",
            f"/v1/health/agency/facilities/{fac['id']}/practitioners",
            {"name": "Dr X", "specialties": ["pediatrics"]},
        ),
        (
            "POST",
            f"/v1/health/agency/facilities/{fac['id']}/schedules",
            {
                "specialty": "pediatrics",
                "service_name": "Khám",
                "weekdays": [0],
                "start_time": "08:00",
                "end_time": "09:00",
                "slot_minutes": 30,
                "fee_vnd": 0,
                "valid_from": "2025-01-01",
            },
        ),
        ("GET", f"/v1/health/agency/facilities/{fac['id']}/appointments", None),
        (
            "POST",
            f"/v1/health/agency/facilities/{fac['id']}/closures",
            {"start_date": "2030-01-01", "end_date": "2030-01-01", "reason": "Tết"},
        ),
    ]:
        response = await health.client.request(method, path, json=body, headers=other)
        assert response.status_code == 404, (path, response.text)
    assert (await health.client.get("/v1/health/agency/facilities", headers=other)).json()["items"] == []
    unchanged = await health.client.get(f"/v1/health/facilities/{fac['id']}", headers=health.user("p1"))
    assert unchanged.json()["name"] == "Bệnh viện Đà Nẵng"


async def test_agency_endpoints_need_the_agency_scope_and_a_client_token(health: Health) -> None:
    body = {"name": "Clinic", "kind": "clinic", "address": "1 Lê Duẩn", "lat": 16.07, "lon": 108.22}
    as_user = await health.client.post(
        "/v1/health/agency/facilities", json=body, headers=health.user("p1", ("health", "health.schedules.write"))
    )
    assert as_user.status_code == 403 and as_user.json()["code"] == "client_token_required"
    no_scope = await health.client.post(
        "/v1/health/agency/facilities", json=body, headers=health.agency(HOSPITAL, ["health.records.write"])
    )
    assert no_scope.status_code == 403 and no_scope.json()["code"] == "insufficient_scope"
    anonymous = await health.client.post("/v1/health/agency/facilities", json=body)
    assert anonymous.status_code == 401
    assert await count_facilities(health) == 0


async def test_bad_facility_input_names_the_field_and_stores_nothing(health: Health) -> None:
    cases = [
        ({"kind": "spa"}, "body.kind"),
        ({"lat": 123.0}, "body.lat"),
        ({"hours": [{"weekday": 7, "open": "07:00", "close": "17:00"}]}, "body.hours.0.weekday"),
        ({"hours": [{"weekday": 1, "open": "17:00", "close": "07:00"}]}, "body.hours.0"),
        ({"max_days_ahead": 0}, "body.max_days_ahead"),
        ({"late_cancel_refund_percent": 101}, "body.late_cancel_refund_percent"),
    ]
    for override, field in cases:
        body = {"name": "Clinic", "kind": "clinic", "address": "1 Lê Duẩn", "lat": 16.07, "lon": 108.22, **override}
        response = await health.client.post("/v1/health/agency/facilities", json=body, headers=health.agency())
        assert response.status_code == 422, override
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert await count_facilities(health) == 0


async def test_search_by_specialty_language_and_distance(health: Health) -> None:
    near = await health.facility(name="Trạm y tế Hải Châu", kind="health_station", lat=16.0600, lon=108.2200)
    far = await health.facility(name="Bệnh viện Hòa Vang", lat=15.9900, lon=108.1200)
    await health.practitioner(near["id"], specialties=["general"], languages=["vi"])
    await health.practitioner(far["id"], specialties=["pediatrics"], languages=["vi", "en", "ko"])
    user = health.user("tourist-1")

    english = await health.client.get("/v1/health/facilities", params={"language": "en"}, headers=user)
    assert [f["name"] for f in english.json()["items"]] == ["Bệnh viện Hòa Vang"]
    peds = await health.client.get("/v1/health/practitioners", params={"specialty": "pediatrics"}, headers=user)
    assert [p["facility_id"] for p in peds.json()["items"]] == [far["id"]]
    by_distance = await health.client.get("/v1/health/facilities", params={"near": "16.0544,108.2022"}, headers=user)
    items = by_distance.json()["items"]
    assert [f["id"] for f in items] == [near["id"], far["id"]]
    assert 1 < items[0]["distance_km"] < 3 and items[1]["distance_km"] > 10
    within = await health.client.get(
        "/v1/health/facilities", params={"near": "16.0544,108.2022", "radius_km": 5}, headers=user
    )
    assert [f["id"] for f in within.json()["items"]] == [near["id"]]
    stations = await health.client.get("/v1/health/facilities", params={"kind": "health_station"}, headers=user)
    assert [f["id"] for f in stations.json()["items"]] == [near["id"]]
    bad = await health.client.get("/v1/health/facilities", params={"near": "north"}, headers=user)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.near"


async def test_practitioner_update_and_deactivation(health: Health) -> None:
    fac = await health.facility()
    doc = await health.practitioner(fac["id"])
    path = f"/v1/health/agency/facilities/{fac['id']}/practitioners/{doc['id']}"
    response = await health.client.patch(path, json={"languages": ["vi", "en", "fr"]}, headers=health.agency())
    assert response.json()["languages"] == ["vi", "en", "fr"]
    await health.client.patch(path, json={"active": False}, headers=health.agency())
    listed = await health.client.get("/v1/health/practitioners", headers=health.user("p1"))
    assert listed.json()["items"] == []
    bad = await health.client.patch(path, json={"languages": ["english"]}, headers=health.agency())
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].startswith("body.languages")


async def test_directory_and_slots_are_browsable_without_signing_in(health: Health) -> None:
    fac, _doc, _slots = await health.setup_basic()
    await health.schedule(fac["id"], service_name="Tiêm chủng", specialty="vaccination", capacity=10, fee_vnd=0)
    for path in (
        "/v1/health/facilities",
        f"/v1/health/facilities/{fac['id']}",
        "/v1/health/practitioners",
        "/v1/health/slots",
        "/v1/health/fhir/Slot",
        f"/v1/health/facilities/{fac['id']}/departments",
    ):
        response = await health.client.get(path)
        assert response.status_code == 200, path
    specialties = await health.client.get("/v1/health/specialties")
    assert specialties.json()["items"] == [
        {"code": "pediatrics", "facilities": 1},
        {"code": "vaccination", "facilities": 1},
    ]
    missing = await health.client.get("/v1/health/facilities/nope")
    assert missing.status_code == 404 and missing.json()["code"] == "facility_not_found"
