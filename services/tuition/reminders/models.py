from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.tuition.db import Base
from shared.db import IdType, UTCDateTime, new_id, utcnow


class ReminderSent(Base):
    """One row per (invoice, stage): the unique key is what makes a reminder never go out twice."""

    __tablename__ = "reminders_sent"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"))
    stage: Mapped[str] = mapped_column(String(40))  # due_soon:<n> | overdue:<n> (n = instalment)
    recipients: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("invoice_id", "stage"),)
