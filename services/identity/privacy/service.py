"""Export of everything identity holds about a person, and erasure of an account."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import structlog
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.accounts.models import Account, AccountStatus, PhoneCode
from services.identity.audit.service import all_for, record
from services.identity.privacy import ERASERS, EXPORTERS
from services.identity.verification.models import IdentityVerification
from shared.db import utcnow
from shared.events import Outbox

log = structlog.get_logger("identity.privacy")

# Never exported (secrets that protect the data, not data about the person).
_SECRET_COLUMNS = frozenset(
    {"password_hash", "totp_secret_encrypted", "totp_pending_encrypted", "recovery_code_hashes", "totp_last_step"}
)
# Personal data removed on erasure; what stays is the pseudonymous id, kind, status and dates.
_ERASED_COLUMNS = (
    "full_name",
    "business_name",
    "phone_e164",
    "email",
    "date_of_birth",
    "address",
    "citizen_id",
    "passport_number",
    "nationality",
    "tax_code",
    "representative_sub",
    "password_hash",
    "password_changed_at",
    "totp_secret_encrypted",
    "totp_pending_encrypted",
    "totp_last_step",
)
ERASED_EVENT = "identity.account.erased"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def account_export(account: Account) -> dict[str, Any]:
    data = {c.key: _plain(getattr(account, c.key)) for c in Account.__table__.columns if c.key not in _SECRET_COLUMNS}
    data["acr"] = account.acr
    data["recovery_codes_left"] = len(account.recovery_code_hashes or [])
    return data


async def export(session: AsyncSession, account: Account, *, client_id: str) -> dict[str, Any]:
    verifications = list(
        await session.scalars(
            select(IdentityVerification)
            .where(IdentityVerification.sub == account.id)
            .order_by(IdentityVerification.created_at)
        )
    )
    await record(session, sub=account.id, action="data.exported", client_id=client_id)
    result: dict[str, Any] = {
        "format": "dncity.identity.export/1",
        "exported_at": utcnow().isoformat(),
        "sub": account.id,
        "account": account_export(account),
        "identity_verifications": [
            {
                "id": x.id,
                "agency_client_id": x.agency_client_id,
                "officer_id": x.officer_id,
                "method": x.method,
                "evidence_reference": x.evidence_reference,
                "verified_at": x.created_at.isoformat(),
            }
            for x in verifications
        ],
        "audit": [
            {
                "id": e.id,
                "action": e.action,
                "client_id": e.client_id,
                "request_id": e.request_id,
                "details": e.details,
                "created_at": e.created_at.isoformat(),
            }
            for e in await all_for(session, account.id)
        ],
    }
    for fn in EXPORTERS:
        result.update(await fn(session, account.id))
    return result


async def erase(session: AsyncSession, outbox: Outbox, account: Account, *, client_id: str) -> None:
    """Sign-in stops at once; personal data goes; the pseudonymous id, audit trail and agency
    verification records stay (the law keeps those); other services are told to erase their copies."""
    sub = account.id
    for fn in ERASERS:
        await fn(session, sub)
    await session.execute(delete(PhoneCode).where(PhoneCode.account_id == sub))
    for column in _ERASED_COLUMNS:
        setattr(account, column, None)
    account.recovery_code_hashes = []
    account.totp_enabled = False
    account.phone_verified = False
    account.status = AccountStatus.erased.value
    account.level = 0
    account.erased_at = utcnow()
    await session.flush()
    await record(session, sub=sub, action="account.erased", client_id=client_id)
    await outbox.add(session, ERASED_EVENT, {"sub": sub}, subject=sub)
    log.info("account_erased")
