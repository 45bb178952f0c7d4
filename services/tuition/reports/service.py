from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.tuition.billing.models import CollectionRound, Invoice
from services.tuition.students.models import Student

REPORT_COLUMNS = [
    "round_code",
    "round_id",
    "class_name",
    "invoices",
    "paid_invoices",
    "void_invoices",
    "gross_vnd",
    "reduction_vnd",
    "invoiced_vnd",
    "collected_vnd",
    "outstanding_vnd",
    "refunded_vnd",
]


class CollectionRow(BaseModel):
    round_id: str
    round_code: str
    class_name: str
    invoices: int
    paid_invoices: int
    void_invoices: int
    gross_vnd: int
    reduction_vnd: int
    invoiced_vnd: int
    collected_vnd: int
    outstanding_vnd: int
    refunded_vnd: int


class CollectionReport(BaseModel):
    items: list[CollectionRow]
    totals: CollectionRow | None = None


async def collections(session: AsyncSession, school_id: str, round_id: str | None) -> CollectionReport:
    """Collected and outstanding per round and class. Void invoices count only in ``void_invoices``
    (and what was refunded for them)."""
    live = Invoice.status != "void"

    def live_sum(col: Any) -> Any:
        return func.coalesce(func.sum(case((live, col), else_=0)), 0)

    query = (
        select(
            CollectionRound.id,
            CollectionRound.code,
            Student.class_name,
            func.sum(case((live, 1), else_=0)),
            func.sum(case((Invoice.status == "paid", 1), else_=0)),
            func.sum(case((Invoice.status == "void", 1), else_=0)),
            live_sum(Invoice.gross_vnd),
            live_sum(Invoice.reduction_vnd),
            live_sum(Invoice.total_vnd),
            live_sum(Invoice.paid_vnd),
            live_sum(Invoice.total_vnd - Invoice.paid_vnd),
            func.coalesce(func.sum(Invoice.refunded_vnd), 0),
        )
        .join(Invoice, Invoice.round_id == CollectionRound.id)
        .join(Student, Student.id == Invoice.student_id)
        .where(CollectionRound.school_id == school_id, Invoice.school_id == school_id)
        .group_by(CollectionRound.id, CollectionRound.code, Student.class_name)
        .order_by(CollectionRound.code, Student.class_name)
    )
    if round_id:
        query = query.where(CollectionRound.id == round_id)
    items = [
        CollectionRow(
            round_id=r[0],
            round_code=r[1],
            class_name=r[2],
            invoices=int(r[3]),
            paid_invoices=int(r[4]),
            void_invoices=int(r[5]),
            gross_vnd=int(r[6]),
            reduction_vnd=int(r[7]),
            invoiced_vnd=int(r[8]),
            collected_vnd=int(r[9]),
            outstanding_vnd=max(0, int(r[10])),
            refunded_vnd=int(r[11]),
        )
        for r in (await session.execute(query)).all()
    ]
    totals = None
    if items:
        numeric = [f for f in REPORT_COLUMNS if f not in ("round_code", "round_id", "class_name")]
        totals = CollectionRow(
            round_id=round_id or "*",
            round_code="*",
            class_name="*",
            **{f: sum(getattr(i, f) for i in items) for f in numeric},
        )
    return CollectionReport(items=items, totals=totals)
