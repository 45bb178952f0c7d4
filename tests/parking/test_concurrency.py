"""No double booking, decided by the database: many people compete for the last space or pool places."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from tests.helpers.tokens import TokenFactory
from tests.parking.conftest import FREE, Operator, Reserve, tomorrow_at

N = 50


def tally(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


async def test_fifty_compete_for_the_last_numbered_space(
    operator: Operator, reserve: Reserve, parking: httpx.AsyncClient, person
) -> None:  # type: ignore[no-untyped-def]
    lot = await operator.lot(spaces=3, rates={"car": FREE})
    start, end = tomorrow_at(9), tomorrow_at(12)
    for i in range(2):
        r = await reserve(f"early{i}", lot["id"], start, end)
        assert r.status_code == 201, r.text
    results = await asyncio.gather(*[reserve(f"p{i}", lot["id"], tomorrow_at(10), tomorrow_at(11)) for i in range(N)])
    assert tally(results) == {201: 1, 409: N - 1}, [r.text for r in results if r.status_code >= 500][:2]
    assert {r.json()["code"] for r in results if r.status_code == 409} == {"no_free_space"}
    availability = await parking.get(
        f"/v1/parking/lots/{lot['id']}/availability",
        headers=person("x"),
        params={"vehicle_type": "car", "start_at": tomorrow_at(10).isoformat(), "end_at": tomorrow_at(11).isoformat()},
    )
    assert availability.json()["free"] == 0


async def test_fifty_compete_for_one_chosen_space(operator: Operator, reserve: Reserve) -> None:
    lot = await operator.lot(spaces=2, rates={"car": FREE})
    space = lot["spaces"][1]["id"]
    results = await asyncio.gather(
        *[reserve(f"p{i}", lot["id"], tomorrow_at(10), tomorrow_at(11), space_id=space) for i in range(N)]
    )
    assert tally(results) == {201: 1, 409: N - 1}
    assert {r.json()["code"] for r in results if r.status_code == 409} == {"space_taken"}
    # The other space is still free; an adjacent window of the taken space too (windows are half-open).
    assert (await reserve("q", lot["id"], tomorrow_at(10), tomorrow_at(11))).status_code == 201
    assert (await reserve("r", lot["id"], tomorrow_at(11), tomorrow_at(12), space_id=space)).status_code == 201


async def test_fifty_compete_for_the_last_pool_places(operator: Operator, reserve: Reserve) -> None:
    lot = await operator.lot(pools={"motorbike": 5}, rates={"motorbike": FREE})
    for i in range(2):
        r = await reserve(
            f"early{i}", lot["id"], tomorrow_at(8), tomorrow_at(12), vehicle_type="motorbike", plate="43-B1 123.45"
        )
        assert r.status_code == 201
    results = await asyncio.gather(
        *[
            reserve(
                f"p{i}", lot["id"], tomorrow_at(9), tomorrow_at(10), vehicle_type="motorbike", plate=f"43-B1 {i:03d}.45"
            )
            for i in range(N)
        ]
    )
    assert tally(results) == {201: 3, 409: N - 3}
    assert {r.json()["code"] for r in results if r.status_code == 409} == {"no_free_place"}


async def test_pool_capacity_holds_at_every_instant(operator: Operator, reserve: Reserve) -> None:
    lot = await operator.lot(pools={"motorbike": 2}, rates={"motorbike": FREE})

    async def book(sub: str, a: int, b: int) -> int:
        r = await reserve(sub, lot["id"], tomorrow_at(a), tomorrow_at(b), vehicle_type="motorbike", plate="43B1-12345")
        return r.status_code

    assert await book("a", 8, 10) == 201
    assert await book("b", 9, 11) == 201
    assert await book("c", 7, 12) == 409  # 09:00-10:00 would hold three
    assert await book("d", 10, 12) == 201  # at 10:00 the first one left
    assert await book("e", 6, 8) == 201


async def test_a_person_holds_at_most_a_few_unpaid_reservations(
    operator: Operator, reserve: Reserve, tokens: TokenFactory
) -> None:
    # Free parking confirms at once; unpaid holds are counted in tests/parking/test_payments.py.
    lot = await operator.lot(pools={"motorbike": 50}, rates={"motorbike": FREE})
    for _ in range(5):
        r = await reserve("u", lot["id"], tomorrow_at(9), tomorrow_at(10), vehicle_type="motorbike", plate="43B112345")
        assert r.status_code == 201 and r.json()["status"] == "confirmed"
