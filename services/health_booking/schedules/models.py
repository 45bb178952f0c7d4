"""Schedules (working patterns), closures (holidays, one-off) and the slots derived from them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.health_booking.db import Base
from shared.db import IdType, JSONType, UTCDateTime, new_id, utcnow


class Schedule(Base):
    __tablename__ = "schedules"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    facility_id: Mapped[str] = mapped_column(ForeignKey("facilities.id"), index=True)
    # A practitioner's consultations, or a service such as a vaccination session (no practitioner).
    practitioner_id: Mapped[str | None] = mapped_column(ForeignKey("practitioners.id"), nullable=True)
    service_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    specialty: Mapped[str] = mapped_column(String(60))
    mode: Mapped[str] = mapped_column(String(20))  # in_person | telemedicine
    weekdays: Mapped[list[int]] = mapped_column(JSONType)  # 0 = Monday … 6 = Sunday
    start_time: Mapped[str] = mapped_column(String(5))  # "HH:MM" Asia/Ho_Chi_Minh
    end_time: Mapped[str] = mapped_column(String(5))
    breaks: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    slot_minutes: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer)
    fee_vnd: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The local date up to which slots have been derived (the maintenance loop rolls it forward).
    derived_through: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Closure(Base):
    """A holiday or one-off closure of a whole facility or of one practitioner (local dates, inclusive)."""

    __tablename__ = "closures"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    facility_id: Mapped[str] = mapped_column(ForeignKey("facilities.id"), index=True)
    practitioner_id: Mapped[str | None] = mapped_column(ForeignKey("practitioners.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(20))  # holiday | closure
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Slot(Base):
    """A bookable time derived from a schedule. ``booked_count`` counts holds, bookings and waitlist
    offers; the guarded update ``booked_count < capacity`` is what keeps capacity under concurrency."""

    __tablename__ = "slots"
    __table_args__ = (
        UniqueConstraint("schedule_id", "start_at", name="uq_slots_schedule_start"),
        Index("ix_slots_facility_start", "facility_id", "start_at"),
        Index("ix_slots_practitioner_start", "practitioner_id", "start_at"),
        Index("ix_slots_start", "start_at"),
        CheckConstraint("booked_count >= 0", name="booked_nonnegative"),
    )

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id"))
    facility_id: Mapped[str] = mapped_column(ForeignKey("facilities.id"))
    practitioner_id: Mapped[str | None] = mapped_column(ForeignKey("practitioners.id"), nullable=True)
    specialty: Mapped[str] = mapped_column(String(60))
    mode: Mapped[str] = mapped_column(String(20))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    capacity: Mapped[int] = mapped_column(Integer)
    booked_count: Mapped[int] = mapped_column(Integer, default=0)
    fee_vnd: Mapped[int] = mapped_column(Integer)
    # active | withdrawn (removed from the schedule or closed but still holding bookings)
    status: Mapped[str] = mapped_column(String(20), default="active")
