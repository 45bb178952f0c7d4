from __future__ import annotations

import itertools
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.tuition.students.schemas import STUDENT_CODE

FeeKind = Literal[
    "tuition", "meals", "boarding", "uniform", "health_insurance", "club", "transport", "books", "adjustment", "other"
]
InvoiceStatus = Literal["open", "partially_paid", "paid", "overdue", "void"]
MAX_AMOUNT = 1_000_000_000  # 1 tỷ đồng per line: far above any school fee, catches typos (extra zeros)
INVOICE_CSV_COLUMNS = ["student_code", "kind", "description", "amount_vnd", "fee_item_code"]
INVOICE_CSV_REQUIRED = {"student_code"}
CODE = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$"


class FeeItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    kind: FeeKind
    grade: str = Field(min_length=1, max_length=20)
    term: str = Field(min_length=1, max_length=40, description='e.g. "2025-2026/HK1"')
    amount_vnd: int = Field(gt=0, le=MAX_AMOUNT)


class FeeItemOut(FeeItemCreate):
    id: str
    created_at: datetime


class FeeItemPage(BaseModel):
    items: list[FeeItemOut]
    next_cursor: str | None = None


class RoundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    term: str = Field(min_length=1, max_length=40)
    due_dates: list[date] = Field(
        min_length=1,
        max_length=12,
        description="One date: pay in full by then. Several (ascending): the school allows that many instalments.",
    )

    @field_validator("due_dates")
    @classmethod
    def _ascending(cls, value: list[date]) -> list[date]:
        if any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("due dates must be strictly ascending")
        return value


class RoundOut(RoundCreate):
    id: str
    created_at: datetime


class RoundPage(BaseModel):
    items: list[RoundOut]
    next_cursor: str | None = None


class InvoiceLineRow(BaseModel):
    """One line of an invoice import; lines with the same student_code form that student's invoice."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    student_code: str = Field(pattern=STUDENT_CODE)
    fee_item_code: str | None = Field(
        default=None,
        pattern=CODE,
        description="Take kind, name and amount from this fee item (round's term, student's grade)",
    )
    kind: FeeKind | None = None
    description: str | None = Field(default=None, min_length=1, max_length=200)
    amount_vnd: int | None = Field(default=None, gt=0, le=MAX_AMOUNT)

    @model_validator(mode="after")
    def _complete(self) -> InvoiceLineRow:
        if self.fee_item_code is None and (self.kind is None or self.description is None or self.amount_vnd is None):
            raise ValueError("give fee_item_code, or kind, description and amount_vnd")
        return self


class LineOut(BaseModel):
    id: str
    seq: int
    kind: FeeKind
    description: str
    amount_vnd: int
    reduction_percent: int
    reduction_vnd: int
    net_vnd: int
    exemption_id: str | None = None
    voided: bool
    void_reason: str | None = None


class InstalmentOut(BaseModel):
    seq: int
    due_date: date
    amount_vnd: int
    paid_vnd: int
    status: Literal["paid", "partially_paid", "due"]


class InvoiceOut(BaseModel):
    id: str
    number: str
    school_id: str
    student_id: str
    student_code: str
    student_name: str
    class_name: str
    round_id: str
    status: InvoiceStatus
    due_date: date
    gross_vnd: int
    reduction_vnd: int
    total_vnd: int
    paid_vnd: int
    refunded_vnd: int
    outstanding_vnd: int
    payment_pending: bool = Field(description="A payment of this invoice is in progress")
    instalments: list[InstalmentOut]
    next_instalment_vnd: int | None = Field(description="What one instalment payment would be now, if allowed")
    lines: list[LineOut]
    created_at: datetime


class InvoicePage(BaseModel):
    items: list[InvoiceOut]
    next_cursor: str | None = None


class GenerateReport(BaseModel):
    created: int
    skipped_existing: int
    skipped_no_fee_items: int
    invoice_ids: list[str]


class ExemptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    category: str = Field(description="A Decree 81/2021/NĐ-CP category (see GET /v1/tuition/exemption-categories)")
    evidence_ref: str = Field(
        min_length=3, max_length=200, description="Reference of the supporting document, e.g. the decision number"
    )
    percent: Literal[100, 70, 50] | None = Field(default=None, description="If given, must match the category")
    note: str | None = Field(default=None, max_length=300)


class ExemptionOut(BaseModel):
    id: str
    student_id: str
    category: str
    percent: int
    evidence_ref: str
    note: str | None = None
    created_at: datetime
    revoked_at: datetime | None = None
    applied_to_invoices: list[str] = Field(
        default=[], description="Unpaid invoices whose totals changed now (granted: reduced; revoked: restored)"
    )


class ExemptionPage(BaseModel):
    items: list[ExemptionOut]
    next_cursor: str | None = None


class ExemptionCategory(BaseModel):
    category: str
    percent: int
    description: str


class AdjustmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    description: str = Field(min_length=1, max_length=200)
    amount_vnd: int = Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT, description="Positive adds a charge; negative a credit")
    kind: FeeKind = "adjustment"
    reason: str = Field(min_length=3, max_length=300)

    @field_validator("amount_vnd")
    @classmethod
    def _nonzero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("an adjustment of 0 changes nothing")
        return value


class VoidRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(min_length=3, max_length=300)


class AuditEntry(BaseModel):
    at: datetime
    actor: str
    action: str
    detail: dict[str, object]
    note: str | None = None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None = None
