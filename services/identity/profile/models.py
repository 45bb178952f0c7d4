from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from services.identity.db import Base
from shared.db import IdType, UTCDateTime, new_id, utcnow


class Dependent(Base):
    """A child under 14 whom guardians may act for. One row per child, whoever registered it, so every
    service sees the same person reference (``id``) whichever parent acts."""

    __tablename__ = "dependents"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    citizen_id: Mapped[str] = mapped_column(String(12), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    date_of_birth: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DependentGuardian(Base):
    __tablename__ = "dependent_guardians"

    dependent_id: Mapped[str] = mapped_column(IdType, ForeignKey("dependents.id", ondelete="CASCADE"), primary_key=True)
    guardian_sub: Mapped[str] = mapped_column(IdType, ForeignKey("accounts.id"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
