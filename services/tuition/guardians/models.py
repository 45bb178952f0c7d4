from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.tuition.db import Base
from shared.db import IdType, UTCDateTime, new_id, utcnow


class LinkCode(Base):
    """A one-time code a school hands to a guardian; only its SHA-256 is stored."""

    __tablename__ = "link_codes"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    student_id: Mapped[str] = mapped_column(ForeignKey("students.id"), index=True)
    school_id: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    used_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Guardianship(Base):
    """A guardian (a person's ``sub``) linked to a student; the school can revoke it."""

    __tablename__ = "guardianships"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    student_id: Mapped[str] = mapped_column(ForeignKey("students.id"), index=True)
    guardian_sub: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | revoked
    linked_via: Mapped[str] = mapped_column(String(20))  # link_code | personal_id
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (UniqueConstraint("student_id", "guardian_sub"),)
