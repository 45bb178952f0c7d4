"""Reconciliation: settle payments whose outcome we do not know yet, and compare a day's ledger with the
provider's list.

``settle_stuck`` is what the background reconciler runs (and tests call directly): for every payment
still requires_action/processing after a while, and every pending refund, ask the provider and apply
the answer. A payment past its expiry that the payer never approved is canceled at the provider and
marked expired. A provider that still does not answer leaves everything as it is.

``reconcile_day`` compares, for one Asia/Ho_Chi_Minh calendar day of payment creation, what our ledger
says was captured and refunded per payment with what the provider reports.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import structlog
from fastapi import FastAPI

from services.payments.ledger import service as ledger
from services.payments.payments import repository as repo
from services.payments.payments import service
from services.payments.payments.state import CAPTURED
from services.payments.provider.client import ProviderError, ProviderIntent, ProviderRefused, ProviderUnavailable
from shared.db import Database, utcnow

log = structlog.get_logger("payments.reconciler")
VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass
class SettleReport:
    examined: int = 0
    changed: int = 0
    unknown: int = 0
    refunds_settled: int = 0


async def settle_stuck(
    db: Database, ctx: service.PaymentsContext, *, older_than_s: float | None = None
) -> SettleReport:
    report = SettleReport()
    age = ctx.settings.reconcile_stuck_after_s if older_than_s is None else older_than_s
    cutoff = utcnow() - timedelta(seconds=age)
    async with db.sessionmaker() as session:
        payment_ids = await repo.pending_payments(session, older_than=cutoff)
        refund_ids = await repo.pending_refunds(session, older_than=cutoff)
    for payment_id in payment_ids:
        report.examined += 1
        try:
            async with db.sessionmaker() as session, session.begin():
                if await _settle_payment(session, ctx, payment_id):
                    report.changed += 1
        except ProviderError as exc:
            report.unknown += 1
            log.warning("reconcile_payment_unknown", payment_id=payment_id, error=str(exc))
    for refund_id in refund_ids:
        try:
            async with db.sessionmaker() as session, session.begin():
                if await _settle_refund(session, ctx, refund_id):
                    report.refunds_settled += 1
        except ProviderError as exc:
            report.unknown += 1
            log.warning("reconcile_refund_unknown", refund_id=refund_id, error=str(exc))
    if payment_ids or refund_ids:
        log.info("reconciler_pass", **asdict(report))
    return report


async def _settle_payment(session, ctx: service.PaymentsContext, payment_id: str) -> bool:  # type: ignore[no-untyped-def]
    payment = await repo.get(session, payment_id, for_update=True)
    if payment is None or payment.status not in ("requires_action", "processing"):
        return False
    before = payment.status
    provider = ctx.provider(payment.provider)
    if payment.provider_intent_id is None:
        return False
    intent = await provider.retrieve_intent(payment.provider_intent_id)
    await service.sync_from_intent(session, ctx, payment, intent, "reconciler query")
    if payment.status == "requires_action" and utcnow() >= payment.expires_at:
        try:
            intent = await provider.cancel_intent(
                payment.provider_intent_id, idempotency_key=f"dncity_expire_{payment.id}", reason="expired"
            )
        except ProviderRefused:
            intent = await provider.retrieve_intent(payment.provider_intent_id)
        await service.sync_from_intent(session, ctx, payment, intent, "reconciler: approval window lapsed")
    return payment.status != before


async def _settle_refund(session, ctx: service.PaymentsContext, refund_id: str) -> bool:  # type: ignore[no-untyped-def]
    refund = await repo.refund(session, refund_id)
    if refund is None or refund.status != "pending":
        return False
    payment = await repo.get(session, refund.payment_id, for_update=True)
    assert payment is not None
    try:
        provider_refund = await ctx.provider(payment.provider).create_refund(
            idempotency_key=refund.provider_key,
            intent_id=payment.provider_intent_id or "",
            amount=refund.amount_vnd,
            reason=refund.reason,
            metadata={"refund_id": refund.id, "payment_id": payment.id},
        )
    except ProviderRefused as exc:
        # The provider never acted and refuses now: release the reserved amount.
        refund.status = "failed"
        payment.refund_reserved_vnd -= refund.amount_vnd
        log.warning("refund_refused_on_retry", refund_id=refund.id, code=exc.code)
        return True
    outcome = await service.apply_provider_refund(
        session, ctx, payment, refund, provider_refund, "reconciler retried the refund"
    )
    return outcome != "still_pending"


# --- the background task --------------------------------------------------------------------------------


async def start_reconciler(app: FastAPI) -> None:
    ctx: service.PaymentsContext = app.state.payments
    if not ctx.settings.reconciler_enabled:
        return

    async def loop() -> None:
        while True:
            await asyncio.sleep(ctx.settings.reconcile_interval_s)
            try:
                await settle_stuck(app.state.db, ctx)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconciler_pass_failed")

    app.state.reconciler = asyncio.create_task(loop(), name="payments-reconciler")


async def stop_reconciler(app: FastAPI) -> None:
    task = getattr(app.state, "reconciler", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --- daily reconciliation ---------------------------------------------------------------------------


@dataclass
class Mismatch:
    kind: str  # missing_in_ledger | missing_at_provider | amount_mismatch | refund_mismatch | status_mismatch
    payment_id: str | None
    provider_reference: str | None
    ours: str
    theirs: str


@dataclass
class DayReport:
    day: date
    provider_intents: int
    our_payments: int
    captured_vnd: int
    refunded_vnd: int
    mismatches: list[Mismatch]


def vn_day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=VN_TZ).astimezone(UTC)
    return start, start + timedelta(days=1)


async def reconcile_day(db: Database, ctx: service.PaymentsContext, day: date) -> DayReport:
    start, end = vn_day_bounds(day)
    provider_intents: list[tuple[str, ProviderIntent]] = []
    for name, client in ctx.providers.items():
        try:
            provider_intents.extend((name, i) for i in await client.list_intents_for_day(day))
        except ProviderUnavailable as exc:
            raise RuntimeError(f"provider {name} did not answer: {exc}") from exc
    async with db.sessionmaker() as session:
        ours = {p.id: p for p in await repo.created_between(session, start, end)}
        by_intent = await repo.by_intents(session, [i.id for _, i in provider_intents])
        ours.update({p.id: p for p in by_intent.values()})
        totals = await ledger.payment_totals(session, ours)
    mismatches: list[Mismatch] = []
    seen: set[str] = set()
    captured_sum = refunded_sum = 0
    for _, intent in provider_intents:
        payment = by_intent.get(intent.id)
        theirs_captured, theirs_refunded = intent.amount_received, intent.amount_refunded
        if payment is None:
            if theirs_captured or theirs_refunded:
                mismatches.append(
                    Mismatch(
                        "missing_in_ledger",
                        intent.metadata.get("payment_id"),
                        intent.id,
                        "no payment",
                        f"{intent.status}, received {theirs_captured}",
                    )
                )
            continue
        seen.add(payment.id)
        captured, refunded = totals.get(payment.id, (0, 0))
        captured_sum += captured
        refunded_sum += refunded
        if captured == 0 and theirs_captured:
            mismatches.append(
                Mismatch(
                    "missing_in_ledger",
                    payment.id,
                    intent.id,
                    f"{payment.status}, nothing captured",
                    f"received {theirs_captured}",
                )
            )
        elif captured and theirs_captured == 0:
            mismatches.append(
                Mismatch(
                    "missing_at_provider", payment.id, intent.id, f"captured {captured}", f"{intent.status}, received 0"
                )
            )
        elif captured != theirs_captured:
            mismatches.append(
                Mismatch(
                    "amount_mismatch", payment.id, intent.id, f"captured {captured}", f"received {theirs_captured}"
                )
            )
        if refunded != theirs_refunded:
            mismatches.append(
                Mismatch(
                    "refund_mismatch", payment.id, intent.id, f"refunded {refunded}", f"refunded {theirs_refunded}"
                )
            )
        if _status_disagrees(payment.status, intent.status, intent.cancellation_reason):
            mismatches.append(Mismatch("status_mismatch", payment.id, intent.id, payment.status, intent.status))
    for payment in ours.values():
        if payment.id in seen:
            continue
        captured, refunded = totals.get(payment.id, (0, 0))
        captured_sum += captured
        refunded_sum += refunded
        if captured or refunded or payment.status in CAPTURED:
            mismatches.append(
                Mismatch(
                    "missing_at_provider",
                    payment.id,
                    payment.provider_intent_id,
                    f"{payment.status}, captured {captured}",
                    "not in the provider's list",
                )
            )
    return DayReport(
        day=day,
        provider_intents=len(provider_intents),
        our_payments=len(ours),
        captured_vnd=captured_sum,
        refunded_vnd=refunded_sum,
        mismatches=mismatches,
    )


def _status_disagrees(ours: str, theirs: str, reason: str | None) -> bool:
    expected = {
        "succeeded": {"succeeded", "partially_refunded", "refunded"},
        "failed": {"failed"},
        "canceled": {"expired" if reason == "expired" else "canceled"},
        "processing": {"processing"},
        "requires_action": {"requires_action"},
    }.get(theirs)
    return expected is not None and ours not in expected


async def reconcile_day_from_settings(day: date) -> DayReport:
    """For the CLI: build the provider clients and database from the environment."""
    from dncity.cli import database_url
    from services.payments.app import build_context
    from services.payments.db import Base
    from services.payments.settings import PaymentsSettings
    from shared.events import Outbox, event_tables
    from shared.settings import PlatformSettings

    settings, platform = PaymentsSettings(), PlatformSettings()
    ctx = build_context(settings, platform, Outbox(event_tables(Base.metadata)))
    db = Database(database_url("payments", platform))
    try:
        return await reconcile_day(db, ctx, day)
    finally:
        await db.dispose()
        for client in ctx.providers.values():
            await client.aclose()
