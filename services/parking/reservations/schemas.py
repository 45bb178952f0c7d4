from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.parking.vehicles import VehicleType, plate_problem
from shared.clients.payments import NextAction


class ReservationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lot_id: str = Field(min_length=1, max_length=64)
    vehicle_type: VehicleType
    plate_number: str = Field(min_length=1, max_length=40, examples=["43A-123.45", "43-B1 123.45"])
    start_at: datetime
    end_at: datetime
    space_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="A numbered space to book; omit to take any free one"
    )
    quote_token: str | None = Field(
        default=None, max_length=2000, description="Book at a quote's price while the quote is valid"
    )

    @field_validator("plate_number")
    @classmethod
    def _plate(cls, value: str) -> str:
        problem = plate_problem(value)
        if problem:
            raise ValueError(problem)
        return value.strip()


class ExtensionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    end_at: datetime = Field(description="The new end of the reservation")


class PlateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plate_number: str = Field(min_length=1, max_length=40)

    @field_validator("plate_number")
    @classmethod
    def _plate(cls, value: str) -> str:
        problem = plate_problem(value)
        if problem:
            raise ValueError(problem)
        return value.strip()


class LotBrief(BaseModel):
    id: str
    name: str
    address: str
    lat: float
    lon: float


class SpaceBrief(BaseModel):
    id: str
    label: str
    accessible: bool


class PaymentBrief(BaseModel):
    id: str
    kind: Literal["booking", "extension", "overstay"]
    status: str
    amount_vnd: int
    amount_refunded_vnd: int
    next_action: NextAction | None = None


ReservationStatus = Literal[
    "pending_payment", "confirmed", "checked_in", "completed", "expired", "released", "canceled"
]


class ReservationOut(BaseModel):
    id: str
    status: ReservationStatus
    lot: LotBrief
    space: SpaceBrief | None
    vehicle_type: VehicleType
    plate_number: str
    plate_normalized: str
    start_at: datetime
    end_at: datetime
    amount_vnd: int = Field(description="What the booking and its paid extensions cost")
    refunded_vnd: int
    payment: PaymentBrief | None = Field(description="The booking's payment")
    payments: list[PaymentBrief] = Field(description="Every payment of the reservation, oldest first")
    hold_expires_at: datetime | None
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    canceled_at: datetime | None
    created_at: datetime


class ReservationPage(BaseModel):
    items: list[ReservationOut]
    next_cursor: str | None = None


class ExtensionOut(BaseModel):
    id: str
    reservation_id: str
    start_at: datetime
    end_at: datetime
    amount_vnd: int
    status: Literal["pending_payment", "confirmed"]
    payment: PaymentBrief | None
    hold_expires_at: datetime | None


class CheckOutOut(BaseModel):
    reservation: ReservationOut
    overstay_minutes: int
    overstay_payment: PaymentBrief | None
