from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from services.identity.db import Base
from shared.db import IdType, JSONType, UTCDateTime, new_id, utcnow


class AuditEvent(Base):
    """An append-only record of something done with an account. No API updates or deletes these.

    ``sub`` is the pseudonymous account id, so records survive an erasure without naming the person;
    ``details`` never holds passwords, codes, tokens or full ID numbers.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_sub_created", "sub", "created_at", "id"),)

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    sub: Mapped[str | None] = mapped_column(IdType)
    action: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict] = mapped_column(JSONType, default=dict)  # type: ignore[type-arg]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
