"""Fee items, collection rounds, invoices, exemptions, adjustments, voids and refunds."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.tuition.billing import money
from services.tuition.billing.models import (
    OUTSTANDING_STATUSES,
    CollectionRound,
    Exemption,
    FeeItem,
    Invoice,
    InvoiceAudit,
    InvoiceLine,
    InvoiceRefund,
)
from services.tuition.billing.schemas import (
    AdjustmentCreate,
    ExemptionCreate,
    ExemptionOut,
    FeeItemCreate,
    FeeItemOut,
    GenerateReport,
    InstalmentOut,
    InvoiceLineRow,
    InvoiceOut,
    InvoicePage,
    LineOut,
    RoundCreate,
    RoundOut,
)
from services.tuition.common import MAX_PAGE, decode_cursor, encode_cursor, today_vn
from services.tuition.importing import ImportMode, ImportReport, RowResult, reject, row_errors
from services.tuition.paying.models import PaymentAllocation, PaymentOrder
from services.tuition.students.models import Student
from services.tuition.students.service import get_school_student
from shared.clients.payments import PaymentsClient, RefundCreate
from shared.db import new_id, utcnow
from shared.errors import Conflict, FieldError, NotFound, field_error

LineSpec = tuple[str | None, str, str, int]  # fee_item_id, kind, description, amount


# ---- fee items and rounds ------------------------------------------------------------------------


async def create_fee_item(session: AsyncSession, school_id: str, data: FeeItemCreate) -> FeeItemOut:
    item = FeeItem(school_id=school_id, **data.model_dump())
    session.add(item)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "This school already has a fee item with this code for the grade and term", code="fee_item_exists"
        ) from exc
    return FeeItemOut(id=item.id, created_at=item.created_at, **data.model_dump())


async def list_fee_items(
    session: AsyncSession, school_id: str, term: str | None, grade: str | None
) -> list[FeeItemOut]:
    query = select(FeeItem).where(FeeItem.school_id == school_id)
    if term:
        query = query.where(FeeItem.term == term)
    if grade:
        query = query.where(FeeItem.grade == grade)
    rows = (await session.execute(query.order_by(FeeItem.term, FeeItem.grade, FeeItem.code).limit(1000))).scalars()
    return [
        FeeItemOut(
            id=i.id,
            code=i.code,
            name=i.name,
            kind=i.kind,
            grade=i.grade,
            term=i.term,  # type: ignore[arg-type]
            amount_vnd=i.amount_vnd,
            created_at=i.created_at,
        )
        for i in rows
    ]


def round_view(r: CollectionRound) -> RoundOut:
    return RoundOut(
        id=r.id,
        code=r.code,
        name=r.name,
        term=r.term,
        created_at=r.created_at,
        due_dates=[date.fromisoformat(d) for d in r.due_dates],
    )


async def create_round(session: AsyncSession, school_id: str, data: RoundCreate) -> CollectionRound:
    r = CollectionRound(
        school_id=school_id,
        code=data.code,
        name=data.name,
        term=data.term,
        due_dates=[d.isoformat() for d in data.due_dates],
    )
    session.add(r)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict("This school already has a round with this code", code="round_exists") from exc
    return r


async def get_round(session: AsyncSession, school_id: str, round_id: str) -> CollectionRound:
    r = await session.get(CollectionRound, round_id)
    if r is None or r.school_id != school_id:
        raise NotFound("No such collection round at this school", code="round_not_found")
    return r


async def list_rounds(session: AsyncSession, school_id: str) -> list[CollectionRound]:
    rows = await session.execute(
        select(CollectionRound)
        .where(CollectionRound.school_id == school_id)
        .order_by(CollectionRound.created_at.desc())
        .limit(500)
    )
    return list(rows.scalars().all())


# ---- invoices --------------------------------------------------------------------------------------


def due_dates_of(invoice: Invoice) -> list[date]:
    return [date.fromisoformat(d) for d in invoice.due_dates]


def recompute(invoice: Invoice, lines: Sequence[InvoiceLine], today: date) -> None:
    """Totals and status from the lines (voided lines count for nothing)."""
    live = [ln for ln in lines if not ln.voided]
    invoice.gross_vnd = sum(ln.amount_vnd for ln in live)
    invoice.reduction_vnd = sum(ln.reduction_vnd for ln in live)
    invoice.total_vnd = max(0, sum(ln.net_vnd for ln in live))
    invoice.status = money.invoice_status(
        voided=invoice.status == "void",
        total_vnd=invoice.total_vnd,
        paid_vnd=invoice.paid_vnd,
        due_dates=due_dates_of(invoice),
        today=today,
    )
    invoice.updated_at = utcnow()


def apply_exemption(line: InvoiceLine, exemption: Exemption | None) -> None:
    if exemption is not None and line.kind in money.EXEMPTIBLE_KINDS and line.amount_vnd > 0 and not line.voided:
        line.exemption_id, line.reduction_percent = exemption.id, exemption.percent
        line.reduction_vnd = money.reduction(line.amount_vnd, exemption.percent)
    else:
        line.exemption_id, line.reduction_percent, line.reduction_vnd = None, 0, 0
    line.net_vnd = line.amount_vnd - line.reduction_vnd


async def best_exemption(session: AsyncSession, student_id: str) -> Exemption | None:
    """Decree 81 reductions do not add up: the highest percentage the student qualifies for applies."""
    rows = await session.execute(
        select(Exemption)
        .where(Exemption.student_id == student_id, Exemption.revoked_at.is_(None))
        .order_by(Exemption.percent.desc(), Exemption.created_at)
        .limit(1)
    )
    return rows.scalar_one_or_none()


async def audit(
    session: AsyncSession,
    invoice_id: str,
    actor: str,
    action: str,
    detail: dict[str, Any] | None = None,
    note: str | None = None,
) -> None:
    session.add(InvoiceAudit(invoice_id=invoice_id, actor=actor, action=action, detail=detail or {}, note=note))


async def best_exemptions(session: AsyncSession, student_ids: list[str]) -> dict[str, Exemption]:
    """best_exemption for many students in one query."""
    best: dict[str, Exemption] = {}
    for chunk in (student_ids[i : i + 500] for i in range(0, len(student_ids), 500)):
        rows = await session.execute(
            select(Exemption)
            .where(Exemption.student_id.in_(chunk), Exemption.revoked_at.is_(None))
            .order_by(Exemption.percent.desc(), Exemption.created_at)
        )
        for e in rows.scalars():
            best.setdefault(e.student_id, e)
    return best


class InvoiceBatch:
    """Invoices built in memory and inserted together: invoices first, then their lines and audit rows
    (two flushes for a whole round instead of one per invoice)."""

    def __init__(self, school_id: str, round_: CollectionRound, actor: str, exemptions: dict[str, Exemption]) -> None:
        self.school_id, self.round_, self.actor, self.exemptions = school_id, round_, actor, exemptions
        self.invoices: list[Invoice] = []
        self.children: list[InvoiceLine | InvoiceAudit] = []
        self.today = today_vn(utcnow())

    def add(self, student: Student, specs: list[LineSpec]) -> Invoice:
        dates = [date.fromisoformat(d) for d in self.round_.due_dates]
        invoice = Invoice(
            id=new_id(),
            number="HP-" + new_id()[:12].upper(),
            school_id=self.school_id,
            student_id=student.id,
            round_id=self.round_.id,
            status="open",
            due_dates=self.round_.due_dates,
            due_date=dates[-1],
            paid_vnd=0,
            reserved_vnd=0,
            refunded_vnd=0,
            version=1,
        )
        exemption = self.exemptions.get(student.id)
        lines = []
        for seq, (fee_item_id, kind, description, amount) in enumerate(specs, start=1):
            line = InvoiceLine(
                id=new_id(),
                invoice_id=invoice.id,
                seq=seq,
                fee_item_id=fee_item_id,
                kind=kind,
                description=description,
                amount_vnd=amount,
                voided=False,
            )
            apply_exemption(line, exemption)
            lines.append(line)
        recompute(invoice, lines, self.today)
        self.invoices.append(invoice)
        self.children.extend(lines)
        self.children.append(
            InvoiceAudit(
                id=new_id(),
                invoice_id=invoice.id,
                actor=self.actor,
                action="created",
                at=utcnow(),
                detail={
                    "total_vnd": invoice.total_vnd,
                    "reduction_vnd": invoice.reduction_vnd,
                    "exemption_id": exemption.id if exemption else None,
                },
            )
        )
        return invoice

    async def save(self, session: AsyncSession) -> None:
        session.add_all(self.invoices)
        await _flush(session)
        session.add_all(self.children)
        await _flush(session)


async def _fee_items_by_grade(session: AsyncSession, school_id: str, term: str) -> dict[str, list[FeeItem]]:
    rows = await session.execute(
        select(FeeItem).where(FeeItem.school_id == school_id, FeeItem.term == term).order_by(FeeItem.code)
    )
    grouped: dict[str, list[FeeItem]] = defaultdict(list)
    for item in rows.scalars():
        grouped[item.grade].append(item)
    return grouped


async def generate_invoices(session: AsyncSession, school_id: str, round_id: str) -> GenerateReport:
    """One invoice per active student of the school from the fee items of its grade and the round's term."""
    round_ = await get_round(session, school_id, round_id)
    items = await _fee_items_by_grade(session, school_id, round_.term)
    students = (
        (
            await session.execute(
                select(Student)
                .where(Student.school_id == school_id, Student.status == "active")
                .order_by(Student.student_code)
            )
        )
        .scalars()
        .all()
    )
    invoiced = set(
        (
            await session.execute(
                select(Invoice.student_id).where(Invoice.round_id == round_.id, Invoice.status != "void")
            )
        )
        .scalars()
        .all()
    )
    report = GenerateReport(created=0, skipped_existing=0, skipped_no_fee_items=0, invoice_ids=[])
    batch = InvoiceBatch(school_id, round_, school_id, await best_exemptions(session, [s.id for s in students]))
    for student in students:
        if student.id in invoiced:
            report.skipped_existing += 1
            continue
        grade_items = items.get(student.grade, [])
        if not grade_items:
            report.skipped_no_fee_items += 1
            continue
        invoice = batch.add(student, [(i.id, i.kind, i.name, i.amount_vnd) for i in grade_items])
        report.created += 1
        report.invoice_ids.append(invoice.id)
    await batch.save(session)
    return report


async def import_invoices(
    session: AsyncSession, school_id: str, round_id: str, raw_rows: list[dict[str, Any]], mode: ImportMode
) -> ImportReport:
    """Rows are invoice lines; the rows of one student_code form that student's invoice in the round,
    which is created whole or not at all."""
    round_ = await get_round(session, school_id, round_id)
    items = await _fee_items_by_grade(session, school_id, round_.term)
    results: list[RowResult] = []
    parsed: list[tuple[RowResult, InvoiceLineRow]] = []
    for index, raw in enumerate(raw_rows, start=1):
        key = str(raw["student_code"]) if raw.get("student_code") is not None else None
        try:
            row = InvoiceLineRow.model_validate(raw)
        except ValidationError as exc:
            results.append(RowResult(row=index, key=key, outcome="error", errors=row_errors(exc)))
            continue
        result = RowResult(row=index, key=row.student_code, outcome="not_applied")
        results.append(result)
        parsed.append((result, row))
    codes = {r.student_code for _, r in parsed}
    students = (
        {
            s.student_code: s
            for s in (
                await session.execute(
                    select(Student).where(Student.student_code.in_(codes), Student.school_id == school_id)
                )
            ).scalars()
        }
        if codes
        else {}
    )
    invoiced = set(
        (
            await session.execute(
                select(Invoice.student_id).where(Invoice.round_id == round_.id, Invoice.status != "void")
            )
        )
        .scalars()
        .all()
    )
    groups: dict[str, list[tuple[RowResult, LineSpec]]] = defaultdict(list)
    for result, row in parsed:
        student = students.get(row.student_code)
        if student is None:
            result.outcome = "error"
            result.errors = [
                FieldError(field="student_code", type="not_found", message="No such student at this school")
            ]
            continue
        if student.id in invoiced:
            result.outcome = "error"
            result.errors = [
                FieldError(
                    field="student_code",
                    type="exists",
                    message="This student already has an invoice in this round; adjust it instead",
                )
            ]
            continue
        if row.fee_item_code is not None:
            item = next((i for i in items.get(student.grade, []) if i.code == row.fee_item_code), None)
            if item is None:
                result.outcome = "error"
                message = f"No fee item {row.fee_item_code} for grade {student.grade} in {round_.term}"
                result.errors = [FieldError(field="fee_item_code", type="not_found", message=message)]
                continue
            spec: LineSpec = (
                item.id,
                row.kind or item.kind,
                row.description or item.name,
                row.amount_vnd or item.amount_vnd,
            )
        else:
            assert row.kind and row.description and row.amount_vnd
            spec = (None, row.kind, row.description, row.amount_vnd)
        groups[row.student_code].append((result, spec))
    # An invoice is whole or absent: one bad line holds back its student's other lines too.
    failed_codes = {r.key for r in results if r.outcome == "error" and r.key}
    for code in failed_codes & set(groups):
        for result, _ in groups.pop(code):
            result.outcome = "error"
            result.errors = [
                FieldError(
                    field="student_code",
                    type="invoice_incomplete",
                    message="Another line of this student's invoice is invalid",
                )
            ]
    report = ImportReport(
        mode=mode,
        applied=False,
        total=len(results),
        rows=results,
        failed=sum(1 for r in results if r.outcome == "error"),
    )
    if report.failed and mode == "all_or_nothing":
        raise reject(report)
    batch = InvoiceBatch(
        school_id, round_, school_id, await best_exemptions(session, [students[code].id for code in groups])
    )
    for code, entries in groups.items():
        invoice = batch.add(students[code], [spec for _, spec in entries])
        for result, _ in entries:
            result.outcome, result.id = "created", invoice.id
    await batch.save(session)
    report.created = sum(1 for r in results if r.outcome == "created")
    report.applied = report.created > 0
    return report


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "An invoice for one of these students was created concurrently; retry", code="invoice_conflict"
        ) from exc


# ---- reading -------------------------------------------------------------------------------------


async def invoice_views(session: AsyncSession, invoices: Sequence[Invoice]) -> list[InvoiceOut]:
    if not invoices:
        return []
    ids = [i.id for i in invoices]
    lines: dict[str, list[InvoiceLine]] = defaultdict(list)
    for line in (
        await session.execute(select(InvoiceLine).where(InvoiceLine.invoice_id.in_(ids)).order_by(InvoiceLine.seq))
    ).scalars():
        lines[line.invoice_id].append(line)
    students = {
        s.id: s
        for s in (
            await session.execute(select(Student).where(Student.id.in_({i.student_id for i in invoices})))
        ).scalars()
    }
    views = []
    for inv in invoices:
        student = students[inv.student_id]
        dates = due_dates_of(inv)
        plan = money.instalment_plan(inv.total_vnd, inv.paid_vnd, dates)
        nxt = money.next_instalment(inv.total_vnd, inv.paid_vnd, dates)
        outstanding = 0 if inv.status == "void" else max(0, inv.total_vnd - inv.paid_vnd)
        views.append(
            InvoiceOut(
                id=inv.id,
                number=inv.number,
                school_id=inv.school_id,
                student_id=inv.student_id,
                student_code=student.student_code,
                student_name=student.full_name,
                class_name=student.class_name,
                round_id=inv.round_id,
                status=inv.status,
                due_date=inv.due_date,
                gross_vnd=inv.gross_vnd,  # type: ignore[arg-type]
                reduction_vnd=inv.reduction_vnd,
                total_vnd=inv.total_vnd,
                paid_vnd=inv.paid_vnd,
                refunded_vnd=inv.refunded_vnd,
                outstanding_vnd=outstanding,
                payment_pending=inv.reserved_vnd > 0,
                instalments=[
                    InstalmentOut(
                        seq=i.seq,
                        due_date=i.due_date,
                        amount_vnd=i.amount_vnd,
                        paid_vnd=i.paid_vnd,
                        status="paid" if i.remaining_vnd == 0 else ("partially_paid" if i.paid_vnd else "due"),
                    )
                    for i in plan
                ],
                next_instalment_vnd=nxt.remaining_vnd if nxt is not None and len(dates) > 1 and outstanding else None,
                lines=[
                    LineOut(
                        id=ln.id,
                        seq=ln.seq,
                        kind=ln.kind,
                        description=ln.description,
                        amount_vnd=ln.amount_vnd,  # type: ignore[arg-type]
                        reduction_percent=ln.reduction_percent,
                        reduction_vnd=ln.reduction_vnd,
                        net_vnd=ln.net_vnd,
                        exemption_id=ln.exemption_id,
                        voided=ln.voided,
                        void_reason=ln.void_reason,
                    )
                    for ln in lines[inv.id]
                ],
                created_at=inv.created_at,
            )
        )
    return views


def status_filter(status: str | None) -> list[str] | None:
    """``open`` means everything still to pay (open, partially paid, overdue), as the overview wants."""
    if status is None:
        return None
    if status == "open":
        return list(OUTSTANDING_STATUSES)
    return [status]


async def page_invoices(
    session: AsyncSession, query: Any, *, status: str | None, cursor: str | None, limit: int
) -> InvoicePage:
    statuses = status_filter(status)
    if statuses:
        query = query.where(Invoice.status.in_(statuses))
    after = decode_cursor(cursor, 2)
    if after:
        try:
            after_date = date.fromisoformat(str(after[0]))
        except ValueError as exc:
            raise field_error("query.cursor", "invalid cursor") from exc
        query = query.where(
            (Invoice.due_date > after_date) | ((Invoice.due_date == after_date) & (Invoice.id > after[1]))
        )
    limit = min(limit, MAX_PAGE)
    rows = (await session.execute(query.order_by(Invoice.due_date, Invoice.id).limit(limit + 1))).scalars().all()
    page = list(rows[:limit])
    return InvoicePage(
        items=await invoice_views(session, page),
        next_cursor=encode_cursor(page[-1].due_date, page[-1].id) if len(rows) > limit else None,
    )


async def get_school_invoice(session: AsyncSession, school_id: str, invoice_id: str, *, lock: bool = False) -> Invoice:
    query = select(Invoice).where(Invoice.id == invoice_id)
    if lock:
        query = query.with_for_update()
    invoice = (await session.execute(query)).scalar_one_or_none()
    if invoice is None or invoice.school_id != school_id:
        raise NotFound("No such invoice at this school", code="invoice_not_found")
    return invoice


async def invoice_lines(session: AsyncSession, invoice_id: str) -> list[InvoiceLine]:
    rows = await session.execute(
        select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id).order_by(InvoiceLine.seq)
    )
    return list(rows.scalars().all())


# ---- exemptions ----------------------------------------------------------------------------------


def exemption_view(e: Exemption, applied: list[str] | None = None) -> ExemptionOut:
    return ExemptionOut(
        id=e.id,
        student_id=e.student_id,
        category=e.category,
        percent=e.percent,
        evidence_ref=e.evidence_ref,
        note=e.note,
        created_at=e.created_at,
        revoked_at=e.revoked_at,
        applied_to_invoices=applied or [],
    )


async def grant_exemption(
    session: AsyncSession, school_id: str, student_id: str, data: ExemptionCreate
) -> ExemptionOut:
    student = await get_school_student(session, school_id, student_id)
    if data.category not in money.DECREE_81_CATEGORIES:
        raise field_error("body.category", "Not a Decree 81/2021/NĐ-CP category", "enum")
    percent = money.DECREE_81_CATEGORIES[data.category][0]
    if data.percent is not None and data.percent != percent:
        raise field_error("body.percent", f"The category {data.category} gives {percent}%", "mismatch")
    exemption = Exemption(
        school_id=school_id,
        student_id=student.id,
        category=data.category,
        percent=percent,
        evidence_ref=data.evidence_ref,
        note=data.note,
        created_at=utcnow(),
    )
    session.add(exemption)
    await session.flush()
    applied = await _reapply_exemptions(session, school_id, student.id, "exemption_applied", exemption)
    return exemption_view(exemption, applied)


async def revoke_exemption(session: AsyncSession, school_id: str, student_id: str, exemption_id: str) -> ExemptionOut:
    await get_school_student(session, school_id, student_id)
    exemption = await session.get(Exemption, exemption_id)
    if exemption is None or exemption.student_id != student_id:
        raise NotFound("No such exemption for this student", code="exemption_not_found")
    if exemption.revoked_at is not None:
        raise Conflict("This exemption is already revoked", code="exemption_revoked")
    exemption.revoked_at = utcnow()
    await session.flush()
    applied = await _reapply_exemptions(session, school_id, student_id, "exemption_revoked", exemption)
    return exemption_view(exemption, applied)


async def _reapply_exemptions(
    session: AsyncSession, school_id: str, student_id: str, action: str, changed: Exemption
) -> list[str]:
    """Invoices nobody has paid or started paying follow the student's exemptions at once; paid ones
    are left as they are (a refund is then the school's decision, made with a line void or credit)."""
    best = await best_exemption(session, student_id)
    applied: list[str] = []
    unpaid = (
        (
            await session.execute(
                select(Invoice)
                .where(
                    Invoice.student_id == student_id,
                    Invoice.status.in_(OUTSTANDING_STATUSES),
                    Invoice.paid_vnd == 0,
                    Invoice.reserved_vnd == 0,
                )
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    today = today_vn(utcnow())
    for invoice in unpaid:
        lines = await invoice_lines(session, invoice.id)
        before = invoice.total_vnd
        for line in lines:
            apply_exemption(line, best)
        recompute(invoice, lines, today)
        if invoice.total_vnd != before:
            invoice.version += 1
            applied.append(invoice.id)
            await audit(
                session,
                invoice.id,
                school_id,
                action,
                {
                    "exemption_id": changed.id,
                    "category": changed.category,
                    "percent": changed.percent,
                    "evidence_ref": changed.evidence_ref,
                    "now_applied": best.id if best else None,
                    "total_before": before,
                    "total_after": invoice.total_vnd,
                },
            )
    await session.flush()
    return applied


async def list_exemptions(session: AsyncSession, school_id: str, student_id: str) -> list[ExemptionOut]:
    await get_school_student(session, school_id, student_id)
    rows = await session.execute(
        select(Exemption).where(Exemption.student_id == student_id).order_by(Exemption.created_at)
    )
    return [exemption_view(e) for e in rows.scalars()]


# ---- adjustments, voids, refunds -------------------------------------------------------------------


def _ensure_changeable(invoice: Invoice) -> None:
    if invoice.status == "void":
        raise Conflict("This invoice is void", code="invoice_void")
    if invoice.reserved_vnd > 0:
        raise Conflict(
            "A payment of this invoice is in progress; try again when it has finished", code="invoice_payment_pending"
        )


async def adjust(
    session: AsyncSession, school_id: str, invoice_id: str, data: AdjustmentCreate, payments: PaymentsClient
) -> Invoice:
    invoice = await get_school_invoice(session, school_id, invoice_id, lock=True)
    _ensure_changeable(invoice)
    lines = await invoice_lines(session, invoice.id)
    line = InvoiceLine(
        invoice_id=invoice.id,
        seq=len(lines) + 1,
        kind=data.kind,
        description=data.description,
        amount_vnd=data.amount_vnd,
        voided=False,
    )
    apply_exemption(line, await best_exemption(session, invoice.student_id))
    lines.append(line)
    session.add(line)
    before = invoice.total_vnd
    recompute(invoice, lines, today_vn(utcnow()))
    invoice.version += 1
    await audit(
        session,
        invoice.id,
        school_id,
        "adjusted",
        {"line_seq": line.seq, "amount_vnd": data.amount_vnd, "total_before": before, "total_after": invoice.total_vnd},
        data.reason,
    )
    await refund_excess(session, invoice, payments, school_id, data.reason)
    await session.flush()
    return invoice


async def void_line(
    session: AsyncSession, school_id: str, invoice_id: str, line_id: str, reason: str, payments: PaymentsClient
) -> Invoice:
    invoice = await get_school_invoice(session, school_id, invoice_id, lock=True)
    _ensure_changeable(invoice)
    lines = await invoice_lines(session, invoice.id)
    line = next((ln for ln in lines if ln.id == line_id), None)
    if line is None:
        raise NotFound("No such line on this invoice", code="line_not_found")
    if line.voided:
        raise Conflict("This line is already void", code="line_void")
    line.voided, line.void_reason = True, reason
    before = invoice.total_vnd
    recompute(invoice, lines, today_vn(utcnow()))
    invoice.version += 1
    await audit(
        session,
        invoice.id,
        school_id,
        "line_voided",
        {"line_seq": line.seq, "net_vnd": line.net_vnd, "total_before": before, "total_after": invoice.total_vnd},
        reason,
    )
    await refund_excess(session, invoice, payments, school_id, reason)
    await session.flush()
    return invoice


async def void_invoice(
    session: AsyncSession, school_id: str, invoice_id: str, reason: str, payments: PaymentsClient
) -> Invoice:
    invoice = await get_school_invoice(session, school_id, invoice_id, lock=True)
    _ensure_changeable(invoice)
    invoice.status, invoice.void_reason = "void", reason
    invoice.version += 1
    await audit(
        session, invoice.id, school_id, "voided", {"total_vnd": invoice.total_vnd, "paid_vnd": invoice.paid_vnd}, reason
    )
    await refund_excess(session, invoice, payments, school_id, reason)
    invoice.updated_at = utcnow()
    await session.flush()
    return invoice


async def refund_excess(
    session: AsyncSession, invoice: Invoice, payments: PaymentsClient, actor: str, reason: str
) -> None:
    """Give back what was paid beyond what is now owed, from the newest payments first.

    The refund's Idempotency-Key is derived from the invoice version and payment, so a retried request
    (after a rollback) asks payments for the same refund again instead of a second one.
    """
    await session.flush()  # new and voided lines are visible to the recompute below
    owed = 0 if invoice.status == "void" else invoice.total_vnd
    excess = invoice.paid_vnd - owed
    if excess <= 0:
        return
    paid_by = (
        await session.execute(
            select(PaymentAllocation, PaymentOrder)
            .join(PaymentOrder, PaymentOrder.id == PaymentAllocation.order_id)
            .where(PaymentAllocation.invoice_id == invoice.id, PaymentAllocation.state == "applied")
            .order_by(PaymentOrder.settled_at.desc())
        )
    ).all()
    refunded = dict(
        (
            await session.execute(
                select(InvoiceRefund.order_id, func.sum(InvoiceRefund.amount_vnd))
                .where(InvoiceRefund.invoice_id == invoice.id)
                .group_by(InvoiceRefund.order_id)
            )
        ).all()
    )
    for allocation, order in paid_by:
        if excess <= 0:
            break
        amount = min(excess, allocation.amount_vnd - int(refunded.get(order.id) or 0))
        if amount <= 0 or order.payment_id is None:
            continue
        result = await payments.refund(
            order.payment_id,
            RefundCreate(amount_vnd=amount, reason=reason[:300]),
            idempotency_key=f"tuition-refund-{invoice.id}-v{invoice.version}-{order.id}",
        )
        session.add(
            InvoiceRefund(
                invoice_id=invoice.id,
                order_id=order.id,
                payment_id=order.payment_id,
                amount_vnd=amount,
                payments_refund_id=result.id,
                reason=reason,
            )
        )
        invoice.paid_vnd -= amount
        invoice.refunded_vnd += amount
        excess -= amount
        await audit(
            session,
            invoice.id,
            actor,
            "refunded",
            {"amount_vnd": amount, "payment_id": order.payment_id, "refund_id": result.id},
            reason,
        )
    if invoice.status != "void":
        recompute(invoice, await invoice_lines(session, invoice.id), today_vn(utcnow()))
