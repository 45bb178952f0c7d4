"""All SQL of payments and refunds."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.payments.payments.models import Payment, PaymentTransition, Refund
from shared.errors import field_error


async def get(session: AsyncSession, payment_id: str, *, for_update: bool = False) -> Payment | None:
    stmt = select(Payment).where(Payment.id == payment_id)
    if for_update:
        # PostgreSQL: row lock until the transaction ends; SQLite: the whole database is already
        # locked by BEGIN IMMEDIATE. populate_existing refreshes an instance loaded earlier.
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def by_intent(session: AsyncSession, intent_id: str, *, for_update: bool = False) -> Payment | None:
    stmt = select(Payment).where(Payment.provider_intent_id == intent_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def reserve_refund(session: AsyncSession, payment_id: str, amount: int) -> bool:
    """Guarded update: reserve ``amount`` only if it fits in what remains (atomic on every backend)."""
    result = await session.execute(
        update(Payment)
        .where(
            Payment.id == payment_id,
            Payment.status.in_(("succeeded", "partially_refunded")),
            Payment.refund_reserved_vnd + amount <= Payment.amount_vnd,
        )
        .values(refund_reserved_vnd=Payment.refund_reserved_vnd + amount)
        .execution_options(synchronize_session=False)
    )
    return (result.rowcount or 0) == 1  # type: ignore[attr-defined]


async def refund(session: AsyncSession, refund_id: str) -> Refund | None:
    return await session.get(Refund, refund_id)


async def refund_by_provider_id(session: AsyncSession, provider_refund_id: str) -> Refund | None:
    return (
        await session.execute(select(Refund).where(Refund.provider_refund_id == provider_refund_id))
    ).scalar_one_or_none()


async def refunds_of(session: AsyncSession, payment_id: str) -> Sequence[Refund]:
    return (
        (
            await session.execute(
                select(Refund).where(Refund.payment_id == payment_id).order_by(Refund.created_at, Refund.id)
            )
        )
        .scalars()
        .all()
    )


async def transitions_of(session: AsyncSession, payment_id: str) -> Sequence[PaymentTransition]:
    return (
        (
            await session.execute(
                select(PaymentTransition)
                .where(PaymentTransition.payment_id == payment_id)
                .order_by(PaymentTransition.at, PaymentTransition.id)
            )
        )
        .scalars()
        .all()
    )


def encode_cursor(payment: Payment) -> str:
    raw = f"{payment.created_at.isoformat()}|{payment.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, pid = raw.partition("|")
        when = datetime.fromisoformat(created)
        if not pid or when.tzinfo is None:
            raise ValueError
        return when, pid
    except ValueError:
        raise field_error("query.cursor", "Unknown cursor; use next_cursor from the previous page") from None


async def page(
    session: AsyncSession,
    *,
    payer_sub: str | None,
    requested_by: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[Payment], str | None]:
    stmt = select(Payment)
    if payer_sub is not None:
        stmt = stmt.where(Payment.payer_sub == payer_sub)
    if requested_by is not None:
        stmt = stmt.where(Payment.requested_by == requested_by)
    if status:
        stmt = stmt.where(Payment.status == status)
    if cursor:
        when, pid = decode_cursor(cursor)
        stmt = stmt.where(or_(Payment.created_at < when, and_(Payment.created_at == when, Payment.id < pid)))
    rows = (
        (await session.execute(stmt.order_by(Payment.created_at.desc(), Payment.id.desc()).limit(limit + 1)))
        .scalars()
        .all()
    )
    items = rows[:limit]
    return items, (encode_cursor(items[-1]) if len(rows) > limit and items else None)


async def pending_payments(session: AsyncSession, *, older_than: datetime, limit: int = 200) -> Sequence[str]:
    return (
        (
            await session.execute(
                select(Payment.id)
                .where(Payment.status.in_(("requires_action", "processing")), Payment.created_at < older_than)
                .order_by(Payment.created_at)
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )


async def pending_refunds(session: AsyncSession, *, older_than: datetime, limit: int = 200) -> Sequence[str]:
    return (
        (
            await session.execute(
                select(Refund.id)
                .where(Refund.status == "pending", Refund.created_at < older_than)
                .order_by(Refund.created_at)
                .limit(limit)
            )
        )
        .scalars()
        .all()
    )


async def created_between(session: AsyncSession, start: datetime, end: datetime) -> Sequence[Payment]:
    return (
        (await session.execute(select(Payment).where(Payment.created_at >= start, Payment.created_at < end)))
        .scalars()
        .all()
    )


async def by_intents(session: AsyncSession, intent_ids: Sequence[str]) -> dict[str, Payment]:
    found: dict[str, Payment] = {}
    ids = list(intent_ids)
    for start in range(0, len(ids), 500):
        rows = (
            (await session.execute(select(Payment).where(Payment.provider_intent_id.in_(ids[start : start + 500]))))
            .scalars()
            .all()
        )
        found.update({p.provider_intent_id: p for p in rows if p.provider_intent_id})
    return found
