"""Payment outcomes: hold expiry, late success, events duplicated and out of order, contention with events."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shared.clients.payments import PaymentEventData
from shared.db import new_id
from shared.events import CloudEvent, stream_for
from shared.redis import create_redis
from tests.parking.conftest import CAR_DAY_NIGHT, MOTORBIKE_DAY_NIGHT, Money, tomorrow_at


async def publish(
    redis_url: str, type_: str, payment: dict[str, Any], *, status: str, event_id: str | None = None, refunded: int = 0
) -> str:
    """Put a payment event on the payments stream exactly as the payments outbox relay does."""
    data = PaymentEventData(
        payment_id=payment["id"],
        purpose=payment.get("purpose", "parking"),
        reference=payment["reference"],
        payer_sub=payment["payer_sub"],
        amount_vnd=payment["amount_vnd"],
        amount_refunded_vnd=refunded,
        status=status,
        requested_by="svc-parking",
    )
    event = CloudEvent(
        id=event_id or new_id(),
        source="payments",
        type=type_,
        subject=payment["id"],
        time=datetime.now(UTC),
        data=data.model_dump(),
    )
    redis = create_redis(redis_url)
    try:
        await redis.xadd(stream_for("payments"), event.to_fields())
    finally:
        await redis.aclose()
    return event.id


async def test_hold_lapses_frees_the_space_and_cancels_the_payment(money_factory) -> None:  # type: ignore[no-untyped-def]
    money: Money = await money_factory(hold_ttl_s=3)
    lot = await money.operator.lot(spaces=1, rates={"car": CAR_DAY_NIGHT})
    held = (await money.reserve("alice", lot["id"], tomorrow_at(9), tomorrow_at(10))).json()
    assert (await money.reserve("bob", lot["id"], tomorrow_at(9), tomorrow_at(10))).status_code == 409
    expired = await money.wait("alice", held["id"], lambda b: b["status"] == "expired")
    assert expired["hold_expires_at"] is None
    # The background task cancels the payment, so it can no longer be approved.
    for _ in range(100):
        if (await money.payment(held["payment"]["id"]))["status"] == "canceled":
            break
        await asyncio.sleep(0.1)
    assert (await money.payment(held["payment"]["id"]))["status"] == "canceled"
    assert (await money.reserve("bob", lot["id"], tomorrow_at(9), tomorrow_at(10))).status_code == 201


async def test_lazy_expiry_frees_a_lapsed_hold_before_the_sweeper_runs(money_factory) -> None:  # type: ignore[no-untyped-def]
    money: Money = await money_factory(hold_ttl_s=1, expiry_sweep_interval_s=3600)
    lot = await money.operator.lot(spaces=1, rates={"car": CAR_DAY_NIGHT})
    held = (await money.reserve("alice", lot["id"], tomorrow_at(9), tomorrow_at(10))).json()
    await asyncio.sleep(1.2)
    assert (await money.reservation("alice", held["id"]))["status"] == "expired"
    assert (await money.reserve("bob", lot["id"], tomorrow_at(9), tomorrow_at(10))).status_code == 201


async def test_success_after_the_hold_lapsed_and_the_space_was_taken_is_refunded(money_factory) -> None:  # type: ignore[no-untyped-def]
    # No sweeper: the payment stays approvable after the hold lapsed (a payer at the last second).
    money: Money = await money_factory(hold_ttl_s=1, expiry_sweep_interval_s=3600)
    lot = await money.operator.lot(spaces=1, rates={"car": CAR_DAY_NIGHT})
    late = (await money.reserve("alice", lot["id"], tomorrow_at(9), tomorrow_at(10))).json()
    await asyncio.sleep(1.2)
    taken = await money.reserve("bob", lot["id"], tomorrow_at(9), tomorrow_at(10))
    assert taken.status_code == 201
    await money.decide(late["payment"])
    refunded = await money.wait("alice", late["id"], lambda b: b["refunded_vnd"] == 30_000)
    assert refunded["status"] == "expired"
    for _ in range(100):
        payment = await money.payment(late["payment"]["id"])
        if payment["status"] == "refunded":
            break
        await asyncio.sleep(0.1)
    assert payment["status"] == "refunded" and payment["amount_refunded_vnd"] == 30_000
    # Bob's hold on the space was never disturbed by Alice's late payment.
    bob = await money.reservation("bob", taken.json()["id"])
    assert bob["space"]["id"] == late["space"]["id"] and bob["status"] in ("pending_payment", "expired")


async def test_success_after_the_hold_lapsed_with_the_space_still_free_confirms(money_factory) -> None:  # type: ignore[no-untyped-def]
    money: Money = await money_factory(hold_ttl_s=1, expiry_sweep_interval_s=3600)
    lot = await money.operator.lot(spaces=1, rates={"car": CAR_DAY_NIGHT})
    late = (await money.reserve("alice", lot["id"], tomorrow_at(9), tomorrow_at(10))).json()
    await asyncio.sleep(1.2)
    await money.decide(late["payment"])
    done = await money.wait("alice", late["id"], lambda b: b["status"] == "confirmed")
    assert done["refunded_vnd"] == 0
    assert (await money.reserve("bob", lot["id"], tomorrow_at(9), tomorrow_at(10))).status_code == 409


async def test_events_duplicated_and_out_of_order(money: Money, redis_url: str) -> None:
    lot = await money.operator.lot(spaces=2, rates={"car": CAR_DAY_NIGHT})
    a = (await money.reserve("alice", lot["id"], tomorrow_at(9), tomorrow_at(10))).json()
    payment = await money.payment(a["payment"]["id"])
    # A failure that arrives first, then the success that really happened: the success wins.
    await publish(redis_url, "payment.failed", payment, status="failed")
    await money.wait("alice", a["id"], lambda b: b["status"] == "released")
    first = await publish(redis_url, "payment.succeeded", payment, status="succeeded")
    await money.wait("alice", a["id"], lambda b: b["status"] == "confirmed")
    # The same event again, a second copy with a new id, and a stale failure: nothing changes.
    await publish(redis_url, "payment.succeeded", payment, status="succeeded", event_id=first)
    await publish(redis_url, "payment.succeeded", payment, status="succeeded")
    await publish(redis_url, "payment.expired", payment, status="expired")
    await publish(redis_url, "payment.canceled", payment, status="canceled")
    # Events of other purposes and unknown payments of other services are ignored.
    await publish(redis_url, "payment.succeeded", {**payment, "purpose": "tuition", "id": "other"}, status="succeeded")
    marker = (await money.reserve("carol", lot["id"], tomorrow_at(9), tomorrow_at(10))).json()
    marker_payment = await money.payment(marker["payment"]["id"])
    await publish(redis_url, "payment.succeeded", marker_payment, status="succeeded")
    await money.wait("carol", marker["id"], lambda b: b["status"] == "confirmed")  # all before it were handled
    final = await money.reservation("alice", a["id"])
    assert final["status"] == "confirmed" and final["payment"]["status"] == "succeeded"
    mine = await money.client.get("/v1/parking/reservations", headers=money.person("alice"))
    assert len(mine.json()["items"]) == 1


async def test_event_for_a_reservation_not_committed_yet_is_retried(money: Money, redis_url: str) -> None:
    lot = await money.operator.lot(pools={"motorbike": 3}, rates={"motorbike": MOTORBIKE_DAY_NIGHT})
    r = (
        await money.reserve(
            "alice", lot["id"], tomorrow_at(9), tomorrow_at(10), vehicle_type="motorbike", plate="43-B1 123.45"
        )
    ).json()
    payment = await money.payment(r["payment"]["id"])
    # An event naming a reservation this service has not seen (yet): retried, never a crash.
    await publish(
        redis_url, "payment.succeeded", {**payment, "id": "pay-unknown", "reference": "res-unknown"}, status="succeeded"
    )
    await publish(redis_url, "payment.succeeded", payment, status="succeeded")
    await money.wait("alice", r["id"], lambda b: b["status"] == "confirmed")


async def test_fifty_compete_for_the_last_space_while_payments_settle(money: Money) -> None:
    lot = await money.operator.lot(spaces=3, rates={"car": CAR_DAY_NIGHT})
    early = [(await money.reserve(f"early{i}", lot["id"], tomorrow_at(9), tomorrow_at(12))).json() for i in range(2)]

    async def approve(r: dict[str, Any]) -> None:
        await money.decide(r["payment"])

    results = await asyncio.gather(
        *[money.reserve(f"p{i}", lot["id"], tomorrow_at(10), tomorrow_at(11)) for i in range(50)],
        *[approve(r) for r in early],
    )
    statuses = Counter(r.status_code for r in results if isinstance(r, httpx.Response))
    assert statuses == {201: 1, 409: 49}, statuses
    for i, r in enumerate(early):
        await money.wait(f"early{i}", r["id"], lambda b: b["status"] == "confirmed")
    winner = next(r for r in results if isinstance(r, httpx.Response) and r.status_code == 201).json()
    labels = {winner["space"]["label"]} | {
        (await money.reservation(f"early{i}", r["id"]))["space"]["label"] for i, r in enumerate(early)
    }
    assert labels == {"A000", "A001", "A002"}


async def test_fifty_compete_for_the_last_pool_places_while_payments_settle(money: Money, redis_url: str) -> None:
    lot = await money.operator.lot(pools={"motorbike": 5}, rates={"motorbike": MOTORBIKE_DAY_NIGHT})
    early = [
        (
            await money.reserve(
                f"early{i}", lot["id"], tomorrow_at(8), tomorrow_at(12), vehicle_type="motorbike", plate="43-B1 123.45"
            )
        ).json()
        for i in range(3)
    ]
    expired = await money.payment(early[2]["payment"]["id"])
    await publish(redis_url, "payment.expired", expired, status="expired")
    await money.wait("early2", early[2]["id"], lambda b: b["status"] == "released")

    async def settle() -> None:
        await money.decide(early[0]["payment"])
        await money.decide(early[1]["payment"])

    results = await asyncio.gather(
        *[
            money.reserve(
                f"p{i}", lot["id"], tomorrow_at(9), tomorrow_at(10), vehicle_type="motorbike", plate=f"43-B1 {i:03d}.45"
            )
            for i in range(50)
        ],
        settle(),
        # A duplicate of the expiry arrives meanwhile: it changes nothing.
        publish(redis_url, "payment.expired", expired, status="expired"),
    )
    statuses = Counter(r.status_code for r in results if isinstance(r, httpx.Response))
    # Capacity 5, two places held by early bookers (paid meanwhile), the expired one released: 3 free.
    assert statuses == {201: 3, 409: 47}, statuses
    for i in range(2):
        await money.wait(f"early{i}", early[i]["id"], lambda b: b["status"] == "confirmed")
    availability = await money.client.get(
        f"/v1/parking/lots/{lot['id']}/availability",
        headers=money.person("x"),
        params={
            "vehicle_type": "motorbike",
            "start_at": tomorrow_at(9).isoformat(),
            "end_at": tomorrow_at(10).isoformat(),
        },
    )
    assert availability.json()["total"] == 5 and availability.json()["free"] == 0


async def test_unpaid_holds_are_limited_per_person(money: Money) -> None:
    lot = await money.operator.lot(pools={"motorbike": 10}, rates={"motorbike": MOTORBIKE_DAY_NIGHT})
    codes = [
        (
            await money.reserve(
                "alice", lot["id"], tomorrow_at(9), tomorrow_at(10), vehicle_type="motorbike", plate="43-B1 123.45"
            )
        ).status_code
        for _ in range(4)
    ]
    assert codes == [201, 201, 201, 409]


async def test_paid_extension_moves_the_end_once_paid(money: Money) -> None:
    lot = await money.operator.lot(spaces=1, rates={"car": CAR_DAY_NIGHT})
    r = (await money.reserve("alice", lot["id"], tomorrow_at(20), tomorrow_at(21))).json()
    await money.decide(r["payment"])
    await money.wait("alice", r["id"], lambda b: b["status"] == "confirmed")
    quote = await money.client.get(
        f"/v1/parking/reservations/{r['id']}/extension-quote",
        params={"end_at": tomorrow_at(23).isoformat()},
        headers=money.person("alice"),
    )
    assert quote.status_code == 200 and quote.json()["amount_vnd"] == 50_000
    ext = await money.client.post(
        f"/v1/parking/reservations/{r['id']}/extensions",
        headers={**money.person("alice"), "Idempotency-Key": "ext-1"},
        json={"end_at": tomorrow_at(23).isoformat()},
    )
    assert ext.status_code == 201, ext.text
    assert ext.json()["amount_vnd"] == 50_000 and ext.json()["status"] == "pending_payment"  # a night visit added
    # While the extension is unpaid, the added time is held: nobody else takes it.
    assert (await money.reserve("bob", lot["id"], tomorrow_at(22), tomorrow_at(23))).status_code == 409
    await money.decide(ext.json()["payment"])
    done = await money.wait("alice", r["id"], lambda b: b["amount_vnd"] == 30_000 + 50_000)
    assert done["end_at"].startswith(tomorrow_at(23).astimezone(UTC).isoformat()[:16])
    assert [p["kind"] for p in done["payments"]] == ["booking", "extension"]


async def test_operator_checks_in_and_out_and_an_overstay_is_a_new_payment(money_factory) -> None:  # type: ignore[no-untyped-def]
    money: Money = await money_factory(start_grace_s=7200)
    hourly = {"mode": "hourly", "hourly_tiers": [{"from_hour": 0, "price_per_hour_vnd": 20_000}]}
    lot = await money.operator.lot(spaces=1, rates={"car": hourly}, overstay_grace_minutes=0)
    end = datetime.now(UTC) + timedelta(seconds=10)
    r = (await money.reserve("alice", lot["id"], end - timedelta(hours=1), end, plate="43A-123.45")).json()
    assert r["amount_vnd"] == 20_000
    await money.decide(r["payment"])
    await money.wait("alice", r["id"], lambda b: b["status"] == "confirmed")
    base = f"/v1/parking/operator/lots/{lot['id']}"
    wrong = await money.client.post(
        base + "/check-ins", headers=money.operator.headers, json={"plate_number": "43A-999.99"}
    )
    assert wrong.status_code == 404
    checked_in = await money.client.post(
        base + "/check-ins", headers=money.operator.headers, json={"plate_number": "43a 12345"}
    )  # written differently, same plate
    assert checked_in.status_code == 200, checked_in.text
    assert checked_in.json()["status"] == "checked_in"
    await asyncio.sleep((end - datetime.now(UTC)).total_seconds() + 1.5)  # past the end: an overstay
    out = await money.client.post(
        base + "/check-outs", headers=money.operator.headers, json={"plate_number": "43A-123.45"}
    )
    assert out.status_code == 200, out.text
    body = out.json()
    assert body["reservation"]["status"] == "completed"
    assert body["overstay_payment"]["kind"] == "overstay" and body["overstay_payment"]["amount_vnd"] == 20_000
    payment = await money.payment(body["overstay_payment"]["id"])
    assert payment["payer_sub"] == "alice" and payment["reference"] == r["id"]


async def test_a_tourist_books_and_pays_like_a_resident(money: Money) -> None:
    lot = await money.operator.lot(spaces=1, rates={"car": CAR_DAY_NIGHT})
    # A foreigner's account (passport) and a foreign plate.
    r = await money.reserve("tourist-passport-X1234567", lot["id"], tomorrow_at(9), tomorrow_at(10), plate="ABC 1234")
    assert r.status_code == 201, r.text
    await money.decide(r.json()["payment"])
    done = await money.wait("tourist-passport-X1234567", r.json()["id"], lambda b: b["status"] == "confirmed")
    assert done["plate_normalized"] == "ABC1234"
