"""Reservations without money (a free lot): ownership, bad input, listing, extension."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.helpers.tokens import TokenFactory
from tests.parking.conftest import FREE, Operator, Reserve, tomorrow_at


async def test_bola_nobody_else_sees_cancels_or_extends_my_reservation(
    parking: httpx.AsyncClient, operator: Operator, reserve: Reserve, person, tokens: TokenFactory
) -> None:  # type: ignore[no-untyped-def]
    lot = await operator.lot(spaces=2, rates={"car": FREE})
    mine = (await reserve("alice", lot["id"], tomorrow_at(9), tomorrow_at(10))).json()
    url = f"/v1/parking/reservations/{mine['id']}"
    bob = person("bob")
    assert (await parking.get(url, headers=bob)).status_code == 404
    assert (await parking.post(url + "/cancel", headers=bob)).status_code == 404
    r = await parking.post(
        url + "/extensions", headers={**bob, "Idempotency-Key": "x"}, json={"end_at": tomorrow_at(11).isoformat()}
    )
    assert r.status_code == 404
    assert (await parking.get("/v1/parking/reservations", headers=bob)).json()["items"] == []
    # Another operator cannot read it; the lot's own operator can.
    rival = tokens.bearer(tokens.client("rival-operator", ["parking.lots.write"]))
    assert (await parking.get(url, headers=rival)).status_code == 404
    assert (await parking.get(url, headers=operator.headers)).status_code == 200
    # A person's token without the parking scope is refused.
    assert (
        await parking.get("/v1/parking/reservations", headers=tokens.bearer(tokens.user("alice", ["openid"])))
    ).status_code == 403
    unchanged = await parking.get(url, headers=person("alice"))
    assert unchanged.json()["status"] == "confirmed" and unchanged.json()["end_at"] == mine["end_at"]


async def test_bad_input_names_the_field_and_stores_nothing(
    parking: httpx.AsyncClient, operator: Operator, reserve: Reserve, person
) -> None:  # type: ignore[no-untyped-def]
    lot = await operator.lot(
        spaces=1,
        pools={"motorbike": 5},
        rates={"car": FREE, "motorbike": FREE},
        opens_at="06:00:00",
        closes_at="22:00:00",
    )
    space = lot["spaces"][0]["id"]
    now = datetime.now(UTC)
    cases = [
        (dict(start=tomorrow_at(10), end=tomorrow_at(9)), "body.end_at"),
        (dict(start=now - timedelta(days=1), end=now - timedelta(hours=23)), "body.start_at"),
        (dict(start=tomorrow_at(7), end=tomorrow_at(7) + timedelta(days=4)), "body.end_at"),  # too long
        (dict(start=tomorrow_at(21), end=tomorrow_at(23)), "body.end_at"),  # closes at 22:00
        (dict(start=tomorrow_at(5), end=tomorrow_at(7)), "body.start_at"),  # opens at 06:00
        (dict(lot_id="no-such-lot"), "body.lot_id"),
        (dict(space_id="no-such-space"), "body.space_id"),
        (dict(space_id=space, vehicle_type="motorbike"), "body.space_id"),  # a car space
        (dict(vehicle_type="large_vehicle"), "body.vehicle_type"),  # the lot takes none
        (dict(plate="!!!"), "body.plate_number"),
        (dict(plate="ABCDEF"), "body.plate_number"),
        (dict(vehicle_type="spaceship"), "body.vehicle_type"),
    ]
    for overrides, field in cases:
        start, end = overrides.pop("start", tomorrow_at(9)), overrides.pop("end", tomorrow_at(10))
        lot_id = overrides.pop("lot_id", lot["id"])
        r = await reserve("alice", lot_id, start, end, **overrides)
        assert r.status_code == 422, (field, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in r.json()["errors"]], (field, r.json())
    assert (await parking.get("/v1/parking/reservations", headers=person("alice"))).json()["items"] == []
    # A missing Idempotency-Key is a 422 naming the header.
    r = await parking.post(
        "/v1/parking/reservations",
        headers=person("alice"),
        json={
            "lot_id": lot["id"],
            "vehicle_type": "car",
            "plate_number": "43A-12345",
            "start_at": tomorrow_at(9).isoformat(),
            "end_at": tomorrow_at(10).isoformat(),
        },
    )
    assert r.status_code == 422 and "header.Idempotency-Key" in [e["field"] for e in r.json()["errors"]]


async def test_naive_times_are_refused(parking: httpx.AsyncClient, operator: Operator, person) -> None:  # type: ignore[no-untyped-def]
    lot = await operator.lot(spaces=1, rates={"car": FREE})
    r = await parking.post(
        "/v1/parking/reservations",
        headers={**person("alice"), "Idempotency-Key": "n1"},
        json={
            "lot_id": lot["id"],
            "vehicle_type": "car",
            "plate_number": "43A-12345",
            "start_at": tomorrow_at(9).replace(tzinfo=None).isoformat(),
            "end_at": tomorrow_at(10).isoformat(),
        },
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.start_at"


async def test_upcoming_lists_soonest_first_with_a_cursor(
    parking: httpx.AsyncClient, operator: Operator, reserve: Reserve, person
) -> None:  # type: ignore[no-untyped-def]
    lot = await operator.lot(pools={"motorbike": 10}, rates={"motorbike": FREE})
    ids = []
    for days in (3, 1, 2):
        r = await reserve(
            "alice",
            lot["id"],
            tomorrow_at(9, days=days),
            tomorrow_at(10, days=days),
            vehicle_type="motorbike",
            plate="43-B1 123.45",
        )
        ids.append((days, r.json()["id"]))
    expected = [rid for _, rid in sorted(ids)]
    page = await parking.get(
        "/v1/parking/reservations", params={"upcoming": "true", "limit": 2}, headers=person("alice")
    )
    assert [i["id"] for i in page.json()["items"]] == expected[:2]
    rest = await parking.get(
        "/v1/parking/reservations",
        params={"upcoming": "true", "limit": 2, "cursor": page.json()["next_cursor"]},
        headers=person("alice"),
    )
    assert [i["id"] for i in rest.json()["items"]] == expected[2:] and rest.json()["next_cursor"] is None
    bad = await parking.get("/v1/parking/reservations", params={"cursor": "%%%"}, headers=person("alice"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.cursor"


async def test_extend_only_while_the_space_stays_free(
    parking: httpx.AsyncClient, operator: Operator, reserve: Reserve, person
) -> None:  # type: ignore[no-untyped-def]
    lot = await operator.lot(spaces=1, rates={"car": FREE})
    mine = (await reserve("alice", lot["id"], tomorrow_at(9), tomorrow_at(10))).json()
    url = f"/v1/parking/reservations/{mine['id']}/extensions"
    r = await parking.post(
        url, headers={**person("alice"), "Idempotency-Key": "e1"}, json={"end_at": tomorrow_at(11).isoformat()}
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "confirmed" and r.json()["amount_vnd"] == 0
    got = await parking.get(f"/v1/parking/reservations/{mine['id']}", headers=person("alice"))
    assert got.json()["end_at"] == tomorrow_at(11).astimezone(UTC).isoformat().replace("+00:00", "Z")
    # Bob books right after; Alice can no longer extend into his time.
    assert (await reserve("bob", lot["id"], tomorrow_at(11), tomorrow_at(12))).status_code == 201
    r = await parking.post(
        url, headers={**person("alice"), "Idempotency-Key": "e2"}, json={"end_at": tomorrow_at(12).isoformat()}
    )
    assert r.status_code == 409 and r.json()["code"] == "extension_unavailable"
    r = await parking.post(
        url, headers={**person("alice"), "Idempotency-Key": "e3"}, json={"end_at": tomorrow_at(10).isoformat()}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.end_at"


async def test_times_at_the_edge_of_the_calendar_are_a_422(
    parking: httpx.AsyncClient, operator: Operator, person
) -> None:  # type: ignore[no-untyped-def]
    lot = await operator.lot(spaces=1, rates={"car": FREE})
    r = await parking.post(
        "/v1/parking/reservations",
        headers={**person("alice"), "Idempotency-Key": "edge"},
        json={
            "lot_id": lot["id"],
            "vehicle_type": "car",
            "plate_number": "43A-12345",
            "start_at": "0001-01-01T00:00:00+14:00",
            "end_at": "0001-01-01T05:00:00+14:00",
        },
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.start_at"
    r = await parking.get(
        "/v1/parking/lots",
        params={
            "lat": 16,
            "lon": 108,
            "vehicle_type": "car",
            "start_at": "9999-12-31T20:00:00-10:00",
            "end_at": "9999-12-31T23:00:00-10:00",
        },
    )
    assert r.status_code == 422
