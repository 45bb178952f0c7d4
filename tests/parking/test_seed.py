"""The demo seed writes the demo operator's lots through the parking service's code, idempotently."""

from __future__ import annotations

import httpx

from dncity.seed import DEMO_LOTS, seed_parking
from tests.helpers.tokens import TokenFactory
from tests.parking.conftest import tomorrow_at


async def test_seed_is_idempotent_and_searchable(
    database_urls: dict[str, str], parking: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    first = await seed_parking(database_urls["parking"])
    second = await seed_parking(database_urls["parking"])
    assert first == second and len(first) == len(DEMO_LOTS)
    operator = tokens.bearer(tokens.client("demo-parking-operator", ["parking.lots.write"]))
    lots = (await parking.get("/v1/parking/operator/lots", headers=operator)).json()["items"]
    assert len(lots) == len(DEMO_LOTS)
    dragon = next(lot for lot in lots if lot["name"] == "Bãi đỗ xe Cầu Rồng")
    assert len(dragon["spaces"]) == 20 and dragon["pools"][0]["capacity"] == 300
    found = await parking.get(
        "/v1/parking/lots",
        headers=tokens.bearer(tokens.user("u1", ["parking"])),
        params={
            "lat": 16.0611,
            "lon": 108.2276,
            "radius_m": 500,
            "vehicle_type": "car",
            "start_at": tomorrow_at(9).isoformat(),
            "end_at": tomorrow_at(11).isoformat(),
        },
    )
    assert [i["name"] for i in found.json()["items"]] == ["Bãi đỗ xe Cầu Rồng"]
    assert found.json()["items"][0]["free"] == 20
