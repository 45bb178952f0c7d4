from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.health_booking.directory.schemas import HHMM, Specialty

Mode = Literal["in_person", "telemedicine"]


class Break(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: HHMM
    end: HHMM

    @model_validator(mode="after")
    def _order(self) -> Break:
        if self.end <= self.start:
            raise ValueError("a break must end after it starts")
        return self


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    practitioner_id: str | None = Field(default=None, max_length=32)
    service_name: str | None = Field(
        default=None, min_length=2, max_length=200, description="For a service schedule without a practitioner"
    )
    specialty: Specialty
    mode: Mode = "in_person"
    weekdays: list[int] = Field(min_length=1, max_length=7, description="0 = Monday … 6 = Sunday")
    start_time: HHMM
    end_time: HHMM
    breaks: list[Break] = Field(default_factory=list, max_length=10)
    slot_minutes: int = Field(ge=5, le=480)
    capacity: int = Field(default=1, ge=1, le=500)
    fee_vnd: int = Field(ge=0, le=100_000_000)
    valid_from: date
    valid_to: date | None = None

    @model_validator(mode="after")
    def _check(self) -> ScheduleIn:
        if any(not 0 <= d <= 6 for d in self.weekdays):
            raise ValueError("weekdays are 0 (Monday) … 6 (Sunday)")
        self.weekdays = sorted(set(self.weekdays))
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        if self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("valid_to must not be before valid_from")
        if not self.practitioner_id and not self.service_name:
            raise ValueError("a schedule needs a practitioner_id or a service_name")
        for b in self.breaks:
            if b.start < self.start_time or b.end > self.end_time:
                raise ValueError("breaks must lie within the working hours")
        return self


class ScheduleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    facility_id: str
    practitioner_id: str | None
    service_name: str | None
    specialty: str
    mode: Mode
    weekdays: list[int]
    start_time: str
    end_time: str
    breaks: list[Break]
    slot_minutes: int
    capacity: int
    fee_vnd: int
    valid_from: date
    valid_to: date | None
    active: bool


class SlotConflict(BaseModel):
    """A booked slot that the change removed or over-filled: the facility must resolve it."""

    slot_id: str
    start_at: datetime
    reason: Literal["removed", "over_capacity", "closed"]
    appointment_ids: list[str]


class ScheduleChange(BaseModel):
    schedule: ScheduleOut
    slots_created: int
    slots_removed: int
    conflicts: list[SlotConflict]


class ClosureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["holiday", "closure"] = "closure"
    practitioner_id: str | None = Field(default=None, max_length=32)
    start_date: date
    end_date: date
    reason: str = Field(min_length=2, max_length=300)

    @model_validator(mode="after")
    def _order(self) -> ClosureIn:
        if self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        if (self.end_date - self.start_date).days > 366:
            raise ValueError("a closure spans at most a year")
        return self


class ClosureOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    facility_id: str
    practitioner_id: str | None
    kind: str
    start_date: date
    end_date: date
    reason: str


class ClosureChange(BaseModel):
    closure: ClosureOut
    conflicts: list[SlotConflict]


class SlotOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    facility_id: str
    facility_name: str | None = None
    practitioner_id: str | None
    practitioner_name: str | None = None
    languages: list[str] = Field(default_factory=list)
    schedule_id: str
    specialty: str
    mode: Mode
    start_at: datetime
    end_at: datetime
    capacity: int
    remaining: int
    fee_vnd: int


class SlotPage(BaseModel):
    items: list[SlotOut]
    next_cursor: str | None = None
