from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

OrderStatus = Literal["pending", "succeeded", "failed", "expired", "canceled"]


class PayItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    invoice_id: str = Field(min_length=1, max_length=32)
    amount: Literal["full", "instalment"] = Field(
        default="full",
        description="full: everything still owed; instalment: the next instalment (if the school allows)",
    )


class PaymentOrderCreate(BaseModel):
    """Pay several invoices (of one or several children) in one payment."""

    model_config = ConfigDict(extra="forbid")

    items: list[PayItem] = Field(min_length=1, max_length=20)
    wallet: str = Field(default="sandbox", min_length=1, max_length=40)
    return_url: str | None = Field(default=None, max_length=500)

    @field_validator("items")
    @classmethod
    def _distinct(cls, items: list[PayItem]) -> list[PayItem]:
        if len({i.invoice_id for i in items}) != len(items):
            raise ValueError("each invoice at most once")
        return items


class OrderItemOut(BaseModel):
    invoice_id: str
    invoice_number: str
    student_id: str
    student_name: str
    school_id: str
    amount_vnd: int
    instalment_seq: int | None = None
    state: Literal["reserved", "applied", "released", "refunded"]


class ReceiptOut(BaseModel):
    number: str
    issued_at: datetime
    payer_sub: str
    payment_id: str
    amount_vnd: int
    items: list[OrderItemOut]


class PaymentOrderOut(BaseModel):
    id: str = Field(description="The payment order; it is the payments API reference")
    status: OrderStatus
    amount_vnd: int
    payment_id: str | None = None
    payment_url: str | None = Field(default=None, description="Open this to approve the payment in the wallet")
    refunded_vnd: int
    items: list[OrderItemOut]
    receipt_number: str | None = None
    created_at: datetime
    settled_at: datetime | None = None


class PaymentOrderPage(BaseModel):
    items: list[PaymentOrderOut]
    next_cursor: str | None = None
