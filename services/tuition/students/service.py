from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.tuition.common import MAX_PAGE, decode_cursor, encode_cursor, mask_personal_id
from services.tuition.importing import ImportMode, ImportReport, RowResult, reject, row_errors
from services.tuition.students.models import Student
from services.tuition.students.schemas import SchoolStudentOut, StudentOut, StudentPage, StudentRow, StudentUpdate
from shared.db import new_id, utcnow
from shared.errors import Conflict, FieldError, NotFound, field_error

FIELDS = ("personal_id", "full_name", "date_of_birth", "grade", "class_name", "status")


def guardian_view(s: Student) -> StudentOut:
    return StudentOut(
        id=s.id,
        student_code=s.student_code,
        full_name=s.full_name,
        date_of_birth=s.date_of_birth,
        school_id=s.school_id,
        grade=s.grade,
        class_name=s.class_name,
        status=s.status,  # type: ignore[arg-type]
        personal_id_masked=mask_personal_id(s.personal_id),
    )


def school_view(s: Student) -> SchoolStudentOut:
    return SchoolStudentOut(
        **guardian_view(s).model_dump(), personal_id=s.personal_id, created_at=s.created_at, updated_at=s.updated_at
    )


async def get_school_student(session: AsyncSession, school_id: str, student_id: str) -> Student:
    """A school's own student; another school's student is simply not found (no existence leak)."""
    student = await session.get(Student, student_id)
    if student is None or student.school_id != school_id:
        raise NotFound("No such student at this school", code="student_not_found")
    return student


async def import_students(
    session: AsyncSession, school_id: str, raw_rows: list[dict[str, Any]], mode: ImportMode
) -> ImportReport:
    results: list[RowResult] = []
    valid: list[tuple[RowResult, StudentRow]] = []
    for index, raw in enumerate(raw_rows, start=1):
        key = str(raw.get("student_code")) if raw.get("student_code") is not None else None
        try:
            row = StudentRow.model_validate(raw)
        except ValidationError as exc:
            results.append(RowResult(row=index, key=key, outcome="error", errors=row_errors(exc)))
            continue
        result = RowResult(row=index, key=row.student_code, outcome="not_applied")
        results.append(result)
        valid.append((result, row))

    # Cross-row and database checks: codes and personal IDs are unique across the city.
    codes = [r.student_code for _, r in valid]
    pids = [r.personal_id for _, r in valid if r.personal_id]
    existing = (
        (
            await session.execute(
                select(Student).where(or_(Student.student_code.in_(codes), Student.personal_id.in_(pids)))
            )
        )
        .scalars()
        .all()
        if valid
        else []
    )
    by_code = {s.student_code: s for s in existing}
    by_pid = {s.personal_id: s for s in existing if s.personal_id}
    seen_codes: dict[str, int] = {}
    seen_pids: dict[str, int] = {}
    for result, row in valid:
        errors: list[FieldError] = []
        if row.student_code in seen_codes:
            errors.append(
                FieldError(
                    field="student_code",
                    type="duplicate",
                    message=f"Same student_code as row {seen_codes[row.student_code]}",
                )
            )
        seen_codes.setdefault(row.student_code, result.row)
        current = by_code.get(row.student_code)
        if current is not None and current.school_id != school_id:
            errors.append(
                FieldError(
                    field="student_code", type="taken", message="This student code is registered by another school"
                )
            )
        if row.personal_id:
            if row.personal_id in seen_pids:
                errors.append(
                    FieldError(
                        field="personal_id",
                        type="duplicate",
                        message=f"Same personal_id as row {seen_pids[row.personal_id]}",
                    )
                )
            seen_pids.setdefault(row.personal_id, result.row)
            holder = by_pid.get(row.personal_id)
            if holder is not None and holder.student_code != row.student_code:
                errors.append(
                    FieldError(field="personal_id", type="taken", message="This personal ID belongs to another student")
                )
        if errors:
            result.outcome, result.errors = "error", errors

    report = ImportReport(
        mode=mode,
        applied=False,
        total=len(results),
        rows=results,
        failed=sum(1 for r in results if r.outcome == "error"),
    )
    if report.failed and mode == "all_or_nothing":
        raise reject(report)

    now = utcnow()
    for result, row in valid:
        if result.outcome == "error":
            continue
        current = by_code.get(row.student_code)
        if current is None:
            student = Student(
                id=new_id(),
                school_id=school_id,
                student_code=row.student_code,
                created_at=now,
                updated_at=now,
                **row.model_dump(include=set(FIELDS)),
            )
            session.add(student)
            result.outcome, result.id = "created", student.id
            continue
        changes = {f: getattr(row, f) for f in FIELDS if getattr(current, f) != getattr(row, f)}
        result.id = current.id
        if not changes:
            result.outcome = "unchanged"
            continue
        for name, value in changes.items():
            setattr(current, name, value)
        current.updated_at = now
        result.outcome = "updated"
    await _flush(session)
    for outcome in ("created", "updated", "unchanged"):
        setattr(report, outcome, sum(1 for r in results if r.outcome == outcome))
    report.applied = bool(report.created or report.updated)
    return report


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        # Another import registered the same code or personal ID at the same moment.
        raise Conflict(
            "A student code or personal ID was registered concurrently; retry the batch", code="student_conflict"
        ) from exc


async def update_student(session: AsyncSession, school_id: str, student_id: str, data: StudentUpdate) -> Student:
    student = await get_school_student(session, school_id, student_id)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("personal_id"):
        holder = (
            await session.execute(
                select(Student.id).where(Student.personal_id == changes["personal_id"], Student.id != student.id)
            )
        ).first()
        if holder is not None:
            raise field_error("body.personal_id", "This personal ID belongs to another student", "taken")
    for name, value in changes.items():
        if value is None and name != "personal_id":
            raise field_error(f"body.{name}", "may not be null", "null")
        setattr(student, name, value)
    student.updated_at = utcnow()
    await _flush(session)
    return student


async def list_school_students(
    session: AsyncSession, school_id: str, *, class_name: str | None, cursor: str | None, limit: int
) -> StudentPage:
    query = select(Student).where(Student.school_id == school_id)
    if class_name:
        query = query.where(Student.class_name == class_name)
    after = decode_cursor(cursor, 1)
    if after:
        query = query.where(Student.student_code > after[0])
    rows = (await session.execute(query.order_by(Student.student_code).limit(min(limit, MAX_PAGE) + 1))).scalars().all()
    page = list(rows[:limit])
    return StudentPage(
        items=[school_view(s) for s in page],
        next_cursor=encode_cursor(page[-1].student_code) if len(rows) > limit else None,
    )
