from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from services.tuition.db import Base
from shared.db import IdType, JSONType, UTCDateTime, new_id, utcnow

INVOICE_STATUSES = ("open", "partially_paid", "paid", "overdue", "void")
OUTSTANDING_STATUSES = ("open", "partially_paid", "overdue")
FEE_KINDS = (
    "tuition",
    "meals",
    "boarding",
    "uniform",
    "health_insurance",
    "club",
    "transport",
    "books",
    "adjustment",
    "other",
)


class FeeItem(Base):
    """What a school charges for a grade in a term (tuition, meals, boarding, …)."""

    __tablename__ = "fee_items"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    school_id: Mapped[str] = mapped_column(String(100), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    grade: Mapped[str] = mapped_column(String(20))
    term: Mapped[str] = mapped_column(String(40))
    amount_vnd: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("school_id", "term", "grade", "code"),)


class CollectionRound(Base):
    """A collection round ("đợt thu"): invoices of one term with their due dates."""

    __tablename__ = "collection_rounds"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    school_id: Mapped[str] = mapped_column(String(100), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    term: Mapped[str] = mapped_column(String(40))
    # One date = pay in full; several = the school allows that many instalments.
    due_dates: Mapped[list[str]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("school_id", "code"),)


class Invoice(Base):
    __tablename__ = "invoices"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    school_id: Mapped[str] = mapped_column(String(100), index=True)
    student_id: Mapped[str] = mapped_column(ForeignKey("students.id"), index=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("collection_rounds.id"))
    status: Mapped[str] = mapped_column(String(20), default="open")
    due_dates: Mapped[list[str]] = mapped_column(JSONType)
    due_date: Mapped[date] = mapped_column(Date)  # the final due date
    gross_vnd: Mapped[int] = mapped_column(BigInteger, default=0)
    reduction_vnd: Mapped[int] = mapped_column(BigInteger, default=0)
    total_vnd: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_vnd: Mapped[int] = mapped_column(BigInteger, default=0)
    # Amount held by a pending payment order; at most one order holds an invoice at a time.
    reserved_vnd: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_vnd: Mapped[int] = mapped_column(BigInteger, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    void_reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        # One live invoice per student and round; a voided one may be re-issued corrected.
        Index(
            "uq_invoices_round_student_live",
            "round_id",
            "student_id",
            unique=True,
            postgresql_where=text("status <> 'void'"),
            sqlite_where=text("status <> 'void'"),
        ),
        CheckConstraint("reserved_vnd >= 0", name="reserved_nonnegative"),
        CheckConstraint("paid_vnd >= 0", name="paid_nonnegative"),
        Index("ix_invoices_status_due", "status", "due_date"),
    )


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    fee_item_id: Mapped[str | None] = mapped_column(IdType)
    kind: Mapped[str] = mapped_column(String(30))
    description: Mapped[str] = mapped_column(String(200))
    amount_vnd: Mapped[int] = mapped_column(BigInteger)
    exemption_id: Mapped[str | None] = mapped_column(IdType)
    reduction_percent: Mapped[int] = mapped_column(Integer, default=0)
    reduction_vnd: Mapped[int] = mapped_column(BigInteger, default=0)
    net_vnd: Mapped[int] = mapped_column(BigInteger)
    voided: Mapped[bool] = mapped_column(Boolean, default=False)
    void_reason: Mapped[str | None] = mapped_column(String(300))


class Exemption(Base):
    """An exemption or reduction of tuition under Decree 81/2021/NĐ-CP, with its evidence reference."""

    __tablename__ = "exemptions"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    school_id: Mapped[str] = mapped_column(String(100))
    student_id: Mapped[str] = mapped_column(ForeignKey("students.id"), index=True)
    category: Mapped[str] = mapped_column(String(60))
    percent: Mapped[int] = mapped_column(Integer)
    evidence_ref: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class InvoiceAudit(Base):
    """Append-only trail of everything that changed an invoice (who, when, what)."""

    __tablename__ = "invoice_audit"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    note: Mapped[str | None] = mapped_column(Text)


class InvoiceRefund(Base):
    """Money given back for voided paid lines, through the payments API."""

    __tablename__ = "invoice_refunds"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    order_id: Mapped[str] = mapped_column(IdType)
    payment_id: Mapped[str] = mapped_column(String(64))
    amount_vnd: Mapped[int] = mapped_column(BigInteger)
    payments_refund_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
