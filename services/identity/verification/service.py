"""Level-2 identity verification by an authorised agency officer."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.accounts import validators as v
from services.identity.accounts.models import Account, AccountStatus
from services.identity.audit.service import record
from services.identity.verification.models import IdentityVerification
from services.identity.verification.schemas import VerificationCreate
from shared.db import new_id, utcnow
from shared.errors import Conflict, NotFound, field_error


async def _find(session: AsyncSession, data: VerificationCreate) -> Account | None:
    if data.sub is not None:
        return await session.get(Account, data.sub)
    if data.citizen_id is not None:
        try:
            number = v.validate_citizen_id(data.citizen_id)
        except ValueError as exc:
            raise field_error("body.citizen_id", str(exc)) from exc
        return await session.scalar(select(Account).where(Account.citizen_id == number))
    try:
        passport = v.validate_passport_number(data.passport_number or "")
        nationality = v.validate_nationality(data.nationality or "")
    except ValueError as exc:
        raise field_error("body.passport_number", str(exc)) from exc
    return await session.scalar(
        select(Account).where(Account.passport_number == passport, Account.nationality == nationality)
    )


async def verify_identity(session: AsyncSession, data: VerificationCreate, *, agency: str) -> IdentityVerification:
    account = await _find(session, data)
    if account is None or account.status != AccountStatus.active.value:
        raise NotFound("No active account matches", code="account_not_found")
    await record(
        session,
        sub=account.id,
        action="agency.accessed",
        client_id=agency,
        details={"purpose": "identity_verification", "officer_id": data.officer_id},
    )
    if data.date_of_birth is not None and data.date_of_birth != account.date_of_birth:
        await session.commit()  # keep the record of the agency's look-up although the request fails
        raise Conflict("The date of birth does not match the account", code="details_mismatch")
    verification = IdentityVerification(
        id=new_id(),
        sub=account.id,
        agency_client_id=agency,
        officer_id=data.officer_id,
        method=data.method,
        evidence_reference=data.evidence_reference,
        created_at=utcnow(),
    )
    session.add(verification)
    previous = account.level
    account.level = max(account.level, 2)
    account.level2_at = account.level2_at or verification.created_at
    await session.flush()
    await record(
        session,
        sub=account.id,
        action="identity.verified",
        client_id=agency,
        details={"method": data.method, "officer_id": data.officer_id, "verification_id": verification.id},
    )
    if previous != account.level:
        await record(
            session,
            sub=account.id,
            action="level.changed",
            client_id=agency,
            details={"from": previous, "to": account.level},
        )
    return verification
