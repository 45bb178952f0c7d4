from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class MeOut(BaseModel):
    sub: str
    kind: str
    status: str
    level: int
    acr: str | None
    full_name: str | None
    business_name: str | None
    phone: str | None
    phone_verified: bool
    email: str | None
    date_of_birth: date | None
    address: str | None
    preferred_language: str
    citizen_id: str | None = Field(description="Masked (e.g. 048*******12) unless ?reveal=identifiers")
    passport_number: str | None = Field(description="Masked unless ?reveal=identifiers")
    nationality: str | None
    tax_code: str | None
    representative_sub: str | None
    identifiers_revealed: bool
    identifiers_locked: bool = Field(description="Identity verified at level 2: name, birth date and IDs are fixed")
    totp_enabled: bool
    created_at: datetime


class ProfileUpdate(BaseModel):
    """Only the fields sent change; send null to clear address or email."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    business_name: str | None = Field(default=None, min_length=1, max_length=300)
    date_of_birth: date | None = None
    address: str | None = Field(default=None, max_length=500)
    email: EmailStr | None = None
    preferred_language: Literal["vi", "en"] | None = None
    citizen_id: str | None = Field(default=None, min_length=1, max_length=20)
    passport_number: str | None = Field(default=None, min_length=1, max_length=20)
    nationality: str | None = Field(default=None, min_length=1, max_length=3)


class DependentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    full_name: str = Field(min_length=1, max_length=200)
    date_of_birth: date
    citizen_id: str = Field(min_length=1, max_length=20)
    invitation: str | None = Field(
        default=None,
        max_length=200,
        description="Needed when the child already has a guardian: the invitation that guardian created for you",
    )


class GuardianInvitationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    phone: str = Field(min_length=1, max_length=32, description="The invited guardian's phone number")


class GuardianInvitationOut(BaseModel):
    invitation: str = Field(description="Give this to the invited guardian; valid 24 hours, for their phone only")
    expires_at: datetime


class DependentOut(BaseModel):
    id: str = Field(description="The person reference other services use for this child")
    full_name: str
    date_of_birth: date
    citizen_id_masked: str
