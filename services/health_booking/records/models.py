"""Health profiles (BHYT number), visit records attached by facilities and the append-only access log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.health_booking.db import Base
from shared.db import IdType, JSONType, UTCDateTime, new_id, utcnow


class HealthProfile(Base):
    """One row per patient; also the row a booking locks to serialize one patient's bookings."""

    __tablename__ = "health_profiles"

    patient_ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # self | dependent
    bhyt_number: Mapped[str | None] = mapped_column(String(10), nullable=True)
    # Only the masked personal ID from identity is kept; the full number is checked, never stored.
    citizen_id_masked: Mapped[str | None] = mapped_column(String(30), nullable=True)
    bhyt_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class VisitRecord(Base):
    __tablename__ = "visit_records"
    __table_args__ = (Index("ix_visit_records_patient_created", "patient_ref", "created_at"),)

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    appointment_id: Mapped[str] = mapped_column(ForeignKey("appointments.id"), index=True)
    facility_id: Mapped[str] = mapped_column(ForeignKey("facilities.id"))
    patient_ref: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))  # visit_summary | document
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)
    diagnosis_codes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    documents: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    author_client_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RecordAccess(Base):
    """Append-only: who read a patient's health data, when and what (no update path exists)."""

    __tablename__ = "record_access_log"
    __table_args__ = (Index("ix_record_access_patient_at", "patient_ref", "at"),)

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    patient_ref: Mapped[str] = mapped_column(String(64))
    accessor: Mapped[str] = mapped_column(String(100))  # a person's sub or an agency's client_id
    accessor_role: Mapped[str] = mapped_column(String(20))  # patient | guardian | facility
    facility_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    what: Mapped[str] = mapped_column(String(100))
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
