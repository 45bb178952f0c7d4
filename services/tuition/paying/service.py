"""Payment orders: one payment for several invoices, reserved by guarded updates, settled by events.

Concurrency: an invoice is reserved by ``UPDATE invoices SET reserved_vnd = :amount … WHERE
reserved_vnd = 0 AND status IN (outstanding) AND paid_vnd + :amount <= total_vnd``. Only one
transaction can win that update for an invoice (PostgreSQL row lock, SQLite's single writer), so
two concurrent payments of the same invoice cannot both be taken: the second gets 409.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.tuition.billing import money
from services.tuition.billing.models import OUTSTANDING_STATUSES, Invoice
from services.tuition.billing.service import audit, due_dates_of, invoice_lines, recompute
from services.tuition.common import MAX_PAGE, VN_TZ, decode_cursor, encode_cursor, today_vn
from services.tuition.guardians.models import Guardianship
from services.tuition.paying.models import PaymentAllocation, PaymentOrder
from services.tuition.paying.schemas import (
    OrderItemOut,
    PaymentOrderCreate,
    PaymentOrderOut,
    PaymentOrderPage,
    ReceiptOut,
)
from services.tuition.students.models import Student
from shared.clients.payments import PaymentCreate, PaymentEventData, PaymentsClient, PaymentsError, RefundCreate
from shared.db import new_id, utcnow
from shared.errors import Conflict, FieldError, NotFound, Unprocessable

log = structlog.get_logger("tuition.paying")


def idempotency_key_for(order_id: str) -> str:
    return f"tuition-order-{order_id}"


async def create_order(
    session: AsyncSession,
    payments: PaymentsClient,
    payer_sub: str,
    data: PaymentOrderCreate,
    *,
    default_return_url: str | None = None,
) -> PaymentOrderOut:
    ids = [i.invoice_id for i in data.items]
    invoices = {i.id: i for i in (await session.execute(select(Invoice).where(Invoice.id.in_(ids)))).scalars()}
    linked = set(
        (
            await session.execute(
                select(Guardianship.student_id).where(
                    Guardianship.guardian_sub == payer_sub, Guardianship.status == "active"
                )
            )
        )
        .scalars()
        .all()
    )
    plan: list[tuple[Invoice, int, int | None]] = []
    errors: list[FieldError] = []
    for n, item in enumerate(data.items):
        invoice = invoices.get(item.invoice_id)
        if invoice is None or invoice.student_id not in linked:
            raise NotFound(
                f"No such invoice among yours: items[{n}].invoice_id",
                code="invoice_not_found",
                errors=[FieldError(field=f"body.items.{n}.invoice_id", message="not found", type="not_found")],
            )
        if invoice.status not in OUTSTANDING_STATUSES:
            raise Conflict(
                f"Invoice {invoice.number} is {invoice.status}; nothing to pay",
                code="invoice_not_payable",
                errors=[
                    FieldError(
                        field=f"body.items.{n}.invoice_id", message=f"invoice is {invoice.status}", type="not_payable"
                    )
                ],
            )
        dates = due_dates_of(invoice)
        seq: int | None = None
        if item.amount == "instalment":
            if len(dates) < 2:
                errors.append(
                    FieldError(
                        field=f"body.items.{n}.amount",
                        type="not_allowed",
                        message="The school does not allow instalments for this invoice",
                    )
                )
                continue
            nxt = money.next_instalment(invoice.total_vnd, invoice.paid_vnd, dates)
            assert nxt is not None  # outstanding → some instalment has something left
            amount, seq = nxt.remaining_vnd, nxt.seq
        else:
            amount = invoice.total_vnd - invoice.paid_vnd
        plan.append((invoice, amount, seq))
    if errors:
        raise Unprocessable("Some items cannot be paid this way", errors=errors)
    order = PaymentOrder(
        id=new_id(),
        payer_sub=payer_sub,
        amount_vnd=sum(a for _, a, _ in plan),
        status="pending",
        refunded_vnd=0,
        created_at=utcnow(),
    )
    session.add(order)
    await session.flush()
    # Reserve in a fixed order so that two orders over the same invoices cannot deadlock on PostgreSQL.
    for invoice, amount, seq in sorted(plan, key=lambda p: p[0].id):
        won = await session.execute(
            update(Invoice)
            .where(
                Invoice.id == invoice.id,
                Invoice.reserved_vnd == 0,
                Invoice.status.in_(OUTSTANDING_STATUSES),
                Invoice.paid_vnd + amount <= Invoice.total_vnd,
            )
            .values(reserved_vnd=amount, version=Invoice.version + 1)
            .execution_options(synchronize_session=False)
        )
        if won.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(
                f"Invoice {invoice.number} is already being paid, or changed meanwhile", code="invoice_payment_pending"
            )
        session.add(
            PaymentAllocation(
                order_id=order.id, invoice_id=invoice.id, amount_vnd=amount, instalment_seq=seq, state="reserved"
            )
        )
    await session.flush()
    payment = await payments.create(
        PaymentCreate(
            amount_vnd=order.amount_vnd,
            purpose="tuition",
            reference=order.id,
            payer_sub=payer_sub,
            description=f"Học phí / School fees: {len(plan)} hóa đơn / invoice(s)",
            wallet=data.wallet,
            return_url=data.return_url or default_return_url,
        ),
        idempotency_key=idempotency_key_for(order.id),
    )
    order.payment_id = payment.id
    order.payment_url = payment.next_action.url if payment.next_action else None
    await session.flush()
    return (await order_views(session, [order]))[0]


async def order_views(session: AsyncSession, orders: Sequence[PaymentOrder]) -> list[PaymentOrderOut]:
    if not orders:
        return []
    rows = (
        await session.execute(
            select(PaymentAllocation, Invoice, Student)
            .join(Invoice, Invoice.id == PaymentAllocation.invoice_id)
            .join(Student, Student.id == Invoice.student_id)
            .where(PaymentAllocation.order_id.in_([o.id for o in orders]))
            .order_by(Student.full_name, Invoice.number)
        )
    ).all()
    items: dict[str, list[OrderItemOut]] = defaultdict(list)
    for alloc, invoice, student in rows:
        items[alloc.order_id].append(
            OrderItemOut(
                invoice_id=invoice.id,
                invoice_number=invoice.number,
                student_id=student.id,
                student_name=student.full_name,
                school_id=invoice.school_id,
                amount_vnd=alloc.amount_vnd,
                instalment_seq=alloc.instalment_seq,
                state=alloc.state,
            )
        )  # type: ignore[arg-type]
    return [
        PaymentOrderOut(
            id=o.id,
            status=o.status,
            amount_vnd=o.amount_vnd,
            payment_id=o.payment_id,  # type: ignore[arg-type]
            payment_url=o.payment_url,
            refunded_vnd=o.refunded_vnd,
            items=items[o.id],
            receipt_number=o.receipt_number,
            created_at=o.created_at,
            settled_at=o.settled_at,
        )
        for o in orders
    ]


async def get_own_order(session: AsyncSession, payer_sub: str, order_id: str) -> PaymentOrder:
    order = await session.get(PaymentOrder, order_id)
    if order is None or order.payer_sub != payer_sub:
        raise NotFound("No such payment among yours", code="payment_order_not_found")
    return order


async def list_orders(session: AsyncSession, payer_sub: str, cursor: str | None, limit: int) -> PaymentOrderPage:
    query = select(PaymentOrder).where(PaymentOrder.payer_sub == payer_sub)
    after = decode_cursor(cursor, 1)
    if after:
        query = query.where(PaymentOrder.id < after[0])
    limit = min(limit, MAX_PAGE)
    rows = (await session.execute(query.order_by(PaymentOrder.id.desc()).limit(limit + 1))).scalars().all()
    page = list(rows[:limit])
    return PaymentOrderPage(
        items=await order_views(session, page), next_cursor=encode_cursor(page[-1].id) if len(rows) > limit else None
    )


async def receipt(session: AsyncSession, payer_sub: str, order_id: str) -> ReceiptOut:
    order = await get_own_order(session, payer_sub, order_id)
    if order.status != "succeeded" or order.receipt_number is None or order.settled_at is None:
        raise NotFound("There is a receipt once the payment has succeeded", code="receipt_not_available")
    view = (await order_views(session, [order]))[0]
    assert order.payment_id is not None
    applied = [i for i in view.items if i.state == "applied"]
    return ReceiptOut(
        number=order.receipt_number,
        issued_at=order.settled_at,
        payer_sub=order.payer_sub,
        payment_id=order.payment_id,
        amount_vnd=sum(i.amount_vnd for i in applied),
        items=applied,
    )


async def cancel_order(
    session: AsyncSession, payments: PaymentsClient, payer_sub: str, order_id: str
) -> PaymentOrderOut:
    order = await get_own_order(session, payer_sub, order_id)
    if order.status != "pending":
        raise Conflict(f"This payment is {order.status}", code="payment_order_not_pending")
    if order.payment_id is not None:
        try:
            payment = await payments.cancel(order.payment_id)
        except PaymentsError as exc:
            raise Conflict("The payment can no longer be canceled", code="payment_not_cancelable") from exc
        if payment.status in ("succeeded", "partially_refunded", "refunded"):
            raise Conflict("The payment has already succeeded", code="payment_not_cancelable")
    await release(session, order, "canceled")
    return (await order_views(session, [order]))[0]


# ---- settlement by payment events -----------------------------------------------------------------

TAKEN = frozenset({"succeeded", "partially_refunded", "refunded"})
RELEASING = {"payment.failed": "failed", "payment.expired": "expired", "payment.canceled": "canceled"}


async def _locked_invoices(session: AsyncSession, ids: list[str]) -> dict[str, Invoice]:
    rows = await session.execute(
        select(Invoice)
        .where(Invoice.id.in_(ids))
        .order_by(Invoice.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {i.id: i for i in rows.scalars()}


async def handle_payment_event(
    session: AsyncSession, event_type: str, data: PaymentEventData, payments: PaymentsClient | None
) -> None:
    """Apply one payments event to its order; duplicates and stale (out-of-order) events change nothing."""
    order = (
        await session.execute(
            select(PaymentOrder)
            .where(PaymentOrder.id == data.reference)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if order is None:
        log.warning("payment_event_for_unknown_order", reference=data.reference, payment_id=data.payment_id)
        return
    if order.payment_id is None:
        order.payment_id = data.payment_id
    elif order.payment_id != data.payment_id:
        log.warning("payment_event_for_other_payment", order_id=order.id, payment_id=data.payment_id)
        return
    if event_type == "payment.refunded" or data.status in TAKEN:
        if data.amount_vnd != order.amount_vnd:
            log.error("payment_amount_mismatch", order_id=order.id, expected=order.amount_vnd, got=data.amount_vnd)
            return
        await settle(session, order, payments)
        order.refunded_vnd = max(order.refunded_vnd, data.amount_refunded_vnd)
    elif event_type in RELEASING:
        await release(session, order, RELEASING[event_type])


async def settle(session: AsyncSession, order: PaymentOrder, payments: PaymentsClient | None) -> None:
    if order.status == "succeeded":
        return  # already settled: exactly once
    allocations = list(
        (await session.execute(select(PaymentAllocation).where(PaymentAllocation.order_id == order.id))).scalars().all()
    )
    invoices = await _locked_invoices(session, [a.invoice_id for a in allocations])
    today = today_vn(utcnow())
    late = order.status != "pending"  # the reservation was released (e.g. expired) before the money came
    for alloc in allocations:
        invoice = invoices[alloc.invoice_id]
        if not late and alloc.state == "reserved":
            invoice.reserved_vnd -= alloc.amount_vnd
            applicable = True
        else:
            applicable = (
                invoice.reserved_vnd == 0
                and invoice.status in OUTSTANDING_STATUSES
                and invoice.paid_vnd + alloc.amount_vnd <= invoice.total_vnd
            )
        if applicable:
            invoice.paid_vnd += alloc.amount_vnd
            alloc.state = "applied"
            await audit(
                session,
                invoice.id,
                order.payer_sub,
                "payment_applied",
                {
                    "order_id": order.id,
                    "payment_id": order.payment_id,
                    "amount_vnd": alloc.amount_vnd,
                    "instalment_seq": alloc.instalment_seq,
                },
            )
        else:
            # Money arrived for an invoice that can no longer take it: give it back automatically.
            if payments is None or order.payment_id is None:
                raise RuntimeError("cannot refund a late payment without the payments client")
            await payments.refund(
                order.payment_id,
                RefundCreate(amount_vnd=alloc.amount_vnd, reason=f"Invoice {invoice.number} no longer payable"),
                idempotency_key=f"tuition-late-{order.id}-{invoice.id}",
            )
            alloc.state = "refunded"
            order.refunded_vnd += alloc.amount_vnd
            await audit(
                session,
                invoice.id,
                "tuition",
                "late_payment_refunded",
                {"order_id": order.id, "payment_id": order.payment_id, "amount_vnd": alloc.amount_vnd},
            )
        recompute(invoice, await invoice_lines(session, invoice.id), today)
        invoice.version += 1
    now = utcnow()
    order.status, order.settled_at = "succeeded", now
    order.receipt_number = f"BL-{now.astimezone(VN_TZ).strftime('%Y%m%d')}-{order.id[:10].upper()}"
    await session.flush()


async def release(session: AsyncSession, order: PaymentOrder, status: str) -> None:
    if order.status != "pending":
        return  # settled or already released: a late failure/cancel changes nothing
    allocations = list(
        (
            await session.execute(
                select(PaymentAllocation).where(
                    PaymentAllocation.order_id == order.id, PaymentAllocation.state == "reserved"
                )
            )
        )
        .scalars()
        .all()
    )
    invoices = await _locked_invoices(session, [a.invoice_id for a in allocations])
    for alloc in allocations:
        invoice = invoices[alloc.invoice_id]
        invoice.reserved_vnd = max(0, invoice.reserved_vnd - alloc.amount_vnd)
        invoice.version += 1
        alloc.state = "released"
    order.status = status
    order.settled_at = utcnow()
    await session.flush()
