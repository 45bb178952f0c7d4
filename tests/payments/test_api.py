"""Payments API: validation, idempotency, authorization (no BOLA), listing, cancel, receipts, events."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from services.payments.ledger.service import balances
from services.payments.payments.models import Payment
from services.payments.receipts.service import format_vnd
from shared.redis import create_redis
from tests.helpers.tokens import TokenFactory
from tests.payments.conftest import Stack


async def count_payments(stack: Stack) -> int:
    async with stack.db.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(Payment))).scalar_one())


async def provider_intents_today(stack: Stack) -> int:
    day = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
    return len(await stack.ctx.provider("sandbox").list_intents_for_day(day))


@pytest.mark.parametrize(
    ("amount", "kind"),
    [
        (0, "greater_than"),
        (-5000, "greater_than"),
        (1500.5, "int_type"),
        (1000.0, "int_type"),
        ("50000", "int_type"),
        (True, "int_type"),
        (None, "int_type"),
        (100_000_001, "too_large"),
    ],
)
async def test_bad_amounts_are_422_naming_the_field_and_store_nothing(stack: Stack, amount: object, kind: str) -> None:
    response = await stack.create(amount=amount)  # type: ignore[arg-type]
    assert response.status_code == 422, response.text
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert body["errors"][0]["field"] == "body.amount_vnd" and body["errors"][0]["type"] == kind
    assert await count_payments(stack) == 0 and await provider_intents_today(stack) == 0


async def test_other_bad_input(stack: Stack) -> None:
    for overrides, field in [
        ({"purpose": "casino"}, "body.purpose"),
        ({"wallet": "nowhere"}, "body.wallet"),
        ({"reference": ""}, "body.reference"),
        ({"payer_sub": ""}, "body.payer_sub"),
    ]:
        response = await stack.create(**overrides)
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == field
    missing = await stack.http.post("/v1/payments", json={"amount_vnd": 1000}, headers=stack.writer)
    assert missing.status_code == 422
    assert await count_payments(stack) == 0


async def test_idempotent_replay_and_key_reuse_with_another_body(stack: Stack) -> None:
    first = await stack.create(amount=20_000, key="same")
    again = await stack.create(amount=20_000, key="same")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = await stack.create(amount=30_000, key="same")
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    assert await count_payments(stack) == 1 and await provider_intents_today(stack) == 1


async def test_fifty_concurrent_creates_with_one_key_make_one_payment_and_one_intent(stack: Stack) -> None:
    responses = await asyncio.gather(*(stack.create(amount=70_000, key="burst") for _ in range(50)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert len({r.json()["next_action"]["url"] for r in responses}) == 1
    assert await count_payments(stack) == 1 and await provider_intents_today(stack) == 1


async def test_bola_and_scopes(stack: Stack, tokens: TokenFactory) -> None:
    mine = (await stack.create(payer_sub="citizen-1")).json()
    theirs = (await stack.create(payer_sub="citizen-2")).json()
    owner = tokens.bearer(tokens.user("citizen-1", ["payments"]))
    stranger = tokens.bearer(tokens.user("citizen-3", ["payments"]))
    no_scope = tokens.bearer(tokens.user("citizen-1", ["openid"]))
    other_agency = tokens.bearer(tokens.client("svc-tuition", ["payments.write"]))
    reader_without_write = tokens.bearer(tokens.client("demo-hospital", ["health.records.write"]))

    assert (await stack.http.get(f"/v1/payments/{mine['id']}", headers=owner)).status_code == 200
    for headers in (stranger, other_agency):
        response = await stack.http.get(f"/v1/payments/{mine['id']}", headers=headers)
        assert response.status_code == 404 and response.json()["code"] == "payment_not_found"
    assert (await stack.http.get(f"/v1/payments/{theirs['id']}", headers=owner)).status_code == 404
    assert (await stack.http.get(f"/v1/payments/{mine['id']}", headers=no_scope)).status_code == 403
    assert (await stack.http.get(f"/v1/payments/{mine['id']}", headers=reader_without_write)).status_code == 403
    assert (await stack.http.get(f"/v1/payments/{mine['id']}")).status_code == 401

    listed = (await stack.http.get("/v1/payments", headers=owner)).json()
    assert [p["id"] for p in listed["items"]] == [mine["id"]]
    assert (await stack.http.get("/v1/payments", headers=other_agency)).json()["items"] == []
    assert len((await stack.http.get("/v1/payments", headers=stack.writer)).json()["items"]) == 2

    # People cannot create, cancel or refund; other agencies cannot act on what they did not create.
    assert (await stack.create(headers=owner)).status_code == 403
    assert (await stack.http.post(f"/v1/payments/{mine['id']}/cancel", headers=owner)).status_code == 403
    assert (await stack.http.post(f"/v1/payments/{mine['id']}/cancel", headers=other_agency)).status_code == 404
    refund = await stack.http.post(
        f"/v1/payments/{mine['id']}/refunds", json={"reason": "x"}, headers={**other_agency, "Idempotency-Key": "r"}
    )
    assert refund.status_code == 404
    assert (await stack.http.get(f"/v1/payments/{mine['id']}/receipt", headers=stranger)).status_code == 404
    assert (await stack.http.get(f"/v1/payments/{mine['id']}/history", headers=stranger)).status_code == 404


async def test_list_pagination_and_status_filter(stack: Stack, tokens: TokenFactory) -> None:
    ids = [(await stack.create(amount=1000 + i)).json()["id"] for i in range(5)]
    owner = tokens.bearer(tokens.user("citizen-1", ["payments"]))
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await stack.http.get("/v1/payments", params=params, headers=owner)).json()
        seen.extend(p["id"] for p in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    await stack.http.post(f"/v1/payments/{ids[0]}/cancel", headers=stack.writer)
    canceled = (await stack.http.get("/v1/payments", params={"status": "canceled"}, headers=owner)).json()
    assert [p["id"] for p in canceled["items"]] == [ids[0]]
    bad = await stack.http.get("/v1/payments", params={"status": "lost"}, headers=owner)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.status"
    bad_cursor = await stack.http.get("/v1/payments", params={"cursor": "nonsense"}, headers=owner)
    assert bad_cursor.status_code == 422 and bad_cursor.json()["errors"][0]["field"] == "query.cursor"


async def test_cancel_before_and_after_payment(stack: Stack) -> None:
    payment = (await stack.create()).json()
    canceled = await stack.http.post(f"/v1/payments/{payment['id']}/cancel", headers=stack.writer)
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    again = await stack.http.post(f"/v1/payments/{payment['id']}/cancel", headers=stack.writer)
    assert again.status_code == 200 and again.json()["status"] == "canceled"
    assert [kind for kind, _ in await stack.events_of(payment["id"])] == ["payment.canceled"]  # once
    # The wallet page no longer accepts an approval.
    assert (await stack.approve(payment)).status_code == 409

    paid = (await stack.create()).json()
    await stack.approve(paid)
    await stack.wait_status(paid["id"], "succeeded")
    refused = await stack.http.post(f"/v1/payments/{paid['id']}/cancel", headers=stack.writer)
    assert refused.status_code == 409 and refused.json()["code"] == "payment_not_cancelable"


async def test_cancel_racing_an_approval_records_the_success(stack: Stack) -> None:
    payment = (await stack.create()).json()
    await stack.behave(hold_webhooks=True)  # we have not heard of the approval yet
    await stack.approve(payment)
    refused = await stack.http.post(f"/v1/payments/{payment['id']}/cancel", headers=stack.writer)
    assert refused.status_code == 409 and refused.json()["code"] == "payment_not_cancelable"
    now = (await stack.http.get(f"/v1/payments/{payment['id']}", headers=stack.writer)).json()
    assert now["status"] == "succeeded"


async def test_transitions_are_recorded_with_causes(stack: Stack) -> None:
    payment = (await stack.create()).json()
    await stack.approve(payment)
    await stack.wait_status(payment["id"], "succeeded")
    history = (await stack.http.get(f"/v1/payments/{payment['id']}/history", headers=stack.writer)).json()
    moves = [(h["from_status"], h["to_status"]) for h in history["items"]]
    assert moves == [(None, "requires_action"), ("requires_action", "succeeded")]
    assert "payment_intent.succeeded" in history["items"][1]["cause"]


async def test_receipt_json_and_pdf(stack: Stack, tokens: TokenFactory) -> None:
    payment = (await stack.create(amount=1_234_000, purpose="tuition", reference="inv-9")).json()
    owner = tokens.bearer(tokens.user("citizen-1", ["payments"]))
    early = await stack.http.get(f"/v1/payments/{payment['id']}/receipt", headers=owner)
    assert early.status_code == 409 and early.json()["code"] == "receipt_not_available"
    await stack.approve(payment)
    await stack.wait_status(payment["id"], "succeeded")
    receipt = (await stack.http.get(f"/v1/payments/{payment['id']}/receipt", headers=owner)).json()
    assert receipt["amount_formatted"] == "1.234.000 ₫" and receipt["reference"] == "inv-9"
    assert receipt["provider_reference"].startswith("pi_") and receipt["purpose_label"].startswith("Học phí")
    paid_at = datetime.fromisoformat(receipt["paid_at"]).astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
    assert receipt["paid_at_local"] == paid_at.strftime("%d/%m/%Y %H:%M:%S")
    pdf = await stack.http.get(f"/v1/payments/{payment['id']}/receipt", headers={**owner, "Accept": "application/pdf"})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and len(pdf.content) > 1000
    by_query = await stack.http.get(
        f"/v1/payments/{payment['id']}/receipt", params={"format": "pdf"}, headers=stack.writer
    )
    assert by_query.content.startswith(b"%PDF")


def test_vnd_formatting() -> None:
    assert format_vnd(1_234_000) == "1.234.000 ₫"
    assert format_vnd(500) == "500 ₫"
    assert format_vnd(0) == "0 ₫"


async def test_events_carry_purpose_and_reference_and_the_ledger_balances(stack: Stack, redis_url: str) -> None:
    payment = (await stack.create(amount=40_000, purpose="health", reference="appt-7")).json()
    await stack.approve(payment)
    await stack.wait_status(payment["id"], "succeeded")
    await stack.http.post(
        f"/v1/payments/{payment['id']}/refunds",
        json={"reason": "canceled visit"},
        headers={**stack.writer, "Idempotency-Key": "r-all"},
    )
    redis = create_redis(redis_url)
    try:
        found: dict[str, dict[str, object]] = {}
        for _ in range(50):
            for _id, fields in await redis.xrange("dncity:events:payments"):
                envelope = json.loads(fields[b"event"])
                if envelope["type"].startswith("payment."):
                    found[envelope["type"]] = envelope
            if {"payment.succeeded", "payment.refunded"} <= set(found):
                break
            await asyncio.sleep(0.1)
    finally:
        await redis.aclose()
    succeeded = found["payment.succeeded"]
    assert succeeded["specversion"] == "1.0" and succeeded["subject"] == payment["id"]
    assert succeeded["data"] == {
        "payment_id": payment["id"],
        "purpose": "health",
        "reference": "appt-7",
        "payer_sub": "citizen-1",
        "amount_vnd": 40_000,
        "amount_refunded_vnd": 0,
        "status": "succeeded",
        "requested_by": "svc-parking",
    }
    assert found["payment.refunded"]["data"]["status"] == "refunded"
    assert found["payment.refunded"]["data"]["amount_refunded_vnd"] == 40_000
    async with stack.db.sessionmaker() as session:
        totals = await balances(session)
    assert sum(totals.values()) == 0
    assert totals == {"payer_wallet_clearing:sandbox": 0, "agency_receivable:svc-parking": 0}


async def test_unknown_provider_webhook_is_404(stack: Stack) -> None:
    response = await stack.http.post("/v1/payments/webhooks/nowhere", content=b"{}")
    assert response.status_code == 404


async def test_provider_unavailable_on_create_is_503_and_a_retry_gets_the_same_intent(stack: Stack) -> None:
    await stack.behave(response_delay_s=3.0)  # the provider acts, then answers after our 2 s timeout
    lost = await stack.create(amount=9_000, key="slow")
    assert lost.status_code == 503 and lost.json()["code"] == "provider_unavailable"
    assert await count_payments(stack) == 0  # nothing marked failed, nothing half-stored
    await stack.behave()
    retried = await stack.create(amount=9_000, key="slow")
    assert retried.status_code == 201 and retried.json()["status"] == "requires_action"
    assert await provider_intents_today(stack) == 1  # the provider deduplicated on our key


async def test_openapi_declares_operations(stack: Stack) -> None:
    schema = (await stack.http.get("/openapi.json")).json()
    ops = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert {
        "create_payment",
        "list_payments",
        "get_payment",
        "cancel_payment",
        "create_refund",
        "get_receipt",
        "receive_webhook",
    } <= ops


async def test_provider_refusing_the_intent_fails_the_payment_with_its_cause(stack: Stack) -> None:
    await stack.behave(fail_next_status=402, fail_next_count=1)
    refused = await stack.create(amount=5_000, key="refused")
    assert refused.status_code == 201 and refused.json()["status"] == "failed"
    assert refused.json()["next_action"] is None
    history = (await stack.http.get(f"/v1/payments/{refused.json()['id']}/history", headers=stack.writer)).json()
    assert [h["to_status"] for h in history["items"]] == ["requires_action", "failed"]
    assert "provider refused" in history["items"][1]["cause"]
    # The same key replays the refusal; nothing is retried behind the caller's back.
    again = await stack.create(amount=5_000, key="refused")
    assert again.json() == refused.json()


async def test_pdf_receipt_without_a_unicode_font_is_503_not_garbled(stack: Stack, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from services.payments.receipts import service as receipts

    payment = (await stack.create()).json()
    await stack.approve(payment)
    await stack.wait_status(payment["id"], "succeeded")
    monkeypatch.setattr(receipts, "FONT_DIRS", ())
    pdf = await stack.http.get(f"/v1/payments/{payment['id']}/receipt?format=pdf", headers=stack.writer)
    assert pdf.status_code == 503 and pdf.json()["code"] == "receipt_pdf_unavailable"
    assert (await stack.http.get(f"/v1/payments/{payment['id']}/receipt", headers=stack.writer)).status_code == 200
