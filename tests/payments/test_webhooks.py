"""Webhooks in: signature over the raw body, ±5 minutes, dedup by event id, out-of-order delivery."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from sqlalchemy import func, select

from services.payments.ledger.models import LedgerEntry
from services.payments.payments.models import WebhookEvent
from services.payments.provider import signing
from services.payments.provider.signing import SignatureError
from tests.payments.conftest import Stack


def test_sign_and_verify() -> None:
    body = b'{"id":"evt_1"}'
    header = signing.sign("secret", body, timestamp=1_700_000_000)
    assert signing.verify("secret", header, body, now=1_700_000_100) == 1_700_000_000
    for bad_header, bad_body, now in [
        (header, b'{"id":"evt_2"}', 1_700_000_000),  # tampered body
        (header.replace("v1=", "v1=0"), body, 1_700_000_000),  # wrong signature
        (header, body, 1_700_000_301),  # too old
        (header, body, 1_699_999_699),  # too far in the future
        ("garbage", body, 1_700_000_000),
        ("", body, 1_700_000_000),
        ("t=x,v1=ab", body, 1_700_000_000),
    ]:
        try:
            signing.verify("secret", bad_header, bad_body, now=now)
        except SignatureError:
            continue
        raise AssertionError(f"accepted {bad_header!r}")
    assert signing.verify("secret", header + ",v1=" + "0" * 64, body, now=1_700_000_000)  # rotation: any v1


async def provider_event(
    stack: Stack, payment: dict[str, Any], event_id: str, type_: str = "payment_intent.succeeded"
) -> bytes:
    intent = await stack.sandbox.get(f"/v1/payment_intents/{payment['provider_reference']}")
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": type_,
            "created": int(time.time()),
            "data": {"object": intent.json()},
        }
    ).encode()


async def post(stack: Stack, raw: bytes, header: str | None) -> Any:
    headers = {"Content-Type": "application/json", **({signing.SIGNATURE_HEADER: header} if header else {})}
    return await stack.http.post("/v1/payments/webhooks/sandbox", content=raw, headers=headers)


async def test_signature_tolerance_and_dedup_at_the_endpoint(stack: Stack) -> None:
    await stack.behave(hold_webhooks=True)  # we send the notifications ourselves
    payment = (await stack.create()).json()
    await stack.approve(payment)
    raw = await provider_event(stack, payment, "evt_test_1")
    secret = stack.settings.webhook_secret

    assert (await post(stack, raw, None)).status_code == 401
    assert (await post(stack, raw, signing.sign("another-secret", raw))).status_code == 401
    assert (await post(stack, raw, signing.sign(secret, raw, int(time.time()) - 301))).status_code == 401
    assert (await post(stack, raw, signing.sign(secret, raw, int(time.time()) + 301))).status_code == 401
    tampered = raw.replace(b'"amount": 50000', b'"amount": 1')
    assert (await post(stack, tampered, signing.sign(secret, raw))).status_code == 401
    assert (await post(stack, b"not json", signing.sign(secret, b"not json"))).status_code == 400
    unchanged = (await stack.http.get(f"/v1/payments/{payment['id']}", headers=stack.writer)).json()
    assert unchanged["status"] == "requires_action"

    first = await post(stack, raw, signing.sign(secret, raw, int(time.time()) - 250))  # within ±5 min
    assert first.status_code == 200 and first.json() == {"received": True, "duplicate": False}
    replays = await asyncio.gather(*(post(stack, raw, signing.sign(secret, raw)) for _ in range(5)))
    assert all(r.status_code == 200 and r.json()["duplicate"] for r in replays)
    await stack.wait_status(payment["id"], "succeeded")
    async with stack.db.sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(WebhookEvent))).scalar_one() == 1
        legs = (await session.execute(select(func.count()).select_from(LedgerEntry))).scalar_one()
    assert legs == 2  # one capture journal


async def test_duplicate_deliveries_apply_once(stack: Stack) -> None:
    await stack.behave(duplicate_webhooks=True)
    payment = (await stack.create(amount=25_000)).json()
    await stack.approve(payment)
    await stack.wait_status(payment["id"], "succeeded")
    await asyncio.sleep(0.5)  # let the duplicates land
    history = (await stack.http.get(f"/v1/payments/{payment['id']}/history", headers=stack.writer)).json()
    assert [h["to_status"] for h in history["items"]] == ["requires_action", "succeeded"]
    async with stack.db.sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(LedgerEntry))).scalar_one() == 2


async def test_out_of_order_success_before_processing_never_goes_back(stack: Stack) -> None:
    await stack.behave(hold_webhooks=True, confirm_delay_s=0.2)
    payment = (await stack.create()).json()
    await stack.approve(payment)  # processing now, succeeded 0.2 s later
    for _ in range(100):  # both notifications queued at the provider
        if len((await stack.sandbox.get("/v1/sandbox/deliveries")).json()["data"]) == 2:
            break
        await asyncio.sleep(0.1)
    flushed = await stack.sandbox.post("/v1/sandbox/webhooks/flush", params={"order": "reverse"})
    assert flushed.json()["delivered"] == 2
    await stack.wait_status(payment["id"], "succeeded")
    await asyncio.sleep(0.5)  # the stale "processing" event is applied after and must change nothing
    final = (await stack.http.get(f"/v1/payments/{payment['id']}", headers=stack.writer)).json()
    assert final["status"] == "succeeded"
    history = (await stack.http.get(f"/v1/payments/{payment['id']}/history", headers=stack.writer)).json()
    assert [h["to_status"] for h in history["items"]] == ["requires_action", "succeeded"]


async def test_in_order_delayed_confirmation_goes_through_processing(stack: Stack) -> None:
    await stack.behave(confirm_delay_s=0.5)
    payment = (await stack.create()).json()
    await stack.approve(payment)
    await stack.wait_status(payment["id"], "processing")
    await stack.wait_status(payment["id"], "succeeded")
    history = (await stack.http.get(f"/v1/payments/{payment['id']}/history", headers=stack.writer)).json()
    assert [h["to_status"] for h in history["items"]] == ["requires_action", "processing", "succeeded"]


async def test_refund_notified_before_the_payment_success_is_refetched(stack: Stack) -> None:
    await stack.behave(hold_webhooks=True)
    payment = (await stack.create(amount=80_000)).json()
    await stack.approve(payment)
    # A refund made at the provider's console (not through us), then every event delivered backwards.
    await stack.sandbox.post(
        "/v1/refunds",
        json={"payment_intent": payment["provider_reference"], "amount": 30_000, "reason": "console"},
        headers={"Idempotency-Key": "console-1"},
    )
    flushed = await stack.sandbox.post("/v1/sandbox/webhooks/flush", params={"order": "reverse"})
    assert flushed.json()["delivered"] == 2
    final = await stack.wait_status(payment["id"], "partially_refunded")
    assert final["amount_refunded_vnd"] == 30_000
    refunds = (await stack.http.get(f"/v1/payments/{payment['id']}/refunds", headers=stack.writer)).json()
    assert [(r["amount_vnd"], r["status"]) for r in refunds["items"]] == [(30_000, "succeeded")]


async def test_declined_on_the_wallet_fails_the_payment(stack: Stack) -> None:
    payment = (await stack.create()).json()
    declined = await stack.approve(payment, "decline")
    assert declined.status_code == 200 and "Đã từ chối" in declined.text
    failed = await stack.wait_status(payment["id"], "failed")
    assert failed["next_action"] is None
    [(kind, data)] = await stack.events_of(payment["id"])
    assert kind == "payment.failed" and data["status"] == "failed" and data["reference"] == "res-1"
    await stack.behave(decline_all=True)
    other = (await stack.create()).json()
    await stack.approve(other)  # the wallet refuses anyway (e.g. insufficient balance)
    await stack.wait_status(other["id"], "failed")


async def test_refund_event_for_an_unpaid_intent_is_held(stack: Stack) -> None:
    from services.payments.payments import repository as repo
    from services.payments.provider.client import ProviderRefund
    from services.payments.webhooks.handler import NotYet, apply_refund

    payment = (await stack.create()).json()
    early = ProviderRefund(
        id="re_early",
        payment_intent=payment["provider_reference"],
        amount=1000,
        status="succeeded",
        created=int(time.time()),
    )
    async with stack.db.sessionmaker() as session, session.begin():
        try:
            await apply_refund(session, stack.ctx, early, "sandbox", "refund.succeeded")
        except NotYet:
            pass
        else:
            raise AssertionError("a refund before the payment's success was applied")
    async with stack.db.sessionmaker() as session:
        stored = await repo.get(session, payment["id"])
        assert stored is not None and stored.status == "requires_action" and stored.amount_refunded_vnd == 0
