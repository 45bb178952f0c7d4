from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.payments.db import Base
from shared.db import IdType, UTCDateTime, new_id, utcnow


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount_vnd > 0", name="amount_positive"),
        # The database itself refuses refunding more than was paid (guards concurrent refunds too).
        CheckConstraint("refund_reserved_vnd >= 0 AND refund_reserved_vnd <= amount_vnd", name="refund_within"),
        CheckConstraint(
            "amount_refunded_vnd >= 0 AND amount_refunded_vnd <= refund_reserved_vnd", name="refunded_within_reserved"
        ),
        Index("ix_payments_payer_sub_created_at", "payer_sub", "created_at"),
        Index("ix_payments_requested_by_created_at", "requested_by", "created_at"),
        Index("ix_payments_status_created_at", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    status: Mapped[str] = mapped_column(String(24))
    amount_vnd: Mapped[int] = mapped_column(BigInteger)
    # Refunds asked of the provider (pending or done) and refunds the provider confirmed.
    refund_reserved_vnd: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_refunded_vnd: Mapped[int] = mapped_column(BigInteger, default=0)
    purpose: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str] = mapped_column(String(100))
    payer_sub: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(300))
    wallet: Mapped[str] = mapped_column(String(32))
    return_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    # The client (agency or service) that asked for the payment.
    requested_by: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(32))
    # Our idempotency key toward the provider, fixed before the first call.
    provider_key: Mapped[str] = mapped_column(String(100), unique=True)
    provider_intent_id: Mapped[str | None] = mapped_column(String(100), nullable=True, unique=True)
    next_action_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PaymentTransition(Base):
    """Every status change of a payment with its cause (append-only history)."""

    __tablename__ = "payment_transitions"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(24), nullable=True)
    to_status: Mapped[str] = mapped_column(String(24))
    cause: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("amount_vnd > 0", name="amount_positive"),)

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), index=True)
    amount_vnd: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(300))
    # pending (asked, outcome unknown) → succeeded | failed
    status: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(200))
    provider_key: Mapped[str] = mapped_column(String(100), unique=True)
    provider_refund_id: Mapped[str | None] = mapped_column(String(100), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WebhookEvent(Base):
    """A provider notification as received (deduplicated by the provider's event id)."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    provider: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(200), nullable=True)
