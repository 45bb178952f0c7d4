"""The demo health data: written through the service's code, idempotent, and bookable."""

from __future__ import annotations

from dncity.cli import database_url
from dncity.seed import seed_health
from tests.health_booking.conftest import Health


async def test_seed_is_idempotent_and_its_slots_are_searchable(health: Health) -> None:
    first = await seed_health(database_url("health_booking"))
    again = await seed_health(database_url("health_booking"))
    assert [f["id"] for f in first] == [f["id"] for f in again] and len(first) == 3
    listed = await health.client.get("/v1/health/facilities", params={"language": "en"}, headers=health.user("p1"))
    assert {f["name"] for f in listed.json()["items"]} == {"Bệnh viện Đà Nẵng", "Bệnh viện Phụ sản - Nhi Đà Nẵng"}
    vaccination = await health.slots(specialty="vaccination")
    assert vaccination and vaccination[0]["capacity"] == 20 and vaccination[0]["fee_vnd"] == 0
    mine = await health.client.get("/v1/health/agency/facilities", headers=health.agency("demo-hospital"))
    assert len(mine.json()["items"]) == 3
