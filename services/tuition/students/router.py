from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from services.tuition.billing.models import Invoice
from services.tuition.billing.schemas import ExemptionCreate, ExemptionOut, ExemptionPage, InvoicePage, InvoiceStatus
from services.tuition.billing.service import grant_exemption, list_exemptions, page_invoices, revoke_exemption
from services.tuition.common import guardian_of, school_of
from services.tuition.guardians import service as guardians
from services.tuition.guardians.schemas import GuardianshipOut, GuardianshipPage, LinkCodeOut, LinkRequest
from services.tuition.importing import ImportMode, ImportReport, read_rows, request_body_spec
from services.tuition.runtime import RuntimeDep
from services.tuition.students.schemas import (
    STUDENT_CSV_COLUMNS,
    STUDENT_CSV_REQUIRED,
    GuardianStudentPage,
    SchoolStudentOut,
    StudentOut,
    StudentPage,
    StudentRow,
    StudentUpdate,
)
from services.tuition.students.service import (
    get_school_student,
    guardian_view,
    import_students,
    list_school_students,
    school_view,
    update_student,
)
from shared.auth import CurrentPrincipal, Principal, RequireClient, RequireUser
from shared.db import SessionDep
from shared.errors import problem_responses

router = APIRouter(prefix="/v1/tuition", tags=["students"])
StudentsWriter = Annotated[Principal, RequireClient("tuition.students.write")]
InvoicesWriter = Annotated[Principal, RequireClient("tuition.invoices.write")]
Guardian = Annotated[Principal, RequireUser("tuition")]

_IMPORT_SCHEMA = {
    "type": "object",
    "required": ["students"],
    "properties": {"students": {"type": "array", "items": StudentRow.model_json_schema()}},
}


@router.post(
    "/students/import",
    response_model=ImportReport,
    responses=problem_responses(401, 403, 409, 413, 415, 422),
    openapi_extra=request_body_spec(_IMPORT_SCHEMA, STUDENT_CSV_COLUMNS),
)
async def import_students_batch(
    request: Request,
    session: SessionDep,
    school: StudentsWriter,
    mode: ImportMode = "all_or_nothing",
) -> ImportReport:
    """Create or update the school's students from JSON ({"students": [...]}) or CSV, with a per-row report."""
    rows = await read_rows(request, "students", STUDENT_CSV_COLUMNS, STUDENT_CSV_REQUIRED)
    return await import_students(session, school.client_id, rows, mode)


@router.get("/students", response_model=StudentPage, responses=problem_responses(401, 403, 422))
async def list_students(
    session: SessionDep,
    school: StudentsWriter,
    class_name: Annotated[str | None, Query(max_length=50)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> StudentPage:
    """The school's students, by student code."""
    return await list_school_students(session, school.client_id, class_name=class_name, cursor=cursor, limit=limit)


@router.get(
    "/students/{student_id}", response_model=SchoolStudentOut | StudentOut, responses=problem_responses(401, 403, 404)
)
async def get_student(
    student_id: str, session: SessionDep, principal: CurrentPrincipal
) -> SchoolStudentOut | StudentOut:
    """A student: its school sees everything; a linked guardian sees the personal ID masked."""
    school_id = school_of(principal)
    if school_id is not None:
        return school_view(await get_school_student(session, school_id, student_id))
    return guardian_view(await guardians.guardian_student(session, guardian_of(principal), student_id))


@router.patch(
    "/students/{student_id}", response_model=SchoolStudentOut, responses=problem_responses(400, 401, 403, 404, 409, 422)
)
async def update_student_record(
    student_id: str, data: StudentUpdate, session: SessionDep, school: StudentsWriter
) -> SchoolStudentOut:
    """Update one student of the school (grade, class, status, …)."""
    return school_view(await update_student(session, school.client_id, student_id, data))


@router.post(
    "/students/{student_id}/link-codes",
    response_model=LinkCodeOut,
    status_code=201,
    responses=problem_responses(401, 403, 404),
)
async def issue_link_code(
    student_id: str, session: SessionDep, school: StudentsWriter, runtime: RuntimeDep
) -> LinkCodeOut:
    """Issue a one-time code a guardian uses to link to this student (expires; works once)."""
    return await guardians.issue_link_code(session, school.client_id, student_id, runtime.settings.link_code_ttl_hours)


@router.get(
    "/students/{student_id}/guardians", response_model=GuardianshipPage, responses=problem_responses(401, 403, 404)
)
async def list_student_guardians(student_id: str, session: SessionDep, school: StudentsWriter) -> GuardianshipPage:
    """The guardians linked to a student (active and revoked)."""
    rows = await guardians.list_guardians(session, school.client_id, student_id)
    return GuardianshipPage(items=[guardians.view(g) for g in rows])


@router.delete(
    "/students/{student_id}/guardians/{guardianship_id}",
    response_model=GuardianshipOut,
    responses=problem_responses(401, 403, 404),
)
async def revoke_guardian(
    student_id: str, guardianship_id: str, session: SessionDep, school: StudentsWriter
) -> GuardianshipOut:
    """Revoke a guardian's link to a student; only a new link code restores it."""
    return guardians.view(await guardians.revoke(session, school.client_id, student_id, guardianship_id))


@router.get(
    "/students/{student_id}/invoices", response_model=InvoicePage, responses=problem_responses(401, 403, 404, 422)
)
async def list_student_invoices(
    student_id: str,
    session: SessionDep,
    principal: CurrentPrincipal,
    status: InvoiceStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> InvoicePage:
    """A student's invoices, for its school or a linked guardian."""
    school_id = school_of(principal)
    if school_id is not None:
        await get_school_student(session, school_id, student_id)
    else:
        await guardians.guardian_student(session, guardian_of(principal), student_id)
    return await page_invoices(
        session, select(Invoice).where(Invoice.student_id == student_id), status=status, cursor=cursor, limit=limit
    )


@router.post(
    "/students/{student_id}/exemptions",
    response_model=ExemptionOut,
    status_code=201,
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def grant_student_exemption(
    student_id: str, data: ExemptionCreate, session: SessionDep, school: InvoicesWriter
) -> ExemptionOut:
    """Record a Decree 81/2021 exemption or reduction (with evidence); unpaid invoices take it at once."""
    return await grant_exemption(session, school.client_id, student_id, data)


@router.delete(
    "/students/{student_id}/exemptions/{exemption_id}",
    response_model=ExemptionOut,
    responses=problem_responses(401, 403, 404, 409),
)
async def revoke_student_exemption(
    student_id: str, exemption_id: str, session: SessionDep, school: InvoicesWriter
) -> ExemptionOut:
    """Revoke an exemption (kept for the record); unpaid invoices lose the reduction at once."""
    return await revoke_exemption(session, school.client_id, student_id, exemption_id)


@router.get(
    "/students/{student_id}/exemptions", response_model=ExemptionPage, responses=problem_responses(401, 403, 404)
)
async def list_student_exemptions(student_id: str, session: SessionDep, school: InvoicesWriter) -> ExemptionPage:
    """The exemptions recorded for a student."""
    return ExemptionPage(items=await list_exemptions(session, school.client_id, student_id))


@router.get(
    "/me/students", response_model=GuardianStudentPage, responses=problem_responses(401, 403), tags=["guardians"]
)
async def list_my_students(session: SessionDep, guardian: Guardian) -> GuardianStudentPage:
    """The students the caller is a guardian of."""
    assert guardian.sub is not None
    students = await guardians.guardian_students(session, guardian.sub)
    return GuardianStudentPage(items=[guardian_view(s) for s in students])


@router.post(
    "/me/students",
    response_model=StudentOut,
    status_code=201,
    responses=problem_responses(400, 401, 403, 409, 422),
    tags=["guardians"],
)
async def link_student(data: LinkRequest, session: SessionDep, guardian: Guardian) -> StudentOut:
    """Link to a student with a code from the school, or with the student's personal ID and date of birth."""
    assert guardian.sub is not None
    return guardian_view(await guardians.link(session, guardian.sub, data))


@router.delete(
    "/me/students/{student_id}",
    response_model=GuardianshipOut,
    responses=problem_responses(401, 403, 404),
    tags=["guardians"],
)
async def unlink_student(student_id: str, session: SessionDep, guardian: Guardian) -> GuardianshipOut:
    """End the caller's own link to a student; they may link again later with a code or the personal ID."""
    assert guardian.sub is not None
    return guardians.view(await guardians.unlink(session, guardian.sub, student_id))
