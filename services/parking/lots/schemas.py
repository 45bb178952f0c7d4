from __future__ import annotations

from datetime import datetime, time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.parking.vehicles import VehicleType

Url = Field(default=None, max_length=500, pattern=r"^https?://\S+$")


class OpeningHours(BaseModel):
    @model_validator(mode="after")
    def _both_or_neither(self) -> Any:
        opens, closes = getattr(self, "opens_at", None), getattr(self, "closes_at", None)
        if (opens is None) != (closes is None):
            raise ValueError("give both opens_at and closes_at, or neither for a lot open around the clock")
        if opens is not None and opens == closes:
            raise ValueError("opens_at and closes_at must differ (leave both empty for 24 hours)")
        return self


class LotCreate(OpeningHours):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    address: str = Field(min_length=1, max_length=300)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    photo_url: str | None = Url
    opens_at: time | None = Field(default=None, description="Local time (Asia/Ho_Chi_Minh)")
    closes_at: time | None = Field(default=None, description="Local time; before opens_at means overnight")
    cancellation_cutoff_minutes: int = Field(default=0, ge=0, le=10080)
    overstay_grace_minutes: int = Field(default=10, ge=0, le=240)


class LotUpdate(OpeningHours):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    address: str | None = Field(default=None, min_length=1, max_length=300)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    photo_url: str | None = Url
    opens_at: time | None = None
    closes_at: time | None = None
    cancellation_cutoff_minutes: int | None = Field(default=None, ge=0, le=10080)
    overstay_grace_minutes: int | None = Field(default=None, ge=0, le=240)


class SpaceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=30)
    vehicle_type: VehicleType = VehicleType.car
    accessible: bool = False


class SpacesCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spaces: list[SpaceCreate] = Field(min_length=1, max_length=1000)


class SpaceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    label: str
    vehicle_type: VehicleType
    accessible: bool


class PoolCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vehicle_type: VehicleType
    capacity: int = Field(ge=0, le=100_000)
    accessible_places: int = Field(default=0, ge=0, le=100_000)


class PoolUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    capacity: int = Field(ge=0, le=100_000)


class PoolOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    vehicle_type: VehicleType
    capacity: int
    accessible_places: int


class HourlyTier(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_hour: int = Field(ge=0, le=720, description="The tier applies from this hour of the stay (0 = first)")
    price_per_hour_vnd: int = Field(ge=0, le=10_000_000)


class RateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["per_visit", "hourly"]
    day_price_vnd: int | None = Field(default=None, ge=0, le=10_000_000, description="Per visit, 06:00-22:00")
    night_price_vnd: int | None = Field(default=None, ge=0, le=10_000_000, description="Per visit, 22:00-06:00")
    hourly_tiers: list[HourlyTier] | None = Field(default=None, min_length=1, max_length=24)
    daily_cap_vnd: int | None = Field(default=None, ge=0, le=100_000_000)

    @model_validator(mode="after")
    def _complete(self) -> RateIn:
        if self.mode == "per_visit":
            if self.day_price_vnd is None or self.night_price_vnd is None:
                raise ValueError("a per-visit rate needs day_price_vnd and night_price_vnd")
        else:
            if not self.hourly_tiers:
                raise ValueError("an hourly rate needs hourly_tiers")
            if min(t.from_hour for t in self.hourly_tiers) != 0:
                raise ValueError("the first hourly tier starts at from_hour 0")
            if len({t.from_hour for t in self.hourly_tiers}) != len(self.hourly_tiers):
                raise ValueError("each hourly tier needs its own from_hour")
        return self


class RateOut(RateIn):
    model_config = ConfigDict(from_attributes=True)

    vehicle_type: VehicleType


class LotOut(BaseModel):
    id: str
    name: str
    address: str
    lat: float
    lon: float
    photo_url: str | None
    opens_at: time | None
    closes_at: time | None
    open_24h: bool
    cancellation_cutoff_minutes: int
    overstay_grace_minutes: int

    @classmethod
    def of(cls, lot: Any) -> LotOut:
        """From a lot (the ORM row, or any row with its columns: search's inventory copy)."""
        return cls(
            id=lot.id,
            name=lot.name,
            address=lot.address,
            lat=lot.lat,
            lon=lot.lon,
            photo_url=lot.photo_url,
            opens_at=lot.opens_at,
            closes_at=lot.closes_at,
            open_24h=lot.opens_at is None,
            cancellation_cutoff_minutes=lot.cancellation_cutoff_minutes,
            overstay_grace_minutes=lot.overstay_grace_minutes,
        )


class OperatorLotOut(LotOut):
    operator_id: str
    spaces: list[SpaceOut]
    pools: list[PoolOut]
    rates: list[RateOut]


class OperatorLotList(BaseModel):
    items: list[OperatorLotOut]
    next_cursor: str | None = None


class Quote(BaseModel):
    amount_vnd: int
    currency: Literal["VND"] = "VND"
    start_at: datetime
    end_at: datetime
    valid_until: datetime = Field(description="Book with quote_token before this to pay this price")
    quote_token: str
    lines: list[dict[str, Any]]


class FreeSpace(BaseModel):
    id: str
    label: str
    accessible: bool


class Availability(BaseModel):
    lot_id: str
    vehicle_type: VehicleType
    start_at: datetime
    end_at: datetime
    kind: Literal["spaces", "pool", "none"] = Field(description="Numbered spaces, a counted pool, or neither")
    total: int
    free: int
    free_spaces: list[FreeSpace] = Field(default_factory=list, description="Numbered spaces free for the window")
    quote: Quote | None = None


class LotSearchItem(LotOut):
    distance_m: int
    vehicle_type: VehicleType
    kind: Literal["spaces", "pool"]
    free: int
    free_accessible: int
    quote: Quote


class LotSearchQuery(BaseModel):
    """GET /v1/parking/lots: where, what and when."""

    model_config = ConfigDict(extra="ignore")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    vehicle_type: VehicleType
    start_at: datetime
    end_at: datetime
    radius_m: int = Field(default=1000, ge=1, le=20_000)
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=20, ge=1, le=50)


class LotSearchPage(BaseModel):
    items: list[LotSearchItem]
    next_cursor: str | None = None
