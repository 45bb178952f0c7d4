"""Refunds: full and partial, never more than what remains, exactly right under concurrency."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from services.payments.ledger.models import LedgerEntry
from tests.payments.conftest import Stack


async def paid(stack: Stack, amount: int = 100_000) -> dict[str, Any]:
    payment = (await stack.create(amount=amount)).json()
    await stack.approve(payment)
    return await stack.wait_status(payment["id"], "succeeded")


async def refund(stack: Stack, payment_id: str, key: str, amount: int | None = None, **extra: Any):  # type: ignore[no-untyped-def]
    body: dict[str, Any] = {"reason": "customer asked", **extra}
    if amount is not None:
        body["amount_vnd"] = amount
    return await stack.http.post(
        f"/v1/payments/{payment_id}/refunds", json=body, headers={**stack.writer, "Idempotency-Key": key}
    )


async def test_partial_then_rest_then_nothing(stack: Stack) -> None:
    payment = await paid(stack)
    first = await refund(stack, payment["id"], "a", 30_000)
    assert first.status_code == 201 and first.json()["amount_vnd"] == 30_000
    too_much = await refund(stack, payment["id"], "b", 70_001)
    assert too_much.status_code == 409 and too_much.json()["code"] == "refund_exceeds_remaining"
    assert too_much.json()["remaining_vnd"] == 70_000
    rest = await refund(stack, payment["id"], "c")  # no amount: everything that remains
    assert rest.status_code == 201 and rest.json()["amount_vnd"] == 70_000
    done = (await stack.http.get(f"/v1/payments/{payment['id']}", headers=stack.writer)).json()
    assert done["status"] == "refunded" and done["amount_refunded_vnd"] == 100_000
    nothing = await refund(stack, payment["id"], "d", 1)
    assert nothing.status_code == 409 and nothing.json()["code"] == "refund_exceeds_remaining"
    listed = (await stack.http.get(f"/v1/payments/{payment['id']}/refunds", headers=stack.writer)).json()
    assert [r["amount_vnd"] for r in listed["items"]] == [30_000, 70_000]


async def test_refund_idempotency(stack: Stack) -> None:
    payment = await paid(stack)
    first = await refund(stack, payment["id"], "same", 10_000)
    again = await refund(stack, payment["id"], "same", 10_000)
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = await refund(stack, payment["id"], "same", 20_000)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    now = (await stack.http.get(f"/v1/payments/{payment['id']}", headers=stack.writer)).json()
    assert now["amount_refunded_vnd"] == 10_000


async def test_bad_refund_amounts(stack: Stack) -> None:
    payment = await paid(stack)
    for amount in (0, -1, 10.5, "1000", True):
        response = await refund(stack, payment["id"], f"bad-{amount}", amount)  # type: ignore[arg-type]
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "body.amount_vnd"
    missing_reason = await stack.http.post(
        f"/v1/payments/{payment['id']}/refunds",
        json={"amount_vnd": 5},
        headers={**stack.writer, "Idempotency-Key": "nr"},
    )
    assert missing_reason.status_code == 422 and missing_reason.json()["errors"][0]["field"] == "body.reason"
    now = (await stack.http.get(f"/v1/payments/{payment['id']}", headers=stack.writer)).json()
    assert now["amount_refunded_vnd"] == 0 and now["status"] == "succeeded"


async def test_unpaid_payment_is_not_refundable(stack: Stack) -> None:
    payment = (await stack.create()).json()
    response = await refund(stack, payment["id"], "early", 1000)
    assert response.status_code == 409 and response.json()["code"] == "payment_not_refundable"


async def test_concurrent_refunds_add_up_exactly(stack: Stack) -> None:
    payment = await paid(stack, 100_000)
    responses = await asyncio.gather(*(refund(stack, payment["id"], f"c{i}", 15_000) for i in range(12)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 6 and statuses.count(409) == 6  # 6 x 15 000 = 90 000 <= 100 000 < 105 000
    full = await asyncio.gather(*(refund(stack, payment["id"], f"f{i}") for i in range(5)))
    assert sorted(r.status_code for r in full) == [201, 409, 409, 409, 409]
    now = (await stack.http.get(f"/v1/payments/{payment['id']}", headers=stack.writer)).json()
    assert now["status"] == "refunded" and now["amount_refunded_vnd"] == 100_000
    intent = await stack.ctx.provider("sandbox").retrieve_intent(now["provider_reference"])
    assert intent.amount_refunded == 100_000
    async with stack.db.sessionmaker() as session:
        legs = (
            (
                await session.execute(
                    select(LedgerEntry).where(LedgerEntry.payment_id == payment["id"], LedgerEntry.side == "debit")
                )
            )
            .scalars()
            .all()
        )
    assert sum(leg.amount_vnd for leg in legs if leg.movement.startswith("refund:")) == 100_000
