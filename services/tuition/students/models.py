from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from services.tuition.db import Base
from shared.db import IdType, UTCDateTime, new_id, utcnow

STUDENT_STATUSES = ("active", "suspended", "transferred", "graduated", "withdrawn")


class Student(Base):
    """A pupil. ``student_code`` (issued by the school) and ``personal_id`` (the 12-digit citizen ID)
    are each unique across the whole city, not only within one school."""

    __tablename__ = "students"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    school_id: Mapped[str] = mapped_column(String(100), index=True)
    student_code: Mapped[str] = mapped_column(String(32), unique=True)
    personal_id: Mapped[str | None] = mapped_column(String(12), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    date_of_birth: Mapped[date] = mapped_column(Date)
    grade: Mapped[str] = mapped_column(String(20))
    class_name: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_students_school_class", "school_id", "class_name"),)
