"""Facilities, their departments and practitioners. A facility belongs to one agency client."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.health_booking.db import Base
from shared.db import IdType, JSONType, UTCDateTime, new_id, utcnow


class Facility(Base):
    __tablename__ = "facilities"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    # The agency client (hospital, clinic operator) whose token manages this facility.
    owner_client_id: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # hospital | clinic | health_station
    address: Mapped[str] = mapped_column(String(300))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    phone: Mapped[str | None] = mapped_column(String(30), nullable=True)
    # Opening hours shown in the directory: [{"weekday": 0-6, "open": "07:00", "close": "17:00"}].
    hours: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # Booking rules (cal.com / Vietnamese hospital apps).
    prepayment_required: Mapped[bool] = mapped_column(Boolean, default=True)
    min_notice_minutes: Mapped[int] = mapped_column(Integer, default=60)
    max_days_ahead: Mapped[int] = mapped_column(Integer, default=30)
    max_per_patient_per_day: Mapped[int] = mapped_column(Integer, default=2)
    hold_minutes: Mapped[int] = mapped_column(Integer, default=15)
    cancel_cutoff_minutes: Mapped[int] = mapped_column(Integer, default=120)
    full_refund_minutes: Mapped[int] = mapped_column(Integer, default=1440)
    late_cancel_refund_percent: Mapped[int] = mapped_column(Integer, default=50)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Department(Base):
    __tablename__ = "departments"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    facility_id: Mapped[str] = mapped_column(ForeignKey("facilities.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    specialty: Mapped[str] = mapped_column(String(60))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)


class Practitioner(Base):
    __tablename__ = "practitioners"
    __table_args__ = (Index("ix_practitioners_facility_active", "facility_id", "active"),)

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    facility_id: Mapped[str] = mapped_column(ForeignKey("facilities.id"))
    department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(100), nullable=True)
    specialties: Mapped[list[str]] = mapped_column(JSONType, default=list)
    languages: Mapped[list[str]] = mapped_column(JSONType, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
