"""Paying invoices through the real payments service and sandbox wallet: several invoices in one
payment, instalments, concurrency, idempotency, declines, duplicate and out-of-order events, refunds."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from services.tuition.db import events
from shared.db import Database, new_id, utcnow
from shared.events import CloudEvent, stream_for
from shared.redis import create_redis
from tests.helpers.tokens import TokenFactory
from tests.tuition.conftest import Guardian, PaymentsStack, School, student_row, wait_for


async def setup_family(
    paying: httpx.AsyncClient,
    tokens: TokenFactory,
    n: int = 2,
    amounts: tuple[int, ...] = (1_200_000, 800_000),
    due_dates: list[Any] | None = None,
) -> tuple[School, Guardian, list[dict[str, Any]]]:
    school = School(paying, tokens)
    children = await school.students(*[student_row(f"HS00{i}") for i in range(1, n + 1)])
    rnd = await school.round(due_dates=due_dates)
    invoices = [
        await school.invoice(rnd["id"], c["student_code"], ("tuition", "Học phí", amounts[i]))
        for i, c in enumerate(children)
    ]
    parent = Guardian(paying, tokens, "parent-1")
    for child in children:
        assert (await parent.link(await school.link_code(child["id"]))).status_code == 201
    return school, parent, invoices


async def invoice_as(client: httpx.AsyncClient, headers: dict[str, str], invoice_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/tuition/invoices/{invoice_id}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def order_as(parent: Guardian, order_id: str) -> dict[str, Any]:
    response = await parent.client.get(f"/v1/tuition/me/payments/{order_id}", headers=parent.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def until_order(parent: Guardian, order_id: str, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        order = await order_as(parent, order_id)
        return order if order["status"] == status else None

    return dict(await wait_for(check))


async def test_one_payment_for_two_childrens_invoices(
    paying: httpx.AsyncClient, tokens: TokenFactory, payments_stack: PaymentsStack
) -> None:
    school, parent, (a, b) = await setup_family(paying, tokens)
    created = await parent.pay(a["id"], b["id"])
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["amount_vnd"] == 2_000_000 and order["status"] == "pending" and order["payment_url"]
    payment = await payments_stack.payment(order["payment_id"])
    assert (payment["purpose"], payment["reference"], payment["payer_sub"]) == ("tuition", order["id"], "parent-1")
    assert (await invoice_as(paying, parent.headers, a["id"]))["payment_pending"] is True

    await payments_stack.approve(order)
    settled = await until_order(parent, order["id"], "succeeded")
    assert {i["state"] for i in settled["items"]} == {"applied"} and settled["receipt_number"]
    for invoice in (a, b):
        seen = await invoice_as(paying, parent.headers, invoice["id"])
        assert (seen["status"], seen["outstanding_vnd"], seen["payment_pending"]) == ("paid", 0, False)
    assert await parent.invoices("open") == []
    receipt = (await paying.get(f"/v1/tuition/me/payments/{order['id']}/receipt", headers=parent.headers)).json()
    assert receipt["amount_vnd"] == 2_000_000 and len(receipt["items"]) == 2
    assert receipt["number"] == settled["receipt_number"]
    report = (await paying.get("/v1/tuition/reports/collections", headers=school.headers)).json()
    assert (report["totals"]["collected_vnd"], report["totals"]["outstanding_vnd"]) == (2_000_000, 0)
    again = await parent.pay(a["id"])
    assert again.status_code == 409 and again.json()["code"] == "invoice_not_payable"


async def test_instalments_sum_exactly_to_the_invoice(
    paying: httpx.AsyncClient, tokens: TokenFactory, payments_stack: PaymentsStack
) -> None:
    dates = [date.today() + timedelta(days=10), date.today() + timedelta(days=40), date.today() + timedelta(days=70)]
    _, parent, [invoice] = await setup_family(paying, tokens, n=1, amounts=(1_000_000,), due_dates=dates)
    paid: list[int] = []
    for expected in (333_334, 333_333, 333_333):
        created = await parent.pay(invoice["id"], amount="instalment")
        assert created.status_code == 201, created.text
        assert created.json()["amount_vnd"] == expected
        await payments_stack.approve(created.json())
        await until_order(parent, created.json()["id"], "succeeded")
        paid.append(expected)
        seen = await invoice_as(paying, parent.headers, invoice["id"])
        assert seen["paid_vnd"] == sum(paid)
    assert seen["status"] == "paid" and sum(paid) == 1_000_000
    assert [i["status"] for i in seen["instalments"]] == ["paid", "paid", "paid"]


async def test_instalment_refused_when_the_school_does_not_allow_it(
    paying: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    _, parent, [invoice] = await setup_family(paying, tokens, n=1, amounts=(900_000,))
    response = await parent.pay(invoice["id"], amount="instalment")
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body.items.0.amount"
    assert (await invoice_as(paying, parent.headers, invoice["id"]))["payment_pending"] is False


async def test_concurrent_payments_of_one_invoice_only_one_is_taken(
    paying: httpx.AsyncClient, tokens: TokenFactory, payments_stack: PaymentsStack
) -> None:
    _, parent, (a, b) = await setup_family(paying, tokens)
    results = await asyncio.gather(*[parent.pay(a["id"], b["id"]) for _ in range(10)])
    statuses = sorted(r.status_code for r in results)
    assert statuses == [201] + [409] * 9, [r.text for r in results]
    assert {r.json()["code"] for r in results if r.status_code == 409} == {"invoice_payment_pending"}
    winner = next(r.json() for r in results if r.status_code == 201)
    await payments_stack.approve(winner)
    await until_order(parent, winner["id"], "succeeded")
    seen = await invoice_as(paying, parent.headers, a["id"])
    assert seen["paid_vnd"] == 1_200_000 and seen["status"] == "paid"
    orders = (await paying.get("/v1/tuition/me/payments", headers=parent.headers)).json()["items"]
    assert len(orders) == 1


async def test_retry_with_the_same_key_returns_the_same_order(paying: httpx.AsyncClient, tokens: TokenFactory) -> None:
    _, parent, (a, b) = await setup_family(paying, tokens)
    first = await parent.pay(a["id"], key="pay-once")
    again = await parent.pay(a["id"], key="pay-once")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.headers.get("Idempotent-Replayed") == "true"
    other_body = await parent.pay(b["id"], key="pay-once")
    assert other_body.status_code == 409 and other_body.json()["code"] == "idempotency_key_reused"
    missing = await paying.post(
        "/v1/tuition/me/payments", headers=parent.headers, json={"items": [{"invoice_id": b["id"]}]}
    )
    assert missing.status_code == 422


async def test_declined_payment_releases_the_invoices(
    paying: httpx.AsyncClient, tokens: TokenFactory, payments_stack: PaymentsStack
) -> None:
    _, parent, (a, _b) = await setup_family(paying, tokens)
    order = (await parent.pay(a["id"])).json()
    await payments_stack.approve(order, decision="decline")
    await until_order(parent, order["id"], "failed")
    seen = await invoice_as(paying, parent.headers, a["id"])
    assert (seen["status"], seen["paid_vnd"], seen["payment_pending"]) == ("open", 0, False)
    retry = await parent.pay(a["id"])
    assert retry.status_code == 201


async def test_guardian_cancels_a_pending_payment(paying: httpx.AsyncClient, tokens: TokenFactory) -> None:
    _, parent, (a, _b) = await setup_family(paying, tokens)
    order = (await parent.pay(a["id"])).json()
    canceled = await paying.post(f"/v1/tuition/me/payments/{order['id']}/cancel", headers=parent.headers)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    assert (await invoice_as(paying, parent.headers, a["id"]))["payment_pending"] is False
    assert (await parent.pay(a["id"])).status_code == 201


async def test_bad_payment_requests_are_4xx_and_reserve_nothing(
    paying: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    school, parent, (a, _b) = await setup_family(paying, tokens)
    stranger = Guardian(paying, tokens, "stranger")
    not_theirs = await stranger.pay(a["id"])
    assert not_theirs.status_code == 404 and not_theirs.json()["errors"][0]["field"] == "body.items.0.invoice_id"
    twice = await paying.post(
        "/v1/tuition/me/payments",
        headers={**parent.headers, "Idempotency-Key": "k1"},
        json={"items": [{"invoice_id": a["id"]}, {"invoice_id": a["id"]}]},
    )
    assert twice.status_code == 422 and twice.json()["errors"][0]["field"] == "body.items"
    empty = await paying.post(
        "/v1/tuition/me/payments", headers={**parent.headers, "Idempotency-Key": "k2"}, json={"items": []}
    )
    assert empty.status_code == 422
    school_token = await paying.post(
        "/v1/tuition/me/payments",
        headers={**school.headers, "Idempotency-Key": "k3"},
        json={"items": [{"invoice_id": a["id"]}]},
    )
    assert school_token.status_code == 403
    assert (await invoice_as(paying, parent.headers, a["id"]))["payment_pending"] is False
    assert (await paying.get("/v1/tuition/me/payments", headers=parent.headers)).json()["items"] == []
    other = await paying.get("/v1/tuition/me/payments/nope", headers=parent.headers)
    assert other.status_code == 404


async def publish_payment_event(
    redis_url: str, event_type: str, payment: dict[str, Any], event_id: str | None = None
) -> str:
    """Deliver a payments event the way the payments relay does (CloudEvent on the payments stream)."""
    data = (
        {
            k: payment[k]
            for k in ("payment_id", "purpose", "reference", "payer_sub", "amount_vnd", "amount_refunded_vnd", "status")
        }
        if "payment_id" in payment
        else {
            "payment_id": payment["id"],
            "purpose": payment["purpose"],
            "reference": payment["reference"],
            "payer_sub": payment["payer_sub"],
            "amount_vnd": payment["amount_vnd"],
            "amount_refunded_vnd": payment.get("amount_refunded_vnd", 0),
            "status": payment["status"],
        }
    )
    event = CloudEvent(
        id=event_id or new_id(),
        source="/dncity/payments",
        type=event_type,
        time=utcnow(),
        subject=data["payment_id"],
        data=data,
    )
    redis = create_redis(redis_url)
    try:
        await redis.xadd(stream_for("payments"), event.to_fields())
    finally:
        await redis.aclose()
    return event.id


async def stream_events(redis_url: str, payment_id: str) -> list[dict[str, Any]]:
    redis = create_redis(redis_url)
    try:
        entries = await redis.xrange(stream_for("payments"))
    finally:
        await redis.aclose()
    events = [json.loads(f[b"event"]) for _, f in entries]
    return [e for e in events if e.get("data", {}).get("payment_id") == payment_id]


async def test_duplicate_and_stale_events_settle_exactly_once(
    paying: httpx.AsyncClient, tokens: TokenFactory, payments_stack: PaymentsStack, redis_url: str
) -> None:
    school, parent, (a, b) = await setup_family(paying, tokens)
    order = (await parent.pay(a["id"], b["id"])).json()
    await payments_stack.approve(order)
    await until_order(parent, order["id"], "succeeded")
    succeeded = next(e for e in await stream_events(redis_url, order["payment_id"]) if e["type"] == "payment.succeeded")
    # The very same event again (redelivery), a copy under a new id, and a stale cancel/failure afterwards.
    await publish_payment_event(redis_url, "payment.succeeded", succeeded["data"], event_id=succeeded["id"])
    await publish_payment_event(redis_url, "payment.succeeded", succeeded["data"])
    await publish_payment_event(redis_url, "payment.canceled", {**succeeded["data"], "status": "canceled"})
    marker = await publish_payment_event(redis_url, "payment.failed", {**succeeded["data"], "status": "failed"})
    await _until_processed(paying, marker)
    for invoice, amount in ((a, 1_200_000), (b, 800_000)):
        seen = await invoice_as(paying, parent.headers, invoice["id"])
        assert (seen["paid_vnd"], seen["status"]) == (amount, "paid")
    assert (await order_as(parent, order["id"]))["status"] == "succeeded"
    trail = (await paying.get(f"/v1/tuition/invoices/{a['id']}/audit", headers=school.headers)).json()["items"]
    assert [e["action"] for e in trail].count("payment_applied") == 1


async def _until_processed(paying: httpx.AsyncClient, event_id: str) -> None:
    """Wait until the tuition consumer has handled an event (its processed-message row exists)."""
    db = Database(os.environ["DNCITY_TUITION_DATABASE_URL"])  # the test database the app uses
    try:

        async def seen() -> bool:
            async with db.sessionmaker() as session:
                row = (
                    await session.execute(
                        select(events.processed.c.event_id).where(events.processed.c.event_id == event_id)
                    )
                ).first()
                return row is not None

        await wait_for(seen)
    finally:
        await db.dispose()


async def test_success_after_a_stale_expiry_still_settles(
    paying: httpx.AsyncClient, tokens: TokenFactory, payments_stack: PaymentsStack, redis_url: str
) -> None:
    """Out of order: an expiry is seen first (reservation released), then the real success arrives."""
    _, parent, (a, _b) = await setup_family(paying, tokens)
    order = (await parent.pay(a["id"])).json()
    payment = await payments_stack.payment(order["payment_id"])
    marker = await publish_payment_event(redis_url, "payment.expired", {**payment, "status": "expired"})
    await _until_processed(paying, marker)
    assert (await order_as(parent, order["id"]))["status"] == "expired"
    assert (await invoice_as(paying, parent.headers, a["id"]))["payment_pending"] is False
    await payments_stack.approve(order)
    await until_order(parent, order["id"], "succeeded")
    seen = await invoice_as(paying, parent.headers, a["id"])
    assert (seen["paid_vnd"], seen["status"]) == (1_200_000, "paid")


async def test_late_success_for_an_invoice_paid_meanwhile_is_refunded(
    paying: httpx.AsyncClient, tokens: TokenFactory, payments_stack: PaymentsStack, redis_url: str
) -> None:
    _, parent, (a, _b) = await setup_family(paying, tokens)
    first = (await parent.pay(a["id"])).json()
    payment = await payments_stack.payment(first["payment_id"])
    marker = await publish_payment_event(redis_url, "payment.expired", {**payment, "status": "expired"})
    await _until_processed(paying, marker)
    second = (await parent.pay(a["id"])).json()
    await payments_stack.approve(second)
    await until_order(parent, second["id"], "succeeded")
    await payments_stack.approve(first)  # the first payment goes through after all
    settled = await until_order(parent, first["id"], "succeeded")
    assert [i["state"] for i in settled["items"]] == ["refunded"]
    seen = await invoice_as(paying, parent.headers, a["id"])
    assert seen["paid_vnd"] == 1_200_000  # paid once, not twice

    async def refunded() -> dict[str, Any] | None:
        p = await payments_stack.payment(first["payment_id"])
        return p if p["amount_refunded_vnd"] == 1_200_000 else None

    await wait_for(refunded)


async def test_voiding_a_paid_line_refunds_it(
    paying: httpx.AsyncClient, tokens: TokenFactory, payments_stack: PaymentsStack
) -> None:
    school = School(paying, tokens)
    [child] = await school.students(student_row("HS001"))
    rnd = await school.round()
    invoice = await school.invoice(rnd["id"], "HS001", ("tuition", "Học phí", 1_000_000), ("club", "CLB", 250_000))
    parent = Guardian(paying, tokens, "parent-1")
    await parent.link(await school.link_code(child["id"]))
    order = (await parent.pay(invoice["id"])).json()
    await payments_stack.approve(order)
    await until_order(parent, order["id"], "succeeded")
    club = invoice["lines"][1]
    voided = await paying.post(
        f"/v1/tuition/invoices/{invoice['id']}/lines/{club['id']}/void",
        headers=school.headers,
        json={"reason": "CLB bị hủy"},
    )
    assert voided.status_code == 200, voided.text
    body = voided.json()
    assert (body["total_vnd"], body["paid_vnd"], body["refunded_vnd"], body["status"]) == (
        1_000_000,
        1_000_000,
        250_000,
        "paid",
    )
    payment = await payments_stack.payment(order["payment_id"])
    assert payment["amount_refunded_vnd"] == 250_000
    trail = (await paying.get(f"/v1/tuition/invoices/{invoice['id']}/audit", headers=school.headers)).json()["items"]
    assert [e["action"] for e in trail][-2:] == ["line_voided", "refunded"]
