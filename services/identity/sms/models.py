from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.identity.db import Base
from shared.db import IdType, UTCDateTime, new_id, utcnow


class DevSms(Base):
    """A message the dev sender "sent": stored so people and tests can read it. Unused in prod."""

    __tablename__ = "dev_sms_outbox"
    __table_args__ = (Index("ix_dev_sms_outbox_to_created", "to", "created_at"),)

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    to: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
