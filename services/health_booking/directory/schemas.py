from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FacilityKind = Literal["hospital", "clinic", "health_station"]
# Specialty codes are lower-case slugs (e.g. "pediatrics", "vaccination"); languages are ISO 639-1.
Specialty = Annotated[str, Field(min_length=2, max_length=60, pattern=r"^[a-z][a-z0-9_-]*$")]
Language = Annotated[str, Field(min_length=2, max_length=3, pattern=r"^[a-z]{2,3}$")]
HHMM = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["07:30"])]


class OpeningHours(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weekday: int = Field(ge=0, le=6, description="0 = Monday … 6 = Sunday")
    open: HHMM
    close: HHMM

    @model_validator(mode="after")
    def _order(self) -> OpeningHours:
        if self.close <= self.open:
            raise ValueError("close must be after open")
        return self


class BookingRules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prepayment_required: bool = True
    min_notice_minutes: int = Field(default=60, ge=0, le=60 * 24 * 14)
    max_days_ahead: int = Field(default=30, ge=1, le=90)
    max_per_patient_per_day: int = Field(default=2, ge=1, le=20)
    hold_minutes: int = Field(default=15, ge=1, le=120)
    cancel_cutoff_minutes: int = Field(default=120, ge=0, le=60 * 24 * 14)
    full_refund_minutes: int = Field(default=1440, ge=0, le=60 * 24 * 30)
    late_cancel_refund_percent: int = Field(default=50, ge=0, le=100)


class FacilityCreate(BookingRules):
    name: str = Field(min_length=2, max_length=200)
    kind: FacilityKind
    address: str = Field(min_length=3, max_length=300)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    phone: str | None = Field(default=None, max_length=30, pattern=r"^\+?[0-9 ]{6,20}$")
    hours: list[OpeningHours] = Field(default_factory=list, max_length=21)


class FacilityUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=2, max_length=200)
    address: str | None = Field(default=None, min_length=3, max_length=300)
    phone: str | None = Field(default=None, max_length=30, pattern=r"^\+?[0-9 ]{6,20}$")
    hours: list[OpeningHours] | None = Field(default=None, max_length=21)
    prepayment_required: bool | None = None
    min_notice_minutes: int | None = Field(default=None, ge=0, le=60 * 24 * 14)
    max_days_ahead: int | None = Field(default=None, ge=1, le=90)
    max_per_patient_per_day: int | None = Field(default=None, ge=1, le=20)
    hold_minutes: int | None = Field(default=None, ge=1, le=120)
    cancel_cutoff_minutes: int | None = Field(default=None, ge=0, le=60 * 24 * 14)
    full_refund_minutes: int | None = Field(default=None, ge=0, le=60 * 24 * 30)
    late_cancel_refund_percent: int | None = Field(default=None, ge=0, le=100)


class FacilityOut(BookingRules):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    kind: FacilityKind
    address: str
    lat: float
    lon: float
    phone: str | None
    hours: list[OpeningHours]
    specialties: list[str] = Field(default_factory=list, description="Offered by its schedules")
    languages: list[str] = Field(default_factory=list, description="Spoken by its practitioners")
    distance_km: float | None = None


class DepartmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=2, max_length=200)
    specialty: Specialty
    description: str | None = Field(default=None, max_length=2000)


class DepartmentOut(DepartmentCreate):
    model_config = ConfigDict(from_attributes=True)
    id: str
    facility_id: str


class PractitionerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=2, max_length=200)
    title: str | None = Field(default=None, max_length=100, examples=["BS.CKII"])
    specialties: list[Specialty] = Field(min_length=1, max_length=10)
    languages: list[Language] = Field(default_factory=lambda: ["vi"], min_length=1, max_length=10)
    department_id: str | None = Field(default=None, max_length=32)

    @field_validator("specialties", "languages")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class PractitionerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=2, max_length=200)
    title: str | None = Field(default=None, max_length=100)
    specialties: list[Specialty] | None = Field(default=None, min_length=1, max_length=10)
    languages: list[Language] | None = Field(default=None, min_length=1, max_length=10)
    active: bool | None = None


class PractitionerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    facility_id: str
    department_id: str | None
    name: str
    title: str | None
    specialties: list[str]
    languages: list[str]
    active: bool
    distance_km: float | None = None


class FacilityPage(BaseModel):
    items: list[FacilityOut]
    next_cursor: str | None = None


class PractitionerPage(BaseModel):
    items: list[PractitionerOut]
    next_cursor: str | None = None


class SpecialtyOut(BaseModel):
    code: str
    facilities: int


class SpecialtyPage(BaseModel):
    items: list[SpecialtyOut]
    next_cursor: str | None = None
