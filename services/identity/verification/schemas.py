from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class VerificationCreate(BaseModel):
    """The officer names the person by account id, personal ID, or passport and nationality."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sub: str | None = Field(default=None, max_length=64)
    citizen_id: str | None = Field(default=None, max_length=20)
    passport_number: str | None = Field(default=None, max_length=20)
    nationality: str | None = Field(default=None, max_length=3)
    method: Literal["in_person", "national_records"]
    evidence_reference: str = Field(
        min_length=1, max_length=200, description="The agency's reference of the document or record checked"
    )
    officer_id: str = Field(min_length=1, max_length=100, description="Who verified: the officer's staff id")
    date_of_birth: date | None = Field(default=None, description="If given, must match the account")

    @model_validator(mode="after")
    def _one_reference(self) -> VerificationCreate:
        given = [self.sub is not None, self.citizen_id is not None, self.passport_number is not None]
        if sum(given) != 1:
            raise ValueError("name the person by exactly one of sub, citizen_id, passport_number")
        if self.passport_number is not None and self.nationality is None:
            raise ValueError("passport_number needs nationality")
        return self


class VerificationOut(BaseModel):
    id: str
    sub: str
    level: int
    acr: str | None
    method: str
    evidence_reference: str
    officer_id: str
    agency_client_id: str
    verified_at: datetime
