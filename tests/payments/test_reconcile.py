"""Unknown outcomes settled by querying the provider; the daily ledger-versus-provider comparison."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.payments.reconciliation.service import reconcile_day, settle_stuck
from tests.payments.conftest import Stack

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def today() -> datetime:
    return datetime.now(VN)


async def test_missed_webhooks_are_settled_by_the_reconciler(stack: Stack) -> None:
    await stack.behave(hold_webhooks=True)  # notifications lost
    approved, declined, waiting = [(await stack.create()).json() for _ in range(3)]
    await stack.approve(approved)
    await stack.approve(declined, "decline")
    report = await settle_stuck(stack.db, stack.ctx, older_than_s=0)
    assert report.examined == 3 and report.changed == 2
    assert (await stack.wait_status(approved["id"], "succeeded", timeout=1))["status"] == "succeeded"
    assert (await stack.wait_status(declined["id"], "failed", timeout=1))["status"] == "failed"
    assert (await stack.wait_status(waiting["id"], "requires_action", timeout=1))["status"] == "requires_action"
    # Late webhooks afterwards change nothing.
    await stack.sandbox.post("/v1/sandbox/webhooks/flush")
    await asyncio.sleep(0.5)
    history = (await stack.http.get(f"/v1/payments/{approved['id']}/history", headers=stack.writer)).json()
    assert [h["to_status"] for h in history["items"]] == ["requires_action", "succeeded"]
    assert "reconciler" in history["items"][1]["cause"]


async def test_provider_timeout_during_reconcile_changes_nothing(stack: Stack) -> None:
    await stack.behave(hold_webhooks=True)
    payment = (await stack.create()).json()
    await stack.approve(payment)
    await stack.behave(hold_webhooks=True, fail_next_status=503, fail_next_count=10)
    report = await settle_stuck(stack.db, stack.ctx, older_than_s=0)
    assert report.unknown == 1 and report.changed == 0
    now = (await stack.http.get(f"/v1/payments/{payment['id']}", headers=stack.writer)).json()
    assert now["status"] == "requires_action"  # unknown is not failed
    await stack.behave(hold_webhooks=True)
    await settle_stuck(stack.db, stack.ctx, older_than_s=0)
    await stack.wait_status(payment["id"], "succeeded", timeout=1)


async def test_lapsed_approval_window_expires_the_payment(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = await stack_factory(payment_ttl_s=1)
    payment = (await stack.create()).json()
    await asyncio.sleep(1.2)
    await settle_stuck(stack.db, stack.ctx, older_than_s=0)
    expired = await stack.wait_status(payment["id"], "expired")
    assert expired["next_action"] is None
    assert [kind for kind, _ in await stack.events_of(payment["id"])] == ["payment.expired"]
    intent = await stack.ctx.provider("sandbox").retrieve_intent(expired["provider_reference"])
    assert intent.status == "canceled" and intent.cancellation_reason == "expired"
    assert (await stack.approve(payment)).status_code == 409


async def test_refund_with_unknown_outcome_stays_pending_then_settles(stack: Stack) -> None:
    payment = (await stack.create(amount=60_000)).json()
    await stack.approve(payment)
    await stack.wait_status(payment["id"], "succeeded")
    # The provider refunds, the answer comes too late, and its notification is held: only a query can tell.
    await stack.behave(response_delay_s=3.0, hold_webhooks=True)
    pending = await stack.http.post(
        f"/v1/payments/{payment['id']}/refunds",
        json={"reason": "late"},
        headers={**stack.writer, "Idempotency-Key": "slow-refund"},
    )
    assert pending.status_code == 201 and pending.json()["status"] == "pending"
    # The pending amount is reserved: nothing more can be refunded meanwhile.
    await stack.behave(hold_webhooks=True)
    blocked = await stack.http.post(
        f"/v1/payments/{payment['id']}/refunds",
        json={"reason": "x", "amount_vnd": 1},
        headers={**stack.writer, "Idempotency-Key": "more"},
    )
    assert blocked.status_code == 409
    report = await settle_stuck(stack.db, stack.ctx, older_than_s=0)
    assert report.refunds_settled == 1
    done = await stack.wait_status(payment["id"], "refunded", timeout=2)
    assert done["amount_refunded_vnd"] == 60_000
    intent = await stack.ctx.provider("sandbox").retrieve_intent(payment["provider_reference"])
    assert intent.amount_refunded == 60_000  # refunded once, although asked twice


async def test_daily_reconciliation_reports_every_mismatch(stack: Stack) -> None:
    ok = (await stack.create(amount=10_000)).json()
    await stack.approve(ok)
    await stack.wait_status(ok["id"], "succeeded")
    await stack.behave(hold_webhooks=True)
    # 1. Paid at the provider, our side never heard: missing in our ledger (and a status mismatch).
    unheard = (await stack.create(amount=20_000)).json()
    await stack.approve(unheard)
    # 2. Refunded at the provider's console, never notified: refund mismatch.
    await stack.sandbox.post(
        "/v1/refunds",
        json={"payment_intent": ok["provider_reference"], "amount": 1_000},
        headers={"Idempotency-Key": "console"},
    )
    # 3. An intent somebody created directly at the provider and the payer paid: unknown to us.
    stray = (
        await stack.sandbox.post(
            "/v1/payment_intents", json={"amount": 5_000, "currency": "vnd"}, headers={"Idempotency-Key": "stray"}
        )
    ).json()
    async with __import__("httpx").AsyncClient() as browser:
        await browser.post(stray["next_action"]["redirect_to_url"]["url"], data={"decision": "approve"})

    report = await reconcile_day(stack.db, stack.ctx, today().date())
    kinds = sorted((m.kind, m.provider_reference) for m in report.mismatches)
    assert kinds == sorted(
        [
            ("missing_in_ledger", unheard["provider_reference"]),
            ("status_mismatch", unheard["provider_reference"]),
            ("refund_mismatch", ok["provider_reference"]),
            ("missing_in_ledger", stray["id"]),
        ]
    )
    # Another day has nothing.
    assert (await reconcile_day(stack.db, stack.ctx, (today() - timedelta(days=3)).date())).mismatches == []


async def test_cli_prints_mismatches(stack: Stack) -> None:
    payment = (await stack.create(amount=10_000)).json()
    await stack.behave(hold_webhooks=True)
    await stack.approve(payment)
    env = {**os.environ, "DNCITY_PAYMENTS_PROVIDER_URL": stack.sandbox_url}
    day = today().date().isoformat()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dncity.cli",
        "payments",
        "reconcile",
        "--date",
        day,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    text = out.decode()
    assert process.returncode == 1, err.decode()
    assert f"Reconciliation for {day}" in text
    assert f"MISMATCH missing_in_ledger: payment={payment['id']} provider={payment['provider_reference']}" in text

    await settle_stuck(stack.db, stack.ctx, older_than_s=0)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dncity.cli",
        "payments",
        "reconcile",
        "--date",
        day,
        "--json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert json.loads(out)["mismatches"] == [] and json.loads(out)["captured_vnd"] == 10_000

    bad = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dncity.cli",
        "payments",
        "reconcile",
        "--date",
        "29-11-2026",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    await bad.communicate()
    assert bad.returncode == 2


async def test_the_background_reconciler_runs_on_its_interval(stack_factory) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = await stack_factory(reconciler_enabled=True, reconcile_interval_s=0.3, reconcile_stuck_after_s=0)
    await stack.behave(hold_webhooks=True)
    payment = (await stack.create()).json()
    await stack.approve(payment)
    await stack.wait_status(payment["id"], "succeeded", timeout=10)
    history = (await stack.http.get(f"/v1/payments/{payment['id']}/history", headers=stack.writer)).json()
    assert "reconciler" in history["items"][-1]["cause"]
