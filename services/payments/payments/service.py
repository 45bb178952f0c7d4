"""Business rules of payments and refunds: creation, the state machine, provider sync, refunds."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

import structlog
from sqlalchemy import Table, bindparam
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.ledger import service as ledger
from services.payments.payments import repository as repo
from services.payments.payments.models import Payment, PaymentTransition, Refund
from services.payments.payments.schemas import PaymentCreateRequest, PaymentOut, RefundCreateRequest, RefundOut
from services.payments.payments.state import CAPTURED, CLOSED_UNPAID, PENDING, can_move, check_move
from services.payments.provider.client import (
    ProviderClient,
    ProviderError,
    ProviderIntent,
    ProviderRefund,
    ProviderRefused,
    ProviderUnavailable,
)
from services.payments.settings import PaymentsSettings
from shared.auth import Principal
from shared.clients.payments import NextAction, PaymentEventData
from shared.db import new_id, utcnow
from shared.errors import Conflict, NotFound, ProblemError, ServiceUnavailable, field_error
from shared.events import Outbox

log = structlog.get_logger("payments")

EVENT_BY_STATUS = {
    "succeeded": "payment.succeeded",
    "failed": "payment.failed",
    "expired": "payment.expired",
    "canceled": "payment.canceled",
    "partially_refunded": "payment.refunded",
    "refunded": "payment.refunded",
}


class BadGateway(ProblemError):
    status, code, title = 502, "provider_refused", "The payment provider refused the request"


@dataclass
class PaymentsContext:
    """What the domain code needs from the app: settings, the outbox and one client per provider."""

    settings: PaymentsSettings
    outbox: Outbox
    providers: dict[str, ProviderClient] = field(default_factory=dict)
    # Serializes this process's payment-creating transactions on SQLite (see payments/router.py).
    sqlite_write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def provider(self, name: str) -> ProviderClient:
        return self.providers[name]


def derived_id(*parts: str) -> str:
    """A stable id from the caller's idempotency scope: a retry after a rollback reuses the same ids,
    so the provider (which deduplicates on our key) sees the same request again."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


# --- views --------------------------------------------------------------------------------------------


def to_out(payment: Payment) -> PaymentOut:
    next_action = None
    if payment.status == "requires_action" and payment.next_action_url:
        next_action = NextAction(type="redirect_to_url", url=payment.next_action_url)
    return PaymentOut(
        id=payment.id,
        status=payment.status,
        amount_vnd=payment.amount_vnd,  # type: ignore[arg-type]
        amount_refunded_vnd=payment.amount_refunded_vnd,
        purpose=payment.purpose,  # type: ignore[arg-type]
        reference=payment.reference,
        payer_sub=payment.payer_sub,
        description=payment.description,
        next_action=next_action,
        expires_at=payment.expires_at,
        created_at=payment.created_at,
        wallet=payment.wallet,
        return_url=payment.return_url,
        requested_by=payment.requested_by,
        provider_reference=payment.provider_intent_id,
        updated_at=payment.updated_at,
    )


def refund_out(refund: Refund) -> RefundOut:
    return RefundOut(
        id=refund.id,
        payment_id=refund.payment_id,
        amount_vnd=refund.amount_vnd,
        status=refund.status,
        created_at=refund.created_at,
        reason=refund.reason,
        requested_by=refund.requested_by,
    )


def can_read(principal: Principal, payment: Payment) -> bool:
    if principal.is_user:
        return principal.has("payments") and payment.payer_sub == principal.sub
    return principal.has("payments.write") and payment.requested_by == principal.client_id


async def visible(session: AsyncSession, principal: Principal, payment_id: str, *, for_update: bool = False) -> Payment:
    """The payment if this caller may see it; 404 otherwise (no hint that it exists)."""
    payment = await repo.get(session, payment_id, for_update=for_update)
    if payment is None or not can_read(principal, payment):
        raise NotFound("No such payment", code="payment_not_found")
    return payment


async def owned_by_client(
    session: AsyncSession, principal: Principal, payment_id: str, *, for_update: bool = False
) -> Payment:
    payment = await repo.get(session, payment_id, for_update=for_update)
    if payment is None or principal.is_user or payment.requested_by != principal.client_id:
        raise NotFound("No such payment", code="payment_not_found")
    return payment


# --- state changes ------------------------------------------------------------------------------------


async def move(session: AsyncSession, ctx: PaymentsContext, payment: Payment, target: str, cause: str) -> None:
    """Apply one legal transition, record it with its cause, post the ledger and publish the event."""
    check_move(payment.status, target)
    previous = payment.status
    now = utcnow()
    payment.status = target
    payment.updated_at = now
    session.add(
        PaymentTransition(
            id=new_id(), payment_id=payment.id, from_status=previous, to_status=target, cause=cause[:200], at=now
        )
    )
    if target == "succeeded":
        payment.succeeded_at = now
        await ledger.post_capture(session, payment)
    await session.flush()
    event = EVENT_BY_STATUS.get(target)
    if event:
        data = PaymentEventData(
            payment_id=payment.id,
            purpose=payment.purpose,  # type: ignore[arg-type]
            reference=payment.reference,
            payer_sub=payment.payer_sub,
            amount_vnd=payment.amount_vnd,
            amount_refunded_vnd=payment.amount_refunded_vnd,
            status=target,  # type: ignore[arg-type]
            requested_by=payment.requested_by,
        )
        await ctx.outbox.add(session, event, data.model_dump(mode="json"), subject=payment.id)
    log.info("payment_status_changed", payment_id=payment.id, from_status=previous, to_status=target, cause=cause[:200])


async def sync_from_intent(
    session: AsyncSession, ctx: PaymentsContext, payment: Payment, intent: ProviderIntent, cause: str
) -> str:
    """Bring a payment in line with the provider's view of its intent (out-of-order safe).

    Only forward moves are applied: a succeeded payment never goes back, a stale "processing" after
    "succeeded" is ignored. Returns what happened (for logs and webhook bookkeeping).
    """
    target = {
        "processing": "processing",
        "succeeded": "succeeded",
        "failed": "failed",
        "canceled": "expired" if intent.cancellation_reason == "expired" else "canceled",
    }.get(intent.status)
    if payment.provider_intent_id is None:
        payment.provider_intent_id = intent.id
    if target is None or payment.status == target:
        return "no_change"
    if target == "processing" and payment.status != "requires_action":
        return "stale"
    if payment.status in CAPTURED:
        return "stale"  # the money moved; nothing later may undo that
    if not can_move(payment.status, target):
        # E.g. the provider reports success for a payment we consider expired: money moved where we
        # did not expect it. Never silently rewrite history; reconciliation reports it.
        log.error("provider_state_conflict", payment_id=payment.id, ours=payment.status, theirs=intent.status)
        return f"conflict:{payment.status}->{target}"
    await move(session, ctx, payment, target, f"{cause}: intent {intent.id} {intent.status}")
    return f"moved:{target}"


# --- create -------------------------------------------------------------------------------------------


async def create_payment(
    session: AsyncSession,
    ctx: PaymentsContext,
    principal: Principal,
    body: PaymentCreateRequest,
    *,
    owner: str,
    key: str,
) -> PaymentOut:
    settings = ctx.settings
    if body.amount_vnd > settings.max_amount_vnd:
        raise field_error("body.amount_vnd", f"At most {settings.max_amount_vnd} đồng per payment", "too_large")
    if body.wallet not in settings.wallets:
        raise field_error("body.wallet", f"Unknown wallet; one of {', '.join(settings.wallets)}", "unknown")
    now = utcnow()
    payment_id = derived_id("payment", owner, key)
    provider_key = f"dncity_pay_{payment_id}"
    values = {
        "id": payment_id,
        "status": "requires_action",
        "amount_vnd": body.amount_vnd,
        "refund_reserved_vnd": 0,
        "amount_refunded_vnd": 0,
        "purpose": body.purpose,
        "reference": body.reference,
        "payer_sub": body.payer_sub,
        "description": body.description,
        "wallet": body.wallet,
        "return_url": body.return_url,
        "requested_by": principal.client_id,
        "provider": "sandbox",
        "provider_key": provider_key,
        "provider_intent_id": None,
        "next_action_url": None,
        "expires_at": now + timedelta(seconds=settings.payment_ttl_s),
        "created_at": now,
        "updated_at": now,
        "succeeded_at": None,
    }
    # Hot path in Core statements on the session's connection (no unit of work): the row, with the
    # provider key, is written before the provider hears of it.
    conn = await session.connection()
    await conn.execute(_INSERT_PAYMENT, values)
    try:
        intent = await ctx.provider("sandbox").create_intent(
            idempotency_key=provider_key,
            amount=body.amount_vnd,
            description=body.description,
            metadata={
                "payment_id": payment_id,
                "purpose": body.purpose,
                "reference": body.reference,
                "payer_sub": body.payer_sub,
                "wallet": body.wallet,
            },
            return_url=body.return_url,
            expires_in_s=settings.payment_ttl_s,
        )
    except ProviderRefused as exc:
        payment = await session.get_one(Payment, payment_id)
        session.add(
            PaymentTransition(
                id=new_id(),
                payment_id=payment.id,
                from_status=None,
                to_status="requires_action",
                cause="created",
                at=now,
            )
        )
        await move(session, ctx, payment, "failed", f"provider refused the intent: {exc.code}")
        return to_out(payment)
    except ProviderUnavailable as exc:
        # Unknown outcome: store nothing (the request rolls back). A retry with the same
        # Idempotency-Key derives the same provider key, so the provider returns the same intent.
        raise ServiceUnavailable(
            "The payment provider did not answer; retry with the same Idempotency-Key",
            code="provider_unavailable",
            headers={"Retry-After": "2"},
        ) from exc
    values["provider_intent_id"] = intent.id
    values["next_action_url"] = intent.next_action.url if intent.next_action else None
    await conn.execute(_SET_INTENT, {"pid": payment_id, "intent": intent.id, "url": values["next_action_url"]})
    await conn.execute(
        _INSERT_TRANSITION,
        {
            "id": new_id(),
            "payment_id": payment_id,
            "from_status": None,
            "to_status": "requires_action",
            "cause": f"created; provider intent {intent.id}",
            "at": now,
        },
    )
    if intent.status != "requires_action":
        # Rare (the sandbox answers requires_action): the ORM path with its state machine.
        payment = await session.get_one(Payment, payment_id)
        await sync_from_intent(session, ctx, payment, intent, "provider answered create")
        await session.flush()
        return to_out(payment)
    return PaymentOut(
        id=payment_id,
        status="requires_action",
        amount_vnd=body.amount_vnd,
        amount_refunded_vnd=0,
        purpose=body.purpose,
        reference=body.reference,
        payer_sub=body.payer_sub,
        description=body.description,
        next_action=NextAction(type="redirect_to_url", url=values["next_action_url"])
        if values["next_action_url"]
        else None,
        expires_at=values["expires_at"],
        created_at=now,
        wallet=body.wallet,
        return_url=body.return_url,
        requested_by=principal.client_id,
        provider_reference=intent.id,
        updated_at=now,
    )


_payments = cast(Table, Payment.__table__)
_INSERT_PAYMENT = _payments.insert()
_INSERT_TRANSITION = cast(Table, PaymentTransition.__table__).insert()
_SET_INTENT = (
    _payments.update()
    .where(_payments.c.id == bindparam("pid"))
    .values(provider_intent_id=bindparam("intent"), next_action_url=bindparam("url"))
)


# --- cancel -------------------------------------------------------------------------------------------


async def cancel_payment(
    session: AsyncSession, ctx: PaymentsContext, principal: Principal, payment_id: str
) -> tuple[PaymentOut, bool]:
    """Returns (payment, cancelable). Not cancelable = the money already moved (the caller answers 409
    but the request still commits what we learnt from the provider)."""
    payment = await owned_by_client(session, principal, payment_id, for_update=True)
    if payment.status in CLOSED_UNPAID:
        return to_out(payment), True
    if payment.status in CAPTURED:
        return to_out(payment), False
    provider = ctx.provider(payment.provider)
    try:
        if payment.provider_intent_id is None:
            raise ProviderUnavailable("no intent id")
        intent = await provider.cancel_intent(payment.provider_intent_id, idempotency_key=f"dncity_cancel_{payment.id}")
    except ProviderRefused:
        # Typically: the payer approved a moment ago. Ask what the intent is now.
        try:
            intent = await provider.retrieve_intent(payment.provider_intent_id or "")
        except ProviderError as exc:
            raise ServiceUnavailable("The payment provider did not answer", code="provider_unavailable") from exc
    except ProviderUnavailable as exc:
        raise ServiceUnavailable(
            "The payment provider did not answer; the payment is unchanged",
            code="provider_unavailable",
            headers={"Retry-After": "2"},
        ) from exc
    await sync_from_intent(session, ctx, payment, intent, "canceled by the requesting client")
    return to_out(payment), payment.status not in CAPTURED


# --- refunds ------------------------------------------------------------------------------------------


async def create_refund(
    session: AsyncSession,
    ctx: PaymentsContext,
    principal: Principal,
    payment_id: str,
    body: RefundCreateRequest,
    *,
    owner: str,
    key: str,
) -> RefundOut:
    payment = await owned_by_client(session, principal, payment_id, for_update=True)
    if payment.status not in ("succeeded", "partially_refunded"):
        if payment.status == "refunded":
            raise Conflict("Nothing remains to refund", code="refund_exceeds_remaining", remaining_vnd=0)
        raise Conflict(f"A {payment.status} payment cannot be refunded", code="payment_not_refundable")
    remaining = payment.amount_vnd - payment.refund_reserved_vnd
    amount = body.amount_vnd if body.amount_vnd is not None else remaining
    if amount <= 0 or not await repo.reserve_refund(session, payment.id, amount):
        raise Conflict(
            f"At most {remaining} đồng remain to refund", code="refund_exceeds_remaining", remaining_vnd=remaining
        )
    refund_id = derived_id("refund", owner, key, payment.id)
    refund = Refund(
        id=refund_id,
        payment_id=payment.id,
        amount_vnd=amount,
        reason=body.reason,
        status="pending",
        requested_by=principal.client_id,
        provider_key=f"dncity_refund_{refund_id}",
        created_at=utcnow(),
    )
    session.add(refund)
    await session.flush()
    await session.refresh(payment)
    try:
        provider_refund = await ctx.provider(payment.provider).create_refund(
            idempotency_key=refund.provider_key,
            intent_id=payment.provider_intent_id or "",
            amount=amount,
            reason=body.reason,
            metadata={"refund_id": refund.id, "payment_id": payment.id},
        )
    except ProviderRefused as exc:
        # The provider did not act: roll everything back (the reservation too).
        raise BadGateway(f"The provider refused the refund: {exc.message or exc.code}", provider_code=exc.code) from exc
    except ProviderUnavailable:
        # Unknown outcome: keep the refund pending with its amount reserved; the reconciler asks again
        # with the same key until the provider answers.
        log.warning("refund_outcome_unknown", refund_id=refund.id, payment_id=payment.id)
        return refund_out(refund)
    await apply_provider_refund(session, ctx, payment, refund, provider_refund, "refund created")
    return refund_out(refund)


async def apply_provider_refund(
    session: AsyncSession,
    ctx: PaymentsContext,
    payment: Payment,
    refund: Refund,
    provider_refund: ProviderRefund,
    cause: str,
) -> str:
    """Settle a local refund from the provider's refund object (idempotent)."""
    if refund.provider_refund_id is None:
        refund.provider_refund_id = provider_refund.id
    if refund.status != "pending":
        return "no_change"
    if provider_refund.status == "failed":
        refund.status = "failed"
        payment.refund_reserved_vnd -= refund.amount_vnd
        await session.flush()
        return "refund_failed"
    if provider_refund.status != "succeeded":
        return "still_pending"
    refund.status = "succeeded"
    refund.succeeded_at = utcnow()
    payment.amount_refunded_vnd += refund.amount_vnd
    target = "refunded" if payment.amount_refunded_vnd >= payment.amount_vnd else "partially_refunded"
    await ledger.post_refund(session, payment, refund)
    await move(session, ctx, payment, target, f"{cause}: refund {refund.id} of {refund.amount_vnd} đồng")
    return f"refund_succeeded:{target}"


async def adopt_provider_refund(
    session: AsyncSession, ctx: PaymentsContext, payment: Payment, provider_refund: ProviderRefund, cause: str
) -> str:
    """A refund the provider reports that we did not ask for in this database (e.g. made at the
    provider's console): record it so our ledger matches the money that moved."""
    if not await repo.reserve_refund(session, payment.id, provider_refund.amount):
        log.error("provider_refund_exceeds_payment", payment_id=payment.id, refund=provider_refund.id)
        return "conflict:refund_exceeds_remaining"
    await session.refresh(payment)
    refund = Refund(
        id=new_id(),
        payment_id=payment.id,
        amount_vnd=provider_refund.amount,
        reason="refunded at the provider",
        status="pending",
        requested_by=payment.requested_by,
        provider_key=f"provider_{provider_refund.id}",
        provider_refund_id=provider_refund.id,
        created_at=utcnow(),
    )
    session.add(refund)
    await session.flush()
    return await apply_provider_refund(session, ctx, payment, refund, provider_refund, cause)


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


__all__ = ["PENDING", "BadGateway", "PaymentsContext"]
