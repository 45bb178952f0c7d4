"""Reminders to guardians before a due date and when overdue, via the ``notification.requested`` event.

Each (invoice, stage) is recorded in ``reminders_sent`` under a unique key in the same transaction as
the outbox event, so a reminder goes out at most once per invoice and stage even with several app
replicas sweeping at once. Stages are per instalment (``due_soon:2``, ``overdue:2``). Paid, void and
currently-being-paid invoices get none. An invoice with no linked guardian is not marked, so a guardian
who links later still gets the reminder.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.tuition.billing import money
from services.tuition.billing.models import OUTSTANDING_STATUSES, Invoice
from services.tuition.billing.service import due_dates_of
from services.tuition.common import today_vn
from services.tuition.guardians.models import Guardianship
from services.tuition.reminders.models import ReminderSent
from services.tuition.settings import TuitionSettings
from services.tuition.students.models import Student
from shared.db import Database, utcnow
from shared.events import Outbox

BATCH = 200


def _message(stage: str, invoice: Invoice, student: Student, amount: int, due: str) -> dict[str, str]:
    vnd = f"{amount:,}".replace(",", ".")
    if stage.startswith("overdue"):
        return {
            "vi": f"Học phí của {student.full_name} (hóa đơn {invoice.number}) đã quá hạn {due}: còn {vnd} đ.",
            "en": f"School fees for {student.full_name} (invoice {invoice.number}) were due {due}: {vnd} VND unpaid.",
        }
    return {
        "vi": f"Nhắc học phí: {student.full_name} (hóa đơn {invoice.number}) cần nộp {vnd} đ trước {due}.",
        "en": f"Reminder: school fees for {student.full_name} (invoice {invoice.number}), {vnd} VND due {due}.",
    }


async def send_reminders(db: Database, outbox: Outbox, settings: TuitionSettings, now: datetime | None = None) -> int:
    """One sweep over outstanding invoices; returns how many notifications were requested."""
    now = now or utcnow()
    sent = 0
    after = ""
    while True:
        async with db.sessionmaker() as session, session.begin():
            invoices = (
                (
                    await session.execute(
                        select(Invoice)
                        .where(Invoice.status.in_(OUTSTANDING_STATUSES), Invoice.id > after)
                        .order_by(Invoice.id)
                        .limit(BATCH)
                    )
                )
                .scalars()
                .all()
            )
            if not invoices:
                return sent
            after = invoices[-1].id
            guardians: dict[str, list[str]] = defaultdict(list)
            for student_id, sub in (
                await session.execute(
                    select(Guardianship.student_id, Guardianship.guardian_sub)
                    .where(
                        Guardianship.student_id.in_({i.student_id for i in invoices}), Guardianship.status == "active"
                    )
                    .order_by(Guardianship.guardian_sub)
                )
            ).all():
                guardians[student_id].append(sub)
            for invoice in invoices:
                sent += await _remind(session, outbox, settings, invoice, guardians[invoice.student_id], now)


async def _remind(
    session: AsyncSession,
    outbox: Outbox,
    settings: TuitionSettings,
    invoice: Invoice,
    guardians: list[str],
    now: datetime,
) -> int:
    today = today_vn(now)
    dates = due_dates_of(invoice)
    current = money.next_instalment(invoice.total_vnd, invoice.paid_vnd, dates)
    if current is None:
        return 0
    if today > current.due_date:
        stage = f"overdue:{current.seq}"
        if invoice.status != "overdue":
            invoice.status = "overdue"
    elif (current.due_date - today).days <= settings.reminder_days_before:
        stage = f"due_soon:{current.seq}"
    else:
        return 0
    if invoice.reserved_vnd > 0:
        return 0  # being paid right now; if that fails, the next sweep reminds
    if not guardians:
        return 0
    try:
        async with session.begin_nested():
            session.add(ReminderSent(invoice_id=invoice.id, stage=stage, recipients=len(guardians), sent_at=now))
            await session.flush()
    except IntegrityError:
        return 0  # already sent (by an earlier sweep or another replica)
    student = await session.get(Student, invoice.student_id)
    assert student is not None
    amount = current.remaining_vnd if len(dates) > 1 else invoice.total_vnd - invoice.paid_vnd
    message = _message(stage, invoice, student, amount, current.due_date.strftime("%d/%m/%Y"))
    for sub in guardians:
        await outbox.add(
            session,
            "notification.requested",
            {
                "sub": sub,
                "kind": "tuition.reminder",
                "message": message,
                "dedupe_key": f"tuition:{invoice.id}:{stage}:{sub}",
            },
            subject=invoice.id,
        )
    return len(guardians)
