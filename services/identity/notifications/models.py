from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from services.identity.db import Base
from shared.db import IdType, UTCDateTime, utcnow


class NotificationDelivery(Base):
    """One row per notification dedupe_key: the SMS is sent at most once, whatever the event redeliveries."""

    __tablename__ = "notification_deliveries"

    dedupe_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    sub: Mapped[str] = mapped_column(IdType, index=True)
    kind: Mapped[str] = mapped_column(String(100))
    # sent | no_verified_phone | unknown_person
    outcome: Mapped[str] = mapped_column(String(30))
    event_id: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
