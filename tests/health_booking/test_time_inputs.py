"""Times a facility or patient types: a 422 naming the field, never a 500 (found on PostgreSQL)."""

from __future__ import annotations

from tests.health_booking.conftest import Health


async def test_naive_and_out_of_range_times_in_searches_are_422(health: Health) -> None:
    fac, _doc, _slots = await health.setup_basic()
    day_list = f"/v1/health/agency/facilities/{fac['id']}/appointments"
    for raw in ("2030-01-01T08:00:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"):
        for name in ("from", "to"):
            response = await health.client.get(day_list, params={name: raw}, headers=health.agency())
            assert response.status_code == 422, (name, raw, response.text)
            assert response.json()["errors"][0]["field"] == f"query.{name}"
            slots = await health.client.get("/v1/health/slots", params={name: raw}, headers=health.user("p1"))
            assert slots.status_code == 422 and slots.json()["errors"][0]["field"] == f"query.{name}"
    for raw in ("ge0001-01-01T00:00:00+14:00", "lt9999-12-31T23:59:59-12:00", "eq0001-01-01"):
        fhir = await health.client.get("/v1/health/fhir/Slot", params={"start": raw}, headers=health.user("p1"))
        assert fhir.status_code == 422, (raw, fhir.text)
        assert fhir.json()["errors"][0]["field"] == "query.start"
    ok = await health.client.get(day_list, params={"from": "2030-01-01T08:00:00+07:00"}, headers=health.agency())
    assert ok.status_code == 200
