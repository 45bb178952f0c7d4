from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.tuition.students.schemas import PERSONAL_ID


class LinkCodeOut(BaseModel):
    code: str = Field(description="Give this to the guardian; it works once, until expires_at")
    student_id: str
    expires_at: datetime


class LinkRequest(BaseModel):
    """Link to a student with a code from the school, or with the student's personal ID and birth date."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    link_code: str | None = Field(default=None, min_length=4, max_length=32)
    personal_id: str | None = Field(default=None, pattern=PERSONAL_ID)
    date_of_birth: date | None = None

    @model_validator(mode="after")
    def _one_way(self) -> LinkRequest:
        if self.link_code is None and self.personal_id is None:
            raise ValueError("give link_code, or personal_id with date_of_birth")
        if self.link_code is not None and self.personal_id is not None:
            raise ValueError("give either link_code or personal_id, not both")
        if self.personal_id is not None and self.date_of_birth is None:
            raise ValueError("date_of_birth is required with personal_id")
        return self


class GuardianshipOut(BaseModel):
    id: str
    student_id: str
    guardian_sub: str
    status: Literal["active", "revoked"]
    linked_via: Literal["link_code", "personal_id"]
    created_at: datetime
    revoked_at: datetime | None = None


class GuardianshipPage(BaseModel):
    items: list[GuardianshipOut]
    next_cursor: str | None = None
