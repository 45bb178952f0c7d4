from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.tuition.guardians.models import Guardianship, LinkCode
from services.tuition.guardians.schemas import GuardianshipOut, LinkCodeOut, LinkRequest
from services.tuition.students.models import Student
from services.tuition.students.service import get_school_student
from shared.db import utcnow
from shared.errors import Conflict, Forbidden, NotFound, Unprocessable

# No 0/O or 1/I: codes are read aloud and typed from paper.
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _hash(code: str) -> str:
    normalized = code.upper().replace("-", "").replace(" ", "")
    return hashlib.sha256(normalized.encode()).hexdigest()


def view(g: Guardianship) -> GuardianshipOut:
    return GuardianshipOut(
        id=g.id,
        student_id=g.student_id,
        guardian_sub=g.guardian_sub,
        status=g.status,  # type: ignore[arg-type]
        linked_via=g.linked_via,
        created_at=g.created_at,
        revoked_at=g.revoked_at,
    )  # type: ignore[arg-type]


async def issue_link_code(session: AsyncSession, school_id: str, student_id: str, ttl_hours: int) -> LinkCodeOut:
    student = await get_school_student(session, school_id, student_id)
    raw = "".join(secrets.choice(ALPHABET) for _ in range(10))
    code = f"{raw[:5]}-{raw[5:]}"
    expires_at = utcnow() + timedelta(hours=ttl_hours)
    session.add(LinkCode(code_hash=_hash(code), student_id=student.id, school_id=school_id, expires_at=expires_at))
    await session.flush()
    return LinkCodeOut(code=code, student_id=student.id, expires_at=expires_at)


def _link_error(field: str, message: str, code: str) -> Unprocessable:
    return Unprocessable(message, code=code, errors=[{"field": f"body.{field}", "message": message, "type": code}])


async def link(session: AsyncSession, guardian_sub: str, data: LinkRequest) -> Student:
    now = utcnow()
    if data.link_code is not None:
        code = (
            await session.execute(select(LinkCode).where(LinkCode.code_hash == _hash(data.link_code)))
        ).scalar_one_or_none()
        if code is None:
            raise _link_error("link_code", "Unknown link code", "link_code_invalid")
        if code.used_at is not None:
            raise Conflict(
                "This link code was already used",
                code="link_code_used",
                errors=[{"field": "body.link_code", "message": "already used", "type": "link_code_used"}],
            )
        if code.expires_at <= now:
            raise _link_error(
                "link_code", "This link code has expired; ask the school for a new one", "link_code_expired"
            )
        # Single use even under concurrent redemption: only one guarded update wins.
        won = await session.execute(
            update(LinkCode)
            .where(LinkCode.id == code.id, LinkCode.used_at.is_(None))
            .values(used_at=now, used_by=guardian_sub)
        )
        if won.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("This link code was already used", code="link_code_used")
        student = await session.get(Student, code.student_id)
        assert student is not None
        via = "link_code"
    else:
        student = (
            await session.execute(select(Student).where(Student.personal_id == data.personal_id))
        ).scalar_one_or_none()
        # One answer for "no such ID" and "wrong birth date", so the pair cannot be probed separately.
        if student is None or student.date_of_birth != data.date_of_birth:
            raise _link_error(
                "personal_id", "No student matches this personal ID and date of birth", "student_not_matched"
            )
        via = "personal_id"
    existing = (
        await session.execute(
            select(Guardianship).where(Guardianship.student_id == student.id, Guardianship.guardian_sub == guardian_sub)
        )
    ).scalar_one_or_none()
    if existing is None:
        session.add(Guardianship(student_id=student.id, guardian_sub=guardian_sub, linked_via=via, created_at=now))
    elif existing.status == "revoked":
        # A school's revocation is undone only by a new code from that school; a guardian who ended
        # the link themselves may link again either way.
        if via != "link_code" and existing.revoked_by != guardian_sub:
            raise Forbidden("The school revoked this link; ask it for a new link code", code="link_revoked")
        existing.status, existing.revoked_at, existing.revoked_by, existing.linked_via = "active", None, None, via
    await session.flush()
    return student


async def guardian_students(session: AsyncSession, guardian_sub: str) -> list[Student]:
    query = (
        select(Student)
        .join(Guardianship, Guardianship.student_id == Student.id)
        .where(Guardianship.guardian_sub == guardian_sub, Guardianship.status == "active")
        .order_by(Student.full_name, Student.id)
    )
    return list((await session.execute(query)).scalars().all())


async def is_guardian(session: AsyncSession, guardian_sub: str, student_id: str) -> bool:
    row = (
        await session.execute(
            select(Guardianship.id).where(
                Guardianship.guardian_sub == guardian_sub,
                Guardianship.student_id == student_id,
                Guardianship.status == "active",
            )
        )
    ).first()
    return row is not None


async def guardian_student(session: AsyncSession, guardian_sub: str, student_id: str) -> Student:
    """A student this guardian is linked to; anything else is not found (no BOLA, no existence leak)."""
    if not await is_guardian(session, guardian_sub, student_id):
        raise NotFound("No such student among yours", code="student_not_found")
    student = await session.get(Student, student_id)
    assert student is not None
    return student


async def list_guardians(session: AsyncSession, school_id: str, student_id: str) -> list[Guardianship]:
    await get_school_student(session, school_id, student_id)
    rows = await session.execute(
        select(Guardianship).where(Guardianship.student_id == student_id).order_by(Guardianship.created_at)
    )
    return list(rows.scalars().all())


async def revoke(session: AsyncSession, school_id: str, student_id: str, guardianship_id: str) -> Guardianship:
    await get_school_student(session, school_id, student_id)
    g = await session.get(Guardianship, guardianship_id)
    if g is None or g.student_id != student_id:
        raise NotFound("No such guardian link", code="guardianship_not_found")
    if g.status != "revoked":
        g.status, g.revoked_at, g.revoked_by = "revoked", utcnow(), school_id
        await session.flush()
    return g


async def unlink(session: AsyncSession, guardian_sub: str, student_id: str) -> Guardianship:
    """The guardian ends their own link to a student (kept, revoked, for the school's record).

    Payment orders already placed are theirs and stay readable; invoices of the student no longer are.
    """
    g = (
        await session.execute(
            select(Guardianship).where(
                Guardianship.guardian_sub == guardian_sub,
                Guardianship.student_id == student_id,
                Guardianship.status == "active",
            )
        )
    ).scalar_one_or_none()
    if g is None:
        raise NotFound("No such student among yours", code="student_not_found")
    g.status, g.revoked_at, g.revoked_by = "revoked", utcnow(), guardian_sub
    await session.flush()
    return g
