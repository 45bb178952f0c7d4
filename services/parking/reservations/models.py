from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.parking.db import Base
from shared.db import IdType, UTCDateTime, new_id, utcnow

# Reservation statuses.
PENDING, CONFIRMED, CHECKED_IN, COMPLETED = "pending_payment", "confirmed", "checked_in", "completed"
EXPIRED, RELEASED, CANCELED = "expired", "released", "canceled"
ACTIVE_RESERVATION = (PENDING, CONFIRMED, CHECKED_IN)

# Occupancy statuses: a held or booked occupancy takes its space or pool place for its window.
HELD, BOOKED, FREED = "held", "booked", "released"
TAKING = (HELD, BOOKED)


class Reservation(Base):
    __tablename__ = "reservations"
    __table_args__ = (
        Index("ix_reservations_user_sub_start_at", "user_sub", "start_at"),
        Index("ix_reservations_lot_id_plate_normalized", "lot_id", "plate_normalized"),
    )

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    lot_id: Mapped[str] = mapped_column(ForeignKey("lots.id"), index=True)
    user_sub: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(100))
    vehicle_type: Mapped[str] = mapped_column(String(20))
    plate_number: Mapped[str] = mapped_column(String(40))
    plate_normalized: Mapped[str] = mapped_column(String(20))
    space_id: Mapped[str | None] = mapped_column(ForeignKey("spaces.id"), nullable=True)
    pool_id: Mapped[str | None] = mapped_column(ForeignKey("pools.id"), nullable=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20), index=True)
    amount_vnd: Mapped[int] = mapped_column(Integer)
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    checked_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Occupancy(Base):
    """A piece of time a reservation takes in a space or a pool: the booking itself or an extension.

    On PostgreSQL an exclusion constraint forbids two taking occupancies of one space overlapping.
    """

    __tablename__ = "occupancies"
    __table_args__ = (
        Index("ix_occupancies_pool_id_start_at", "pool_id", "start_at"),
        Index("ix_occupancies_space_id_start_at", "space_id", "start_at"),
        Index("ix_occupancies_lot_id_status", "lot_id", "status"),
        Index("ix_occupancies_status_hold_expires_at", "status", "hold_expires_at"),
    )

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    reservation_id: Mapped[str] = mapped_column(ForeignKey("reservations.id"), index=True)
    lot_id: Mapped[str] = mapped_column(IdType)
    space_id: Mapped[str | None] = mapped_column(IdType, nullable=True)
    pool_id: Mapped[str | None] = mapped_column(IdType, nullable=True)
    kind: Mapped[str] = mapped_column(String(20))  # booking | extension
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Charge(Base):
    """A payment asked for a reservation (booking, extension or overstay); its id is the payment's id."""

    __tablename__ = "charges"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reservation_id: Mapped[str] = mapped_column(ForeignKey("reservations.id"), index=True)
    occupancy_id: Mapped[str | None] = mapped_column(IdType, nullable=True)
    kind: Mapped[str] = mapped_column(String(20))  # booking | extension | overstay
    amount_vnd: Mapped[int] = mapped_column(Integer)
    amount_refunded_vnd: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(30))
    next_action_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    # Set once we asked payments to cancel it (a lapsed hold), so the sweeper asks only once.
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
