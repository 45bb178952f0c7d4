from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from services.identity.accounts import validators as v

Password = Annotated[str, Field(min_length=1, max_length=256, json_schema_extra={"writeOnly": True})]
Language = Literal["vi", "en"]


class _Registration(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    phone: str = Field(min_length=3, max_length=32, examples=["0905123456"])
    password: Password
    preferred_language: Language = "vi"


class _Person(_Registration):
    full_name: str = Field(min_length=1, max_length=200)
    date_of_birth: date

    @field_validator("date_of_birth")
    @classmethod
    def _dob(cls, value: date) -> date:
        return v.validate_account_holder_birth_date(value)


class CitizenRegistration(_Person):
    kind: Literal["citizen"]
    citizen_id: str = Field(min_length=1, max_length=20, examples=["048095001234"])

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return v.normalise_phone(value, vietnamese_only=True)

    @field_validator("citizen_id")
    @classmethod
    def _citizen_id(cls, value: str, info: ValidationInfo) -> str:
        return v.validate_citizen_id(value, info.data.get("date_of_birth"))


class ForeignerRegistration(_Person):
    kind: Literal["foreigner"]
    passport_number: str = Field(min_length=1, max_length=20)
    nationality: str = Field(min_length=1, max_length=3, examples=["KOR"])

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return v.normalise_phone(value, vietnamese_only=False)

    @field_validator("passport_number")
    @classmethod
    def _passport(cls, value: str) -> str:
        return v.validate_passport_number(value)

    @field_validator("nationality")
    @classmethod
    def _nationality(cls, value: str) -> str:
        code = v.validate_nationality(value)
        if code == "VNM":
            raise ValueError("Vietnamese citizens register as kind citizen with their personal ID")
        return code


class BusinessRegistration(_Registration):
    kind: Literal["business"]
    business_name: str = Field(min_length=1, max_length=300)
    tax_code: str = Field(min_length=1, max_length=20, examples=["0401234568"])
    representative_citizen_id: str = Field(min_length=1, max_length=20)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return v.normalise_phone(value, vietnamese_only=True)

    @field_validator("tax_code")
    @classmethod
    def _tax_code(cls, value: str) -> str:
        return v.validate_tax_code(value)

    @field_validator("representative_citizen_id")
    @classmethod
    def _representative(cls, value: str) -> str:
        return v.validate_citizen_id(value)


Registration = Annotated[
    CitizenRegistration | ForeignerRegistration | BusinessRegistration, Field(discriminator="kind")
]


class RegistrationCreated(BaseModel):
    id: str = Field(description="The registration id, used to verify the phone and to resend the code")
    status: Literal["pending_verification"] = "pending_verification"
    phone: str = Field(description="The E.164 number the code was sent to")
    code_expires_at: datetime


class CodeSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=16, json_schema_extra={"writeOnly": True})


class RegistrationVerified(BaseModel):
    sub: str
    status: Literal["active"] = "active"
    level: int
    acr: str | None


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str = Field(min_length=3, max_length=32)


class PasswordResetStarted(BaseModel):
    id: str = Field(description="Quote it with the code from the SMS to set a new password")
    code_expires_at: datetime


class PasswordResetConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=16, json_schema_extra={"writeOnly": True})
    new_password: Password


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: Password
    new_password: Password


class TotpEnrolment(BaseModel):
    secret: str = Field(description="Base32 secret for an authenticator app (shown once)")
    otpauth_uri: str


class TotpConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=6, max_length=6, pattern=r"^\d{6}$")


class TotpEnabled(BaseModel):
    totp_enabled: bool = True
    recovery_codes: list[str] = Field(description="Single-use codes for when the phone is lost (shown once)")


class TotpDisable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Password
    code: str = Field(min_length=6, max_length=16, description="A current TOTP code or a recovery code")
