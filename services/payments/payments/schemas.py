from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictInt

from shared.clients.payments import Payment, PaymentCreate, Refund, RefundCreate


class PaymentCreateRequest(PaymentCreate):
    """The contract's PaymentCreate, strict about money: whole đồng as a JSON integer, nothing else."""

    amount_vnd: Annotated[StrictInt, Field(gt=0, description="Whole đồng (VND has no minor unit)")]


class RefundCreateRequest(RefundCreate):
    amount_vnd: Annotated[
        StrictInt | None, Field(default=None, gt=0, description="Whole đồng; omitted = everything that remains")
    ]


class PaymentOut(Payment):
    """The contract's Payment plus informative fields."""

    wallet: str
    return_url: str | None = None
    requested_by: str
    provider_reference: str | None = Field(default=None, description="The provider's payment intent id")
    updated_at: datetime


class PaymentPage(BaseModel):
    items: list[PaymentOut]
    next_cursor: str | None = None


class RefundOut(Refund):
    reason: str
    requested_by: str


class RefundList(BaseModel):
    items: list[RefundOut]


class TransitionOut(BaseModel):
    from_status: str | None
    to_status: str
    cause: str
    at: datetime


class PaymentHistory(BaseModel):
    items: list[TransitionOut]


class Receipt(BaseModel):
    payment_id: str
    status: str
    payer_sub: str
    purpose: str
    purpose_label: str
    reference: str
    description: str
    wallet: str
    amount_vnd: int
    amount_refunded_vnd: int
    amount_formatted: str = Field(description="vi-VN, e.g. 1.234.000 ₫")
    amount_refunded_formatted: str
    paid_at: datetime
    paid_at_local: str = Field(description="Asia/Ho_Chi_Minh wall time, dd/mm/yyyy HH:MM:SS")
    provider_reference: str
    issued_by: str
