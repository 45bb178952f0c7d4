"""Money flows against the real payments service and sandbox wallet: pay, confirm, cancel, refund."""

from __future__ import annotations

from tests.parking.conftest import CAR_DAY_NIGHT, Money, tomorrow_at


async def test_reserve_pay_on_the_wallet_page_confirmed(money: Money) -> None:
    lot = await money.operator.lot(spaces=2, rates={"car": CAR_DAY_NIGHT})
    r = await money.reserve("alice", lot["id"], tomorrow_at(20), tomorrow_at(23), plate="43a-123.45")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "pending_payment" and body["amount_vnd"] == 80_000
    assert body["lot"]["id"] == lot["id"] and body["space"]["label"] in ("A000", "A001")
    assert body["plate_number"] == "43a-123.45" and body["plate_normalized"] == "43A12345"
    assert body["payment"]["status"] == "requires_action" and body["hold_expires_at"]
    assert body["payment"]["next_action"]["url"].startswith(money.sandbox_url)
    payment = await money.payment(body["payment"]["id"])
    assert payment["purpose"] == "parking" and payment["reference"] == body["id"] and payment["payer_sub"] == "alice"
    await money.decide(body["payment"])
    done = await money.wait("alice", body["id"], lambda b: b["status"] == "confirmed")
    assert done["payment"]["status"] == "succeeded" and done["hold_expires_at"] is None
    upcoming = await money.client.get(
        "/v1/parking/reservations", params={"upcoming": "true"}, headers=money.person("alice")
    )
    assert [i["id"] for i in upcoming.json()["items"]] == [body["id"]] and upcoming.json()["next_cursor"] is None


async def test_declined_payment_releases_the_space(money: Money) -> None:
    lot = await money.operator.lot(spaces=1, rates={"car": CAR_DAY_NIGHT})
    r = await money.reserve("alice", lot["id"], tomorrow_at(9), tomorrow_at(10))
    await money.decide(r.json()["payment"], "decline")
    await money.wait("alice", r.json()["id"], lambda b: b["status"] == "released")
    assert (await money.reserve("bob", lot["id"], tomorrow_at(9), tomorrow_at(10))).status_code == 201


async def test_idempotent_retry_never_double_books_or_double_charges(money: Money) -> None:
    lot = await money.operator.lot(spaces=3, rates={"car": CAR_DAY_NIGHT})
    first = await money.reserve("alice", lot["id"], tomorrow_at(9), tomorrow_at(10), key="same-key")
    again = await money.reserve("alice", lot["id"], tomorrow_at(9), tomorrow_at(10), key="same-key")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers.get("idempotent-replayed") == "true"
    other = await money.reserve("alice", lot["id"], tomorrow_at(9), tomorrow_at(11), key="same-key")
    assert other.status_code == 409
    mine = await money.client.get("/v1/parking/reservations", headers=money.person("alice"))
    assert len(mine.json()["items"]) == 1


async def test_cancel_before_the_start_refunds_in_full(money: Money) -> None:
    lot = await money.operator.lot(spaces=1, rates={"car": CAR_DAY_NIGHT})
    r = await money.reserve("alice", lot["id"], tomorrow_at(9), tomorrow_at(10))
    await money.decide(r.json()["payment"])
    await money.wait("alice", r.json()["id"], lambda b: b["status"] == "confirmed")
    canceled = await money.client.post(
        f"/v1/parking/reservations/{r.json()['id']}/cancel", headers=money.person("alice")
    )
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled" and canceled.json()["refunded_vnd"] == 30_000
    payment = await money.payment(r.json()["payment"]["id"])
    assert payment["status"] == "refunded" and payment["amount_refunded_vnd"] == 30_000
    # Canceling again changes nothing and refunds nothing more; the space is free again.
    again = await money.client.post(f"/v1/parking/reservations/{r.json()['id']}/cancel", headers=money.person("alice"))
    assert again.json()["refunded_vnd"] == 30_000
    assert (await money.reserve("bob", lot["id"], tomorrow_at(9), tomorrow_at(10))).status_code == 201


async def test_cancel_after_the_lots_cutoff_refunds_nothing(money: Money) -> None:
    # The lot refunds only when canceled at least two days ahead; this starts tomorrow.
    lot = await money.operator.lot(spaces=1, rates={"car": CAR_DAY_NIGHT}, cancellation_cutoff_minutes=2 * 24 * 60)
    r = await money.reserve("alice", lot["id"], tomorrow_at(9), tomorrow_at(10))
    await money.decide(r.json()["payment"])
    await money.wait("alice", r.json()["id"], lambda b: b["status"] == "confirmed")
    canceled = await money.client.post(
        f"/v1/parking/reservations/{r.json()['id']}/cancel", headers=money.person("alice")
    )
    assert canceled.json()["status"] == "canceled" and canceled.json()["refunded_vnd"] == 0
    assert (await money.payment(r.json()["payment"]["id"]))["status"] == "succeeded"


async def test_cancel_an_unpaid_hold_cancels_its_payment(money: Money) -> None:
    lot = await money.operator.lot(spaces=1, rates={"car": CAR_DAY_NIGHT})
    r = await money.reserve("alice", lot["id"], tomorrow_at(9), tomorrow_at(10))
    canceled = await money.client.post(
        f"/v1/parking/reservations/{r.json()['id']}/cancel", headers=money.person("alice")
    )
    assert canceled.json()["status"] == "canceled"
    assert (await money.payment(r.json()["payment"]["id"]))["status"] == "canceled"


async def test_book_at_the_quoted_price_while_the_quote_is_valid(money: Money) -> None:
    lot = await money.operator.lot(spaces=1, rates={"car": CAR_DAY_NIGHT})
    start, end = tomorrow_at(9), tomorrow_at(10)
    quote = (
        await money.client.get(
            "/v1/parking/quotes",
            params={
                "lot_id": lot["id"],
                "vehicle_type": "car",
                "start_at": start.isoformat(),
                "end_at": end.isoformat(),
            },
        )
    ).json()
    # The operator raises the price; the quote still holds for its validity.
    await money.client.put(
        f"/v1/parking/operator/lots/{lot['id']}/rates/car",
        headers=money.operator.headers,
        json={**CAR_DAY_NIGHT, "day_price_vnd": 40_000},
    )
    r = await money.reserve("alice", lot["id"], start, end, quote_token=quote["quote_token"])
    assert r.status_code == 201 and r.json()["amount_vnd"] == 30_000
    forged = quote["quote_token"][:-3] + "AAA"
    bad = await money.reserve("bob", lot["id"], start, end, quote_token=forged)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.quote_token"
