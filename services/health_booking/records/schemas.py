from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.health_booking.appointments.schemas import AppointmentOut


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bhyt_number: str = Field(pattern=r"^\d{10}$", description="The 10-digit health-insurance (BHYT) number")
    citizen_id: str = Field(
        pattern=r"^\d{12}$", description="The personal ID number (CCCD); checked against Da Nang ID, not stored"
    )


class ProfileOut(BaseModel):
    patient_id: str
    kind: Literal["self", "dependent"]
    bhyt_number: str | None
    citizen_id_masked: str | None
    bhyt_verified_at: datetime | None


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    content_type: str = Field(pattern=r"^[a-z]+/[a-z0-9.+-]+$", max_length=100)
    url: str = Field(pattern=r"^https://", max_length=500)


class RecordCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["visit_summary", "document"] = "visit_summary"
    title: str = Field(min_length=1, max_length=200)
    summary: str | None = Field(default=None, max_length=20_000)
    diagnosis_codes: list[str] = Field(default_factory=list, max_length=20, description="ICD-10 codes, e.g. J06.9")
    documents: list[Document] = Field(default_factory=list, max_length=20)


class RecordOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    appointment_id: str
    facility_id: str
    patient_id: str
    kind: str
    title: str
    summary: str | None
    diagnosis_codes: list[str]
    documents: list[Document]
    created_at: datetime


class PatientRecords(BaseModel):
    patient_id: str
    profile: ProfileOut | None
    appointments: list[AppointmentOut]
    records: list[RecordOut]


class AccessOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    accessor: str
    accessor_role: Literal["patient", "guardian", "facility"]
    facility_id: str | None
    what: str
    at: datetime


class AccessPage(BaseModel):
    items: list[AccessOut]
    next_cursor: str | None = None
