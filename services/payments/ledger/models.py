from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.payments.db import Base
from shared.db import IdType, UTCDateTime, new_id, utcnow


class LedgerEntry(Base):
    """One leg of a double-entry journal. Append-only: rows are inserted, never updated or deleted.

    A journal (``journal_id``) has exactly two legs of equal amount, one debit and one credit; balances
    are sums over the legs, never stored.
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("amount_vnd > 0", name="amount_positive"),
        CheckConstraint("side IN ('debit', 'credit')", name="side_valid"),
        # One journal per money movement: a capture per payment, a reversal per refund.
        UniqueConstraint("movement", "side", name="uq_ledger_entries_movement_side"),
        Index("ix_ledger_entries_account", "account"),
    )

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    journal_id: Mapped[str] = mapped_column(IdType, index=True)
    # "capture:<payment id>" or "refund:<refund id>"
    movement: Mapped[str] = mapped_column(String(80))
    payment_id: Mapped[str] = mapped_column(IdType, index=True)
    refund_id: Mapped[str | None] = mapped_column(IdType, nullable=True)
    account: Mapped[str] = mapped_column(String(250))
    side: Mapped[str] = mapped_column(String(6))
    amount_vnd: Mapped[int] = mapped_column(BigInteger)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
