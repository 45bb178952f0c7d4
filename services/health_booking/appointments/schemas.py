from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.health_booking.schedules.schemas import Mode

AppointmentStatus = Literal["pending_payment", "booked", "arrived", "fulfilled", "cancelled", "noshow", "expired"]
PatientField = Field(
    default="self",
    min_length=1,
    max_length=64,
    pattern=r"^[A-Za-z0-9_.:-]+$",
    description='"self", or the id of a dependent child from GET /v1/identity/me/dependents',
)


class AppointmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slot_id: str = Field(min_length=1, max_length=32)
    patient: str = PatientField
    reason: str | None = Field(default=None, max_length=500)
    mode: Mode | None = Field(default=None, description="Defaults to the slot's mode")


class PaymentInfo(BaseModel):
    id: str
    url: str | None = Field(default=None, description="Where the payer approves the payment (wallet page)")


class AppointmentOut(BaseModel):
    id: str
    status: AppointmentStatus
    facility_id: str
    facility_name: str | None = None
    practitioner_id: str | None
    slot_id: str
    patient_id: str
    patient_kind: Literal["self", "dependent"]
    patient_name: str | None
    reason: str | None
    mode: Mode
    start_at: datetime
    end_at: datetime
    fee_vnd: int
    paid_vnd: int
    refund_vnd: int
    refunded_vnd: int
    payment: PaymentInfo | None
    hold_expires_at: datetime | None
    queue_number: int | None
    cancelled_by: str | None
    cancel_reason: str | None
    created_at: datetime


class AppointmentPage(BaseModel):
    items: list[AppointmentOut]
    next_cursor: str | None = None


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=300)


class RescheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slot_id: str = Field(min_length=1, max_length=32)


class WaitlistCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    facility_id: str = Field(min_length=1, max_length=32)
    practitioner_id: str | None = Field(default=None, max_length=32)
    date: date
    patient: str = PatientField


class WaitlistOut(BaseModel):
    id: str
    facility_id: str
    practitioner_id: str | None
    date: date
    patient_id: str
    status: Literal["waiting", "offered", "booked", "expired", "cancelled"]
    offered_slot_id: str | None
    offer_expires_at: datetime | None
    created_at: datetime


class WaitlistPage(BaseModel):
    items: list[WaitlistOut]
    next_cursor: str | None = None
