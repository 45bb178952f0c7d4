from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.parking.db import Base
from shared.db import IdType, JSONType, UTCDateTime, new_id, utcnow


class Lot(Base):
    __tablename__ = "lots"
    __table_args__ = (Index("ix_lots_lat_lon", "lat", "lon"),)

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    # The operator agency: the client_id of its client-credentials token.
    operator_id: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    photo_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Local (Asia/Ho_Chi_Minh) opening hours; both None means open around the clock.
    opens_at: Mapped[time | None] = mapped_column(Time, nullable=True)
    closes_at: Mapped[time | None] = mapped_column(Time, nullable=True)
    # Cancel at least this many minutes before the start for a full refund; after that, none.
    cancellation_cutoff_minutes: Mapped[int] = mapped_column(Integer, default=0)
    overstay_grace_minutes: Mapped[int] = mapped_column(Integer, default=10)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Space(Base):
    """A numbered space (cars, larger vehicles): a user may pick one."""

    __tablename__ = "spaces"
    __table_args__ = (UniqueConstraint("lot_id", "label"),)

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    lot_id: Mapped[str] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(30))
    vehicle_type: Mapped[str] = mapped_column(String(20))
    accessible: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Pool(Base):
    """Counted, not numbered, places (motorbikes, bicycles): one pool per lot and vehicle type."""

    __tablename__ = "pools"
    __table_args__ = (UniqueConstraint("lot_id", "vehicle_type"),)

    id: Mapped[str] = mapped_column(IdType, primary_key=True, default=new_id)
    lot_id: Mapped[str] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"), index=True)
    vehicle_type: Mapped[str] = mapped_column(String(20))
    capacity: Mapped[int] = mapped_column(Integer)
    accessible_places: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Rate(Base):
    __tablename__ = "rates"

    lot_id: Mapped[str] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"), primary_key=True)
    vehicle_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    mode: Mapped[str] = mapped_column(String(20))
    day_price_vnd: Mapped[int | None] = mapped_column(Integer, nullable=True)
    night_price_vnd: Mapped[int | None] = mapped_column(Integer, nullable=True)
    hourly_tiers: Mapped[list[dict[str, int]] | None] = mapped_column(JSONType, nullable=True)
    daily_cap_vnd: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class InventoryVersion(Base):
    """One row whose token triggers change on every write to lots, spaces, pools or rates (migration
    parking_0004): search's cached copy of the inventory is current while the token is unchanged."""

    __tablename__ = "inventory_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    token: Mapped[str] = mapped_column(String(32))
