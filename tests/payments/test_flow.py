"""End to end on real ports: create → approve on the wallet page → webhook → succeeded → refund → reconcile."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from services.payments.reconciliation.service import reconcile_day
from tests.payments.conftest import Stack


async def test_create_approve_webhook_refund_reconcile(stack: Stack) -> None:
    created = await stack.create(amount=1_234_000)
    assert created.status_code == 201, created.text
    payment = created.json()
    assert payment["status"] == "requires_action" and payment["amount_refunded_vnd"] == 0
    assert payment["next_action"]["type"] == "redirect_to_url"
    assert payment["next_action"]["url"].startswith(stack.sandbox_url + "/wallet/")

    async with __import__("httpx").AsyncClient() as browser:
        page = await browser.get(payment["next_action"]["url"])
    assert page.status_code == 200 and "1.234.000 ₫" in page.text and 'name="decision"' in page.text

    approved = await stack.approve(payment)
    assert approved.status_code == 200 and "Đã thanh toán" in approved.text
    paid = await stack.wait_status(payment["id"], "succeeded")
    assert paid["next_action"] is None

    refund = await stack.http.post(
        f"/v1/payments/{payment['id']}/refunds",
        json={"amount_vnd": 234_000, "reason": "overcharged"},
        headers={**stack.writer, "Idempotency-Key": "r1"},
    )
    assert refund.status_code == 201, refund.text
    assert refund.json()["status"] == "succeeded" and refund.json()["amount_vnd"] == 234_000
    after = (await stack.http.get(f"/v1/payments/{payment['id']}", headers=stack.writer)).json()
    assert after["status"] == "partially_refunded" and after["amount_refunded_vnd"] == 234_000

    day = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
    report = await reconcile_day(stack.db, stack.ctx, day)
    assert report.mismatches == []
    assert report.captured_vnd == 1_234_000 and report.refunded_vnd == 234_000


async def test_the_same_flow_through_the_gateway(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = await stack_factory(via_gateway=True)
    payment = (await stack.create(amount=75_000, purpose="admin_fee", reference="dossier-42")).json()
    assert payment["status"] == "requires_action"
    await stack.approve(payment)
    await stack.wait_status(payment["id"], "succeeded")  # the webhook came in through the gateway
    refund = await stack.http.post(
        f"/v1/payments/{payment['id']}/refunds",
        json={"reason": "withdrawn"},
        headers={**stack.writer, "Idempotency-Key": "gw-r1"},
    )
    assert refund.status_code == 201 and refund.json()["amount_vnd"] == 75_000
    await stack.wait_status(payment["id"], "refunded")
    receipt = await stack.http.get(f"/v1/payments/{payment['id']}/receipt", headers=stack.writer)
    assert receipt.status_code == 200 and receipt.json()["amount_formatted"] == "75.000 ₫"
    report = await reconcile_day(stack.db, stack.ctx, datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date())
    assert report.mismatches == [] and report.captured_vnd == 75_000 and report.refunded_vnd == 75_000
