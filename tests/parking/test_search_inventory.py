"""Search answers from each process's copy of the inventory (lots/inventory.py) and one query for what
is taken: the copy must never answer for an inventory older than the database's, and the page it
builds by hand must be exactly what LotSearchPage would render."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text

from dncity.cli import service_settings
from services.parking.lots.schemas import LotSearchPage
from shared.db import Database
from tests.parking.conftest import CAR_DAY_NIGHT, FREE, Operator, Reserve, tomorrow_at

START, END = tomorrow_at(20), tomorrow_at(23)


def params(vehicle_type: str = "car", **extra: Any) -> dict[str, Any]:
    return {
        "lat": 16.0600,
        "lon": 108.2201,
        "radius_m": 3000,
        "vehicle_type": vehicle_type,
        "start_at": START.isoformat(),
        "end_at": END.isoformat(),
        **extra,
    }


async def search(client: httpx.AsyncClient, vehicle_type: str = "car", **extra: Any) -> list[dict[str, Any]]:
    r = await client.get("/v1/parking/lots", params=params(vehicle_type, **extra))
    assert r.status_code == 200, r.text
    # The hand-built page is byte for byte what the declared response model renders.
    assert LotSearchPage.model_validate_json(r.text).model_dump_json() == r.text
    return list(r.json()["items"])


async def sql(statement: str, **values: Any) -> None:
    db = Database(service_settings("parking").database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text(statement), values)
    finally:
        await db.dispose()


async def test_search_sees_every_inventory_change_at_once(
    parking: httpx.AsyncClient, operator: Operator, reserve: Reserve
) -> None:
    lot = await operator.lot(
        name="Hội An gate",
        lat=16.0600,
        lon=108.2200,
        spaces=3,
        accessible=1,
        rates={"car": CAR_DAY_NIGHT},
        opens_at="05:00:00",
        closes_at="23:30:00",
    )
    [item] = await search(parking)
    assert (item["free"], item["free_accessible"], item["quote"]["amount_vnd"]) == (3, 1, 80_000)
    assert item["opens_at"] == "05:00:00" and item["open_24h"] is False

    # Through the operator API: a new lot, more spaces.
    other = await operator.lot(name="Second", lat=16.0610, lon=108.2200, spaces=1, rates={"car": FREE})
    r = await parking.post(
        f"/v1/parking/operator/lots/{lot['id']}/spaces", headers=operator.headers, json={"spaces": [{"label": "Z9"}]}
    )
    assert r.status_code == 201, r.text
    assert [(i["id"], i["free"]) for i in await search(parking)] == [(lot["id"], 4), (other["id"], 1)]

    # Behind the service's back (an administrator's SQL): the triggers still make the copy stale.
    await sql("UPDATE rates SET day_price_vnd = 40000 WHERE lot_id = :id", id=lot["id"])
    await sql("UPDATE lots SET opens_at = '06:00:00', closes_at = '21:00:00' WHERE id = :id", id=other["id"])
    [item] = await search(parking)
    assert item["id"] == lot["id"] and item["quote"]["amount_vnd"] == 90_000

    # What is taken is never cached: a booking shows at once.
    assert (await reserve("u-free", other["id"], tomorrow_at(9), tomorrow_at(11))).status_code == 201
    await sql("UPDATE lots SET closes_at = NULL, opens_at = NULL WHERE id = :id", id=other["id"])
    found = {
        i["id"]: i["free"]
        for i in await search(parking, start_at=tomorrow_at(9).isoformat(), end_at=tomorrow_at(11).isoformat())
    }
    assert found == {lot["id"]: 4}  # the second lot's only space is booked for that window
    assert [i["id"] for i in await search(parking)] == [lot["id"], other["id"]]

    await sql("DELETE FROM spaces WHERE lot_id = :id", id=lot["id"])
    assert [i["id"] for i in await search(parking)] == [other["id"]]


async def test_pool_places_in_search_count_the_peak_of_the_window(
    parking: httpx.AsyncClient, operator: Operator, reserve: Reserve
) -> None:
    lot = await operator.lot(lat=16.0600, lon=108.2200, pools={"motorbike": 2}, rates={"motorbike": FREE})
    # Two bookings that do not overlap each other: at most one place is taken at any instant.
    for hours in ((20, 21), (22, 23)):
        r = await reserve(
            f"u{hours[0]}", lot["id"], tomorrow_at(hours[0]), tomorrow_at(hours[1]), vehicle_type="motorbike"
        )
        assert r.status_code == 201, r.text
    [item] = await search(parking, "motorbike")
    assert (item["kind"], item["free"]) == ("pool", 1)
    r = await reserve("u-all", lot["id"], START, END, vehicle_type="motorbike")
    assert r.status_code == 201, r.text
    assert await search(parking, "motorbike") == []  # full at 20:00-21:00 and 22:00-23:00
    assert await search(parking, "car") == []  # no rate, no places for cars
    await sql("UPDATE pools SET capacity = 3 WHERE lot_id = :id", id=lot["id"])
    assert [i["free"] for i in await search(parking, "motorbike")] == [1]
