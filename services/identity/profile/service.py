"""The signed-in person's profile and the children they may act for."""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.accounts import crypto
from services.identity.accounts import validators as v
from services.identity.accounts.models import Account, AccountKind
from services.identity.audit.service import record
from services.identity.privacy import eraser, exporter
from services.identity.profile.models import Dependent, DependentGuardian
from services.identity.profile.schemas import DependentCreate, DependentOut, MeOut, ProfileUpdate
from shared.db import utcnow
from shared.errors import Conflict, FieldError, Forbidden, NotFound, field_error

DEPENDENT_MAX_AGE = v.MIN_ACCOUNT_AGE
# Fields fixed once an agency has verified the identity (level 2).
LOCKED_AT_LEVEL_2 = ("full_name", "business_name", "date_of_birth", "citizen_id", "passport_number", "nationality")
_KIND_FIELDS = {
    AccountKind.citizen.value: {"full_name", "date_of_birth", "citizen_id"},
    AccountKind.foreigner.value: {"full_name", "date_of_birth", "passport_number", "nationality"},
    AccountKind.business.value: {"business_name"},
}
_ANY_KIND = {"address", "email", "preferred_language"}


def me_out(account: Account, *, reveal: bool = False) -> MeOut:
    return MeOut(
        sub=account.id,
        kind=account.kind,
        status=account.status,
        level=account.level,
        acr=account.acr,
        full_name=account.full_name,
        business_name=account.business_name,
        phone=account.phone_e164,
        phone_verified=account.phone_verified,
        email=account.email,
        date_of_birth=account.date_of_birth,
        address=account.address,
        preferred_language=account.preferred_language,
        citizen_id=account.citizen_id if reveal else v.mask_citizen_id(account.citizen_id),
        passport_number=account.passport_number if reveal else v.mask_passport(account.passport_number),
        nationality=account.nationality,
        tax_code=account.tax_code,
        representative_sub=account.representative_sub,
        identifiers_revealed=reveal,
        identifiers_locked=account.level >= 2,
        totp_enabled=account.totp_enabled,
        created_at=account.created_at,
    )


async def update_profile(session: AsyncSession, account: Account, data: ProfileUpdate, *, client_id: str) -> None:
    changes: dict[str, Any] = {name: getattr(data, name) for name in data.model_fields_set}
    allowed = _KIND_FIELDS[account.kind] | _ANY_KIND
    for name, value in changes.items():
        if name not in allowed:
            raise field_error(f"body.{name}", f"not a field of a {account.kind} account", "not_applicable")
        if value is None and name not in ("address", "email"):
            raise field_error(f"body.{name}", "may not be empty", "missing")
        if account.level >= 2 and name in LOCKED_AT_LEVEL_2 and value != getattr(account, name):
            raise Conflict(
                "Verified identity details cannot be changed; visit an agency to correct them",
                code="identifiers_locked",
                errors=[FieldError(field=f"body.{name}", message="verified at level 2", type="locked")],
            )
    if "date_of_birth" in changes:
        try:
            v.validate_account_holder_birth_date(changes["date_of_birth"])
        except ValueError as exc:
            raise field_error("body.date_of_birth", str(exc)) from exc
    if account.kind == AccountKind.citizen.value and ({"citizen_id", "date_of_birth"} & changes.keys()):
        field = "body.citizen_id" if "citizen_id" in changes else "body.date_of_birth"
        try:
            changes["citizen_id"] = v.validate_citizen_id(
                changes.get("citizen_id", account.citizen_id) or "",
                changes.get("date_of_birth", account.date_of_birth),
            )
        except ValueError as exc:
            raise field_error(field, str(exc)) from exc
    if "passport_number" in changes:
        try:
            changes["passport_number"] = v.validate_passport_number(changes["passport_number"])
        except ValueError as exc:
            raise field_error("body.passport_number", str(exc)) from exc
    if "nationality" in changes:
        try:
            changes["nationality"] = v.validate_nationality(changes["nationality"])
        except ValueError as exc:
            raise field_error("body.nationality", str(exc)) from exc
    if "email" in changes and changes["email"] is not None:
        changes["email"] = str(changes["email"]).lower()
    await _check_unique(session, account, changes)
    changed = sorted(k for k, value in changes.items() if getattr(account, k) != value)
    for name in changed:
        setattr(account, name, changes[name])
    await session.flush()
    if changed:
        # Field names only: the values are personal data and stay out of the log.
        await record(
            session, sub=account.id, action="profile.updated", client_id=client_id, details={"fields": changed}
        )


async def _check_unique(session: AsyncSession, account: Account, changes: dict[str, Any]) -> None:
    if changes.get("citizen_id") and changes["citizen_id"] != account.citizen_id:
        taken = await session.scalar(select(Account.id).where(Account.citizen_id == changes["citizen_id"]))
        if taken:
            raise Conflict(
                "Another account has this personal ID",
                code="citizen_id_taken",
                errors=[FieldError(field="body.citizen_id", message="already registered", type="duplicate")],
            )
    if {"passport_number", "nationality"} & changes.keys():
        number = changes.get("passport_number", account.passport_number)
        nationality = changes.get("nationality", account.nationality)
        taken = await session.scalar(
            select(Account.id).where(
                Account.passport_number == number, Account.nationality == nationality, Account.id != account.id
            )
        )
        if taken:
            raise Conflict(
                "Another account has this passport",
                code="passport_taken",
                errors=[FieldError(field="body.passport_number", message="already registered", type="duplicate")],
            )


def dependent_out(dependent: Dependent) -> DependentOut:
    return DependentOut(
        id=dependent.id,
        full_name=dependent.full_name,
        date_of_birth=dependent.date_of_birth,
        citizen_id_masked=v.mask_citizen_id(dependent.citizen_id) or "",
    )


async def add_dependent(session: AsyncSession, account: Account, data: DependentCreate, *, client_id: str) -> Dependent:
    if account.kind != AccountKind.citizen.value:
        raise Forbidden("Only citizen accounts register dependents", code="citizens_only")
    today = v.today_vn()
    if data.date_of_birth > today:
        raise field_error("body.date_of_birth", "the date of birth is in the future")
    if v.age_on(data.date_of_birth, today) >= DEPENDENT_MAX_AGE:
        raise field_error("body.date_of_birth", f"dependents are children under {DEPENDENT_MAX_AGE}", "too_old")
    try:
        citizen_id = v.validate_citizen_id(data.citizen_id, data.date_of_birth)
    except ValueError as exc:
        raise field_error("body.citizen_id", str(exc)) from exc
    if citizen_id == account.citizen_id:
        raise field_error("body.citizen_id", "this is your own personal ID")
    dependent = await session.scalar(select(Dependent).where(Dependent.citizen_id == citizen_id))
    if dependent is None:
        dependent = Dependent(citizen_id=citizen_id, full_name=data.full_name, date_of_birth=data.date_of_birth)
        session.add(dependent)
        await session.flush()
    elif dependent.date_of_birth != data.date_of_birth:
        # The other guardian registered this child with another birth date: one of them is wrong.
        raise Conflict(
            "This personal ID is registered with other details",
            code="dependent_mismatch",
            errors=[FieldError(field="body.date_of_birth", message="does not match", type="mismatch")],
        )
    link = await session.get(DependentGuardian, (dependent.id, account.id))
    if link is not None:
        raise Conflict(
            "This child is already your dependent",
            code="dependent_exists",
            errors=[FieldError(field="body.citizen_id", message="already registered", type="duplicate")],
        )
    has_guardian = await session.scalar(
        select(func.count()).select_from(DependentGuardian).where(DependentGuardian.dependent_id == dependent.id)
    )
    # A child's ID and birth date are on many forms: knowing them must not make anyone a guardian.
    # Once a child has a guardian, another one joins only with that guardian's invitation.
    if has_guardian and not _invitation_valid(data.invitation, dependent.id, account.phone_e164):
        raise Forbidden(
            "This child already has a guardian; ask them to invite you "
            "(POST /v1/identity/me/dependents/{id}/invitations)",
            code="guardian_invitation_required",
        )
    session.add(DependentGuardian(dependent_id=dependent.id, guardian_sub=account.id))
    await session.flush()
    await record(
        session, sub=account.id, action="dependent.added", client_id=client_id, details={"dependent_id": dependent.id}
    )
    return dependent


async def dependents_of(session: AsyncSession, sub: str, *, only_minors: bool = True) -> list[Dependent]:
    rows = list(
        await session.scalars(
            select(Dependent)
            .join(
                DependentGuardian,
                and_(DependentGuardian.dependent_id == Dependent.id, DependentGuardian.guardian_sub == sub),
            )
            .order_by(Dependent.date_of_birth, Dependent.id)
        )
    )
    if not only_minors:
        return rows
    today = v.today_vn()
    return [d for d in rows if v.age_on(d.date_of_birth, today) < DEPENDENT_MAX_AGE]


@exporter
async def export_dependents(session: AsyncSession, sub: str) -> dict[str, Any]:
    return {
        "dependents": [
            {
                "id": d.id,
                "full_name": d.full_name,
                "date_of_birth": d.date_of_birth.isoformat(),
                "citizen_id": d.citizen_id,
            }
            for d in await dependents_of(session, sub, only_minors=False)
        ]
    }


@eraser
async def erase_dependents(session: AsyncSession, sub: str) -> None:
    """Unlink the guardian; a child no other guardian acts for is deleted."""
    ids = [d.id for d in await dependents_of(session, sub, only_minors=False)]
    await session.execute(delete(DependentGuardian).where(DependentGuardian.guardian_sub == sub))
    if ids:
        still_linked = set(
            await session.scalars(
                select(DependentGuardian.dependent_id)
                .where(DependentGuardian.dependent_id.in_(ids))
                .group_by(DependentGuardian.dependent_id)
                .having(func.count() > 0)
            )
        )
        orphans = [i for i in ids if i not in still_linked]
        if orphans:
            await session.execute(delete(Dependent).where(Dependent.id.in_(orphans)))


INVITATION_TTL = timedelta(hours=24)


def _invitation_payload(dependent_id: str, phone: str, expires: int) -> str:
    return f"{dependent_id}|{phone}|{expires}"


def create_invitation(dependent_id: str, phone: str) -> tuple[str, datetime]:
    expires_at = utcnow() + INVITATION_TTL
    expires = int(expires_at.timestamp())
    signature = crypto.sign_invitation(_invitation_payload(dependent_id, phone, expires))
    return f"{expires}.{signature}", expires_at


def _invitation_valid(invitation: str | None, dependent_id: str, phone: str | None) -> bool:
    """Signed for this child and the invitee's own phone, and not expired."""
    if not invitation or not phone or "." not in invitation:
        return False
    expires_text, signature = invitation.split(".", 1)
    if not expires_text.isdigit() or int(expires_text) < utcnow().timestamp():
        return False
    expected = crypto.sign_invitation(_invitation_payload(dependent_id, phone, int(expires_text)))
    return hmac.compare_digest(expected, signature)


async def invite_guardian(
    session: AsyncSession, account: Account, dependent_id: str, phone: str, *, client_id: str | None
) -> tuple[str, datetime]:
    """A guardian invites another person (by phone) to become this child's guardian too."""
    link = await session.get(DependentGuardian, (dependent_id, account.id))
    if link is None:
        raise NotFound("No such dependent", code="dependent_not_found")
    try:
        invitee_phone = v.normalise_phone(phone, vietnamese_only=False)
    except ValueError as exc:
        raise field_error("body.phone", str(exc)) from exc
    await record(
        session,
        sub=account.id,
        action="dependent.guardian_invited",
        client_id=client_id,
        details={"dependent_id": dependent_id},
    )
    return create_invitation(dependent_id, invitee_phone)
