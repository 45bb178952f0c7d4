"""Operators manage their own lots; people search near a point and see availability with a quote."""

from __future__ import annotations

from datetime import timedelta

import httpx

from services.parking.lots.schemas import LotSearchPage
from tests.helpers.tokens import TokenFactory
from tests.parking.conftest import CAR_DAY_NIGHT, MOTORBIKE_DAY_NIGHT, Operator, tomorrow_at


async def test_operator_builds_a_lot(operator: Operator) -> None:
    lot = await operator.lot(
        spaces=3,
        accessible=1,
        pools={"motorbike": 200},
        rates={"car": CAR_DAY_NIGHT, "motorbike": MOTORBIKE_DAY_NIGHT},
        opens_at="05:00:00",
        closes_at="23:00:00",
        photo_url="https://example.org/lot.jpg",
    )
    assert lot["operator_id"] == "demo-parking-operator"
    assert [s["label"] for s in lot["spaces"]] == ["A000", "A001", "A002"]
    assert [s["accessible"] for s in lot["spaces"]] == [True, False, False]
    assert lot["pools"][0]["capacity"] == 200
    assert {r["vehicle_type"] for r in lot["rates"]} == {"car", "motorbike"}
    listed = await operator.client.get("/v1/parking/operator/lots", headers=operator.headers)
    assert [x["id"] for x in listed.json()["items"]] == [lot["id"]]


async def test_operator_never_sees_or_changes_another_operators_lot(
    parking: httpx.AsyncClient, operator: Operator, tokens: TokenFactory
) -> None:
    lot = await operator.lot(spaces=1)
    rival = Operator(parking, tokens, "rival-operator")
    assert (await parking.get(f"/v1/parking/operator/lots/{lot['id']}", headers=rival.headers)).status_code == 404
    r = await parking.patch(f"/v1/parking/operator/lots/{lot['id']}", headers=rival.headers, json={"name": "Mine"})
    assert r.status_code == 404
    r = await parking.post(
        f"/v1/parking/operator/lots/{lot['id']}/spaces", headers=rival.headers, json={"spaces": [{"label": "X1"}]}
    )
    assert r.status_code == 404
    r = await parking.put(f"/v1/parking/operator/lots/{lot['id']}/rates/car", headers=rival.headers, json=CAR_DAY_NIGHT)
    assert r.status_code == 404
    r = await parking.get(f"/v1/parking/operator/lots/{lot['id']}/reservations", headers=rival.headers)
    assert r.status_code == 404
    assert (await parking.get("/v1/parking/operator/lots", headers=rival.headers)).json()["items"] == []
    unchanged = await parking.get(f"/v1/parking/operator/lots/{lot['id']}", headers=operator.headers)
    assert unchanged.json()["name"] == lot["name"] and len(unchanged.json()["spaces"]) == 1


async def test_operator_api_needs_an_agency_token_with_the_scope(
    parking: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    body = {"name": "x", "address": "y", "lat": 16, "lon": 108}
    person = tokens.bearer(tokens.user("u1", ["parking", "parking.lots.write"]))
    assert (await parking.post("/v1/parking/operator/lots", headers=person, json=body)).status_code == 403
    no_scope = tokens.bearer(tokens.client("demo-parking-operator", ["payments.write"]))
    assert (await parking.post("/v1/parking/operator/lots", headers=no_scope, json=body)).status_code == 403
    assert (await parking.post("/v1/parking/operator/lots", json=body)).status_code == 401


async def test_operator_bad_input_names_the_field(operator: Operator) -> None:
    client, h = operator.client, operator.headers
    r = await client.post(
        "/v1/parking/operator/lots", headers=h, json={"name": "x", "address": "y", "lat": 95, "lon": 108}
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["field"] == "body.lat"
    lot = await operator.lot(spaces=1)
    r = await client.put(f"/v1/parking/operator/lots/{lot['id']}/rates/car", headers=h, json={"mode": "hourly"})
    assert r.status_code == 422
    r = await client.put(
        f"/v1/parking/operator/lots/{lot['id']}/rates/car",
        headers=h,
        json={"mode": "hourly", "hourly_tiers": [{"from_hour": 1, "price_per_hour_vnd": 1}]},
    )
    assert r.status_code == 422
    r = await client.post(
        f"/v1/parking/operator/lots/{lot['id']}/spaces", headers=h, json={"spaces": [{"label": "A000"}]}
    )
    assert r.status_code == 409 and r.json()["code"] == "space_label_taken"
    r = await client.post(
        f"/v1/parking/operator/lots/{lot['id']}/pools", headers=h, json={"vehicle_type": "car", "capacity": 10}
    )
    assert r.status_code == 409 and r.json()["code"] == "inventory_kind_conflict"
    r = await client.get(f"/v1/parking/operator/lots/{lot['id']}", headers=h)
    assert len(r.json()["spaces"]) == 1 and r.json()["pools"] == [] and r.json()["rates"] == []


async def test_search_nearest_first_with_free_places_and_a_quote(
    parking: httpx.AsyncClient, operator: Operator, person
) -> None:  # type: ignore[no-untyped-def]
    near = await operator.lot(name="Near", lat=16.0600, lon=108.2200, spaces=2, rates={"car": CAR_DAY_NIGHT})
    far = await operator.lot(name="Far", lat=16.0700, lon=108.2200, spaces=1, rates={"car": CAR_DAY_NIGHT})
    await operator.lot(name="Too far", lat=16.2000, lon=108.2200, spaces=1, rates={"car": CAR_DAY_NIGHT})
    await operator.lot(
        name="No cars", lat=16.0601, lon=108.2200, pools={"motorbike": 10}, rates={"motorbike": MOTORBIKE_DAY_NIGHT}
    )
    start, end = tomorrow_at(20), tomorrow_at(23)
    params = {
        "lat": 16.0600,
        "lon": 108.2201,
        "radius_m": 3000,
        "vehicle_type": "car",
        "start_at": start.isoformat(),
        "end_at": end.isoformat(),
    }
    r = await parking.get("/v1/parking/lots", params=params, headers=person("u1"))
    assert r.status_code == 200, r.text
    assert LotSearchPage.model_validate_json(r.text).model_dump_json() == r.text  # the declared shape, exactly
    items = r.json()["items"]
    assert [i["id"] for i in items] == [near["id"], far["id"]]
    assert items[0]["distance_m"] < items[1]["distance_m"]
    assert items[0]["free"] == 2 and items[0]["kind"] == "spaces"
    assert items[0]["quote"]["amount_vnd"] == 80_000  # day visit + night visit
    page = await parking.get("/v1/parking/lots", params={**params, "limit": 1}, headers=person("u1"))
    assert [i["id"] for i in page.json()["items"]] == [near["id"]]
    rest = await parking.get(
        "/v1/parking/lots", params={**params, "limit": 1, "cursor": page.json()["next_cursor"]}, headers=person("u1")
    )
    assert [i["id"] for i in rest.json()["items"]] == [far["id"]] and rest.json()["next_cursor"] is None


async def test_search_skips_lots_closed_for_the_window(parking: httpx.AsyncClient, operator: Operator, person) -> None:  # type: ignore[no-untyped-def]
    await operator.lot(spaces=1, rates={"car": CAR_DAY_NIGHT}, opens_at="06:00:00", closes_at="22:00:00")
    params = {"lat": 16.0613, "lon": 108.2270, "vehicle_type": "car"}
    late = await parking.get(
        "/v1/parking/lots",
        headers=person("u1"),
        params={**params, "start_at": tomorrow_at(21).isoformat(), "end_at": tomorrow_at(23).isoformat()},
    )
    assert late.json()["items"] == []
    day = await parking.get(
        "/v1/parking/lots",
        headers=person("u1"),
        params={**params, "start_at": tomorrow_at(9).isoformat(), "end_at": tomorrow_at(11).isoformat()},
    )
    assert len(day.json()["items"]) == 1


async def test_search_bad_input_names_the_field(parking: httpx.AsyncClient, person) -> None:  # type: ignore[no-untyped-def]
    base = {"lat": 16.06, "lon": 108.22, "vehicle_type": "car"}
    cases = [
        ({**base, "start_at": tomorrow_at(10).isoformat(), "end_at": tomorrow_at(9).isoformat()}, "query.end_at"),
        (
            {**base, "start_at": tomorrow_at(10, days=-3).isoformat(), "end_at": tomorrow_at(11, days=-3).isoformat()},
            "query.start_at",
        ),
        (
            {
                **base,
                "start_at": tomorrow_at(10).isoformat(),
                "end_at": (tomorrow_at(10) + timedelta(days=5)).isoformat(),
            },
            "query.end_at",
        ),
        (
            {
                **base,
                "vehicle_type": "tank",
                "start_at": tomorrow_at(10).isoformat(),
                "end_at": tomorrow_at(11).isoformat(),
            },
            "query.vehicle_type",
        ),
        (
            {**base, "radius_m": 0, "start_at": tomorrow_at(10).isoformat(), "end_at": tomorrow_at(11).isoformat()},
            "query.radius_m",
        ),
    ]
    for params, field in cases:
        r = await parking.get("/v1/parking/lots", params=params, headers=person("u1"))
        assert r.status_code == 422, (field, r.text)
        assert field in [e["field"] for e in r.json()["errors"]]


async def test_availability_lists_free_numbered_spaces(parking: httpx.AsyncClient, operator: Operator, person) -> None:  # type: ignore[no-untyped-def]
    lot = await operator.lot(spaces=3, accessible=1, rates={"car": CAR_DAY_NIGHT})
    r = await parking.get(
        f"/v1/parking/lots/{lot['id']}/availability",
        headers=person("u1"),
        params={"vehicle_type": "car", "start_at": tomorrow_at(8).isoformat(), "end_at": tomorrow_at(10).isoformat()},
    )
    body = r.json()
    assert body["kind"] == "spaces" and body["total"] == 3 and body["free"] == 3
    assert {s["label"] for s in body["free_spaces"]} == {"A000", "A001", "A002"}
    assert body["quote"]["amount_vnd"] == 30_000
    assert (
        await parking.get(
            "/v1/parking/lots/nope/availability",
            headers=person("u1"),
            params={
                "vehicle_type": "car",
                "start_at": tomorrow_at(8).isoformat(),
                "end_at": tomorrow_at(10).isoformat(),
            },
        )
    ).status_code == 404


async def test_search_and_quotes_are_public_for_visitors(parking: httpx.AsyncClient, operator: Operator) -> None:
    lot = await operator.lot(spaces=1, rates={"car": CAR_DAY_NIGHT})
    window = {"start_at": tomorrow_at(21).isoformat(), "end_at": tomorrow_at(23).isoformat()}
    found = await parking.get(
        "/v1/parking/lots", params={"lat": 16.0613, "lon": 108.2270, "vehicle_type": "car", **window}
    )
    assert found.status_code == 200 and found.json()["items"][0]["id"] == lot["id"]
    assert "operator_id" not in found.json()["items"][0]
    quote = await parking.get("/v1/parking/quotes", params={"lot_id": lot["id"], "vehicle_type": "car", **window})
    assert quote.status_code == 200 and quote.json()["amount_vnd"] == 80_000 and quote.json()["quote_token"]
    for params, field in [
        ({"lot_id": "nope", "vehicle_type": "car", **window}, "query.lot_id"),
        ({"lot_id": lot["id"], "vehicle_type": "motorbike", **window}, "query.vehicle_type"),
    ]:
        r = await parking.get("/v1/parking/quotes", params=params)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field
