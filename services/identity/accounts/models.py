"""Accounts of people and businesses, and the one-time SMS codes that verify their phones.

``Account.id`` is the OpenID Connect ``sub``: random, stable, and meaningless on its own, so it stays
as the pseudonymous reference when an account's personal data is erased.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from services.identity.db import Base
from shared.db import IdType, JSONType, UTCDateTime, new_id, utcnow


class AccountKind(StrEnum):
    citizen = "citizen"
    foreigner = "foreigner"
    business = "business"


class AccountStatus(StrEnum):
    pending_verification = "pending_verification"
    active = "active"
    disabled = "disabled"
    erased = "erased"


# Identity assurance level → the ``acr`` value in tokens and userinfo.
ACR_BY_LEVEL: dict[int, str] = {1: "urn:dncity:loa:1", 2: "urn:dncity:loa:2"}


def acr_for_level(level: int) -> str | None:
    return ACR_BY_LEVEL.get(level)


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("passport_number", "nationality", name="uq_accounts_passport"),)

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(30), default=AccountStatus.pending_verification.value)
    # 0 until the phone is verified, 1 = phone verified, 2 = identity verified by an agency officer.
    level: Mapped[int] = mapped_column(Integer, default=0)

    full_name: Mapped[str | None] = mapped_column(String(200))
    business_name: Mapped[str | None] = mapped_column(String(300))
    phone_e164: Mapped[str | None] = mapped_column(String(20), unique=True)
    phone_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    email: Mapped[str | None] = mapped_column(String(320))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    address: Mapped[str | None] = mapped_column(Text)
    preferred_language: Mapped[str] = mapped_column(String(2), default="vi")

    citizen_id: Mapped[str | None] = mapped_column(String(12), unique=True)
    passport_number: Mapped[str | None] = mapped_column(String(9))
    nationality: Mapped[str | None] = mapped_column(String(3))
    tax_code: Mapped[str | None] = mapped_column(String(14), unique=True)
    # A business's legal representative: an existing citizen account.
    representative_sub: Mapped[str | None] = mapped_column(IdType, ForeignKey("accounts.id"))

    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # TOTP secrets are encrypted at rest (AES-GCM, key from settings.account_secret_key).
    totp_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_pending_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The last accepted TOTP time step: a code is accepted once (no replay within its window).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    recovery_code_hashes: Mapped[list[str]] = mapped_column(JSONType, default=list)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    level2_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def acr(self) -> str | None:
        return acr_for_level(self.level)

    @property
    def is_active(self) -> bool:
        return self.status == AccountStatus.active.value

    @property
    def display_name(self) -> str | None:
        return self.business_name if self.kind == AccountKind.business.value else self.full_name


class CodePurpose(StrEnum):
    registration = "registration"
    password_reset = "password_reset"  # noqa: S105  (a purpose, not a password)


class PhoneCode(Base):
    """A 6-digit code sent by SMS. Its id is the registration (or reset) id the client holds."""

    __tablename__ = "phone_codes"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(IdType, ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    phone_e164: Mapped[str] = mapped_column(String(20))
    # HMAC-SHA256 of the code under a server key: a leaked table does not reveal codes.
    code_hmac: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    invalidated: Mapped[bool] = mapped_column(Boolean, default=False)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
