from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from services.identity.db import Base
from shared.db import IdType, UTCDateTime, new_id, utcnow


class IdentityVerification(Base):
    """An agency officer's level-2 verification of a person: who, when, how, and the evidence reference.

    Kept after an account is erased (it names the agency's act, under the pseudonymous ``sub``)."""

    __tablename__ = "identity_verifications"

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    sub: Mapped[str] = mapped_column(IdType, ForeignKey("accounts.id"), index=True)
    agency_client_id: Mapped[str] = mapped_column(String(64))
    officer_id: Mapped[str] = mapped_column(String(100))
    method: Mapped[str] = mapped_column(String(30))
    evidence_reference: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
