"""Appointments (FHIR Appointment) and the per-day waitlist."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.health_booking.db import Base
from shared.db import IdType, UTCDateTime, new_id, utcnow

# Statuses that hold a place in a slot and count against the patient's limits.
ACTIVE_STATUSES = ("pending_payment", "booked", "arrived")


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (
        Index("ix_appointments_patient_start", "patient_ref", "start_at"),
        Index("ix_appointments_booker_start", "booked_by_sub", "start_at"),
        Index("ix_appointments_facility_start", "facility_id", "start_at"),
        Index("ix_appointments_status_hold", "status", "hold_expires_at"),
    )

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    facility_id: Mapped[str] = mapped_column(ForeignKey("facilities.id"))
    practitioner_id: Mapped[str | None] = mapped_column(ForeignKey("practitioners.id"), nullable=True)
    slot_id: Mapped[str] = mapped_column(ForeignKey("slots.id"), index=True)
    # The person the appointment is for: the caller's sub, or a dependent id from identity.
    patient_ref: Mapped[str] = mapped_column(String(64))
    patient_kind: Mapped[str] = mapped_column(String(20))  # self | dependent
    patient_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    booked_by_sub: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    mode: Mapped[str] = mapped_column(String(20))
    # pending_payment | booked | arrived | fulfilled | cancelled | noshow | expired
    status: Mapped[str] = mapped_column(String(20))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    fee_vnd: Mapped[int] = mapped_column(Integer)
    payment_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    payment_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    paid_vnd: Mapped[int] = mapped_column(Integer, default=0)
    refund_vnd: Mapped[int] = mapped_column(Integer, default=0)  # asked of payments
    refunded_vnd: Mapped[int] = mapped_column(Integer, default=0)  # confirmed by payment.refunded
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    queue_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cancelled_by: Mapped[str | None] = mapped_column(String(20), nullable=True)  # patient | facility | system
    cancel_reason: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class WaitlistEntry(Base):
    """A patient waiting for a place on a day at a facility (optionally with one practitioner)."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (Index("ix_waitlist_facility_day_status", "facility_id", "day", "status", "created_at"),)

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    facility_id: Mapped[str] = mapped_column(ForeignKey("facilities.id"))
    practitioner_id: Mapped[str | None] = mapped_column(ForeignKey("practitioners.id"), nullable=True)
    day: Mapped[date] = mapped_column(Date)
    patient_ref: Mapped[str] = mapped_column(String(64))
    patient_kind: Mapped[str] = mapped_column(String(20))
    requested_by_sub: Mapped[str] = mapped_column(String(64), index=True)
    # waiting | offered | booked | expired | cancelled
    status: Mapped[str] = mapped_column(String(20), default="waiting")
    offered_slot_id: Mapped[str | None] = mapped_column(ForeignKey("slots.id"), nullable=True)
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class QueueCounter(Base):
    """The last queue number (số thứ tự) issued per schedule and local day; incremented under a row lock."""

    __tablename__ = "queue_counters"

    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)
