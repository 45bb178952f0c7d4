from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from services.tuition.billing import money
from services.tuition.billing.models import Invoice, InvoiceAudit
from services.tuition.billing.schemas import (
    INVOICE_CSV_COLUMNS,
    INVOICE_CSV_REQUIRED,
    AdjustmentCreate,
    AuditEntry,
    AuditPage,
    ExemptionCategory,
    FeeItemCreate,
    FeeItemOut,
    FeeItemPage,
    GenerateReport,
    InvoiceLineRow,
    InvoiceOut,
    InvoicePage,
    InvoiceStatus,
    RoundCreate,
    RoundOut,
    RoundPage,
    VoidRequest,
)
from services.tuition.billing.service import (
    adjust,
    create_fee_item,
    create_round,
    generate_invoices,
    get_round,
    get_school_invoice,
    import_invoices,
    invoice_views,
    list_fee_items,
    list_rounds,
    page_invoices,
    round_view,
    void_invoice,
    void_line,
)
from services.tuition.common import guardian_of, school_of
from services.tuition.db import idempotency_keys
from services.tuition.guardians.service import is_guardian
from services.tuition.importing import ImportMode, ImportReport, read_rows, request_body_spec
from services.tuition.runtime import RuntimeDep
from services.tuition.students.models import Student
from shared.auth import CurrentPrincipal, Principal, RequireClient, RequireUser
from shared.db import SessionDep
from shared.errors import NotFound, problem_responses
from shared.idempotency import OptionalIdempotencyKey, owner_of, run_idempotent

router = APIRouter(prefix="/v1/tuition", tags=["invoices"])
School = Annotated[Principal, RequireClient("tuition.invoices.write")]
Guardian = Annotated[Principal, RequireUser("tuition")]

_IMPORT_SCHEMA = {
    "type": "object",
    "required": ["lines"],
    "properties": {"lines": {"type": "array", "items": InvoiceLineRow.model_json_schema()}},
}


@router.get("/exemption-categories", response_model=list[ExemptionCategory], responses=problem_responses(401))
async def list_exemption_categories(principal: CurrentPrincipal) -> list[ExemptionCategory]:
    """The exemption and reduction categories of Decree 81/2021/NĐ-CP and their percentages."""
    return [ExemptionCategory(category=k, percent=p, description=d) for k, (p, d) in money.DECREE_81_CATEGORIES.items()]


@router.post(
    "/fee-items",
    response_model=FeeItemOut,
    status_code=201,
    responses=problem_responses(400, 401, 403, 409, 422),
    tags=["fees"],
)
async def create_fee_item_for_grade(data: FeeItemCreate, session: SessionDep, school: School) -> FeeItemOut:
    """Define a fee item for a grade and term (tuition, meals, boarding, …)."""
    return await create_fee_item(session, school.client_id, data)


@router.get("/fee-items", response_model=FeeItemPage, responses=problem_responses(401, 403, 422), tags=["fees"])
async def list_school_fee_items(
    session: SessionDep,
    school: School,
    term: Annotated[str | None, Query(max_length=40)] = None,
    grade: Annotated[str | None, Query(max_length=20)] = None,
) -> FeeItemPage:
    """The school's fee items, optionally for one term and grade."""
    return FeeItemPage(items=await list_fee_items(session, school.client_id, term, grade))


@router.post(
    "/rounds",
    response_model=RoundOut,
    status_code=201,
    responses=problem_responses(400, 401, 403, 409, 422),
    tags=["fees"],
)
async def create_collection_round(data: RoundCreate, session: SessionDep, school: School) -> RoundOut:
    """Open a collection round with its due date(s); several dates allow instalments."""
    return round_view(await create_round(session, school.client_id, data))


@router.get("/rounds", response_model=RoundPage, responses=problem_responses(401, 403), tags=["fees"])
async def list_collection_rounds(session: SessionDep, school: School) -> RoundPage:
    """The school's collection rounds, newest first."""
    return RoundPage(items=[round_view(r) for r in await list_rounds(session, school.client_id)])


@router.post(
    "/rounds/{round_id}/invoices/generate",
    response_model=GenerateReport,
    responses=problem_responses(401, 403, 404, 409),
    tags=["fees"],
)
async def generate_round_invoices(round_id: str, session: SessionDep, school: School) -> GenerateReport:
    """Invoice every active student from the fee items of their grade (students already invoiced are skipped)."""
    return await generate_invoices(session, school.client_id, round_id)


@router.post(
    "/rounds/{round_id}/invoices/import",
    response_model=ImportReport,
    responses=problem_responses(401, 403, 404, 409, 413, 415, 422),
    openapi_extra=request_body_spec(_IMPORT_SCHEMA, INVOICE_CSV_COLUMNS),
    tags=["fees"],
)
async def import_round_invoices(
    request: Request, round_id: str, session: SessionDep, school: School, mode: ImportMode = "all_or_nothing"
) -> ImportReport:
    """Create invoices from lines (JSON {"lines": [...]} or CSV); one student's lines form one invoice."""
    await get_round(session, school.client_id, round_id)
    rows = await read_rows(request, "lines", INVOICE_CSV_COLUMNS, INVOICE_CSV_REQUIRED)
    return await import_invoices(session, school.client_id, round_id, rows, mode)


@router.get("/invoices", response_model=InvoicePage, responses=problem_responses(401, 403, 422))
async def list_school_invoices(
    session: SessionDep,
    school: School,
    round_id: Annotated[str | None, Query(max_length=32)] = None,
    class_name: Annotated[str | None, Query(max_length=50)] = None,
    status: InvoiceStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> InvoicePage:
    """The school's invoices, by due date."""
    query = select(Invoice).where(Invoice.school_id == school.client_id)
    if round_id:
        query = query.where(Invoice.round_id == round_id)
    if class_name:
        query = query.where(
            Invoice.student_id.in_(
                select(Student.id).where(Student.school_id == school.client_id, Student.class_name == class_name)
            )
        )
    return await page_invoices(session, query, status=status, cursor=cursor, limit=limit)


@router.get("/me/invoices", response_model=InvoicePage, responses=problem_responses(401, 403, 422), tags=["guardians"])
async def list_my_invoices(
    session: SessionDep,
    guardian: Guardian,
    status: Annotated[InvoiceStatus | None, Query(description="open = everything still to pay")] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> InvoicePage:
    """Invoices of all the caller's linked students (status=open: what is still to pay)."""
    from services.tuition.guardians.models import Guardianship

    linked = select(Guardianship.student_id).where(
        Guardianship.guardian_sub == guardian.sub, Guardianship.status == "active"
    )
    return await page_invoices(
        session, select(Invoice).where(Invoice.student_id.in_(linked)), status=status, cursor=cursor, limit=limit
    )


@router.get("/invoices/{invoice_id}", response_model=InvoiceOut, responses=problem_responses(401, 403, 404))
async def get_invoice(invoice_id: str, session: SessionDep, principal: CurrentPrincipal) -> InvoiceOut:
    """One invoice with its lines and instalments, for its school or a linked guardian."""
    school_id = school_of(principal)
    if school_id is not None:
        invoice = await get_school_invoice(session, school_id, invoice_id)
    else:
        invoice = await session.get(Invoice, invoice_id)  # type: ignore[assignment]
        if invoice is None or not await is_guardian(session, guardian_of(principal), invoice.student_id):
            raise NotFound("No such invoice among yours", code="invoice_not_found")
    return (await invoice_views(session, [invoice]))[0]


@router.get("/invoices/{invoice_id}/audit", response_model=AuditPage, responses=problem_responses(401, 403, 404))
async def get_invoice_audit(invoice_id: str, session: SessionDep, school: School) -> AuditPage:
    """Everything that changed the invoice: creation, exemptions, adjustments, voids, payments, refunds."""
    await get_school_invoice(session, school.client_id, invoice_id)
    rows = await session.execute(
        select(InvoiceAudit).where(InvoiceAudit.invoice_id == invoice_id).order_by(InvoiceAudit.at, InvoiceAudit.id)
    )
    return AuditPage(
        items=[
            AuditEntry(at=a.at, actor=a.actor, action=a.action, detail=a.detail, note=a.note) for a in rows.scalars()
        ]
    )


async def _maybe_idempotent(
    session: SessionDep, school: Principal, key: str | None, payload: Any, work: Callable[[], Awaitable[Any]]
) -> Any:
    if key is None:
        return await work()
    return await run_idempotent(
        session,
        idempotency_keys,
        owner=owner_of(school.client_id, school.sub),
        key=key,
        payload=payload,
        work=work,
        status_code=200,
    )


_CHANGE_RESPONSES = problem_responses(400, 401, 403, 404, 409, 422, 502, 503)


@router.post("/invoices/{invoice_id}/adjustments", response_model=InvoiceOut, responses=_CHANGE_RESPONSES)
async def adjust_invoice(
    invoice_id: str,
    data: AdjustmentCreate,
    session: SessionDep,
    school: School,
    runtime: RuntimeDep,
    idempotency_key: OptionalIdempotencyKey = None,
) -> JSONResponse | InvoiceOut:
    """Add a charge or credit line (audited); a credit below what was paid refunds the difference."""

    async def work() -> InvoiceOut:
        invoice = await adjust(session, school.client_id, invoice_id, data, runtime.payments_client())
        return (await invoice_views(session, [invoice]))[0]

    return await _maybe_idempotent(session, school, idempotency_key, {"invoice": invoice_id, **data.model_dump()}, work)


@router.post("/invoices/{invoice_id}/lines/{line_id}/void", response_model=InvoiceOut, responses=_CHANGE_RESPONSES)
async def void_invoice_line(
    invoice_id: str,
    line_id: str,
    data: VoidRequest,
    session: SessionDep,
    school: School,
    runtime: RuntimeDep,
    idempotency_key: OptionalIdempotencyKey = None,
) -> JSONResponse | InvoiceOut:
    """Void one line (audited); if it was paid, the difference is refunded to the payer."""

    async def work() -> InvoiceOut:
        invoice = await void_line(
            session, school.client_id, invoice_id, line_id, data.reason, runtime.payments_client()
        )
        return (await invoice_views(session, [invoice]))[0]

    return await _maybe_idempotent(
        session, school, idempotency_key, {"invoice": invoice_id, "line": line_id, **data.model_dump()}, work
    )


@router.post("/invoices/{invoice_id}/void", response_model=InvoiceOut, responses=_CHANGE_RESPONSES)
async def void_whole_invoice(
    invoice_id: str,
    data: VoidRequest,
    session: SessionDep,
    school: School,
    runtime: RuntimeDep,
    idempotency_key: OptionalIdempotencyKey = None,
) -> JSONResponse | InvoiceOut:
    """Void an invoice (audited); whatever was paid on it is refunded."""

    async def work() -> InvoiceOut:
        invoice = await void_invoice(session, school.client_id, invoice_id, data.reason, runtime.payments_client())
        return (await invoice_views(session, [invoice]))[0]

    return await _maybe_idempotent(session, school, idempotency_key, {"invoice": invoice_id, **data.model_dump()}, work)
