from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.tuition.db import Base
from shared.db import IdType, UTCDateTime, new_id, utcnow

ORDER_STATUSES = ("pending", "succeeded", "failed", "expired", "canceled")


class PaymentOrder(Base):
    """One payment by a guardian covering one or more invoices; the payments ``reference``."""

    __tablename__ = "payment_orders"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    payer_sub: Mapped[str] = mapped_column(String(64), index=True)
    amount_vnd: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    payment_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    payment_url: Mapped[str | None] = mapped_column(String(500))
    refunded_vnd: Mapped[int] = mapped_column(BigInteger, default=0)
    receipt_number: Mapped[str | None] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PaymentAllocation(Base):
    """How much of an order goes to one invoice (the whole remainder, or one instalment)."""

    __tablename__ = "payment_allocations"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(ForeignKey("payment_orders.id"), index=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount_vnd: Mapped[int] = mapped_column(BigInteger)
    instalment_seq: Mapped[int | None] = mapped_column(Integer)
    # reserved → applied (settled) | released (failed/expired/canceled) | refunded (late success)
    state: Mapped[str] = mapped_column(String(20), default="reserved")

    __table_args__ = (UniqueConstraint("order_id", "invoice_id"),)
