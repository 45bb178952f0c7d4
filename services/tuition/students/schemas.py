from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

StudentStatus = Literal["active", "suspended", "transferred", "graduated", "withdrawn"]
STUDENT_CODE = r"^[A-Za-z0-9][A-Za-z0-9._-]{2,31}$"
PERSONAL_ID = r"^\d{12}$"
STUDENT_CSV_COLUMNS = ["student_code", "personal_id", "full_name", "date_of_birth", "grade", "class_name", "status"]
STUDENT_CSV_REQUIRED = {"student_code", "full_name", "date_of_birth", "grade", "class_name"}


def _check_birth(value: date) -> date:
    if value >= date.today() or value.year < 1900:
        raise ValueError("date of birth must be in the past")
    return value


class StudentRow(BaseModel):
    """One student in a bulk import (create, or update when the school already has this code)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    student_code: str = Field(pattern=STUDENT_CODE, description="The school-issued student ID, unique in the city")
    personal_id: str | None = Field(default=None, pattern=PERSONAL_ID, description="12-digit personal ID")
    full_name: str = Field(min_length=1, max_length=200)
    date_of_birth: date
    grade: str = Field(min_length=1, max_length=20)
    class_name: str = Field(min_length=1, max_length=50)
    status: StudentStatus = "active"

    _birth = field_validator("date_of_birth")(_check_birth)


class StudentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    personal_id: str | None = Field(default=None, pattern=PERSONAL_ID)
    date_of_birth: date | None = None
    grade: str | None = Field(default=None, min_length=1, max_length=20)
    class_name: str | None = Field(default=None, min_length=1, max_length=50)
    status: StudentStatus | None = None

    @field_validator("date_of_birth")
    @classmethod
    def _birth(cls, value: date | None) -> date | None:
        return None if value is None else _check_birth(value)


class StudentOut(BaseModel):
    """A student as a guardian sees it (the personal ID masked)."""

    id: str
    student_code: str
    full_name: str
    date_of_birth: date
    school_id: str
    grade: str
    class_name: str
    status: StudentStatus
    personal_id_masked: str | None = None


class SchoolStudentOut(StudentOut):
    """A student as its school sees it."""

    personal_id: str | None = None
    created_at: datetime
    updated_at: datetime


class StudentPage(BaseModel):
    items: list[SchoolStudentOut]
    next_cursor: str | None = None


class GuardianStudentPage(BaseModel):
    items: list[StudentOut]
    next_cursor: str | None = None
