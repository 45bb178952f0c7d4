"""Rules for a requested time window (search, availability, reservations, extensions)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Protocol

from services.parking.lots.models import Lot
from services.parking.pricing import LOCAL
from services.parking.settings import ParkingSettings
from shared.errors import field_error


def check_window(
    start: datetime,
    end: datetime,
    settings: ParkingSettings,
    now: datetime,
    *,
    where: str = "body",
    lot: Lot | None = None,
    check_start: bool = True,
) -> None:
    """Raise a 422 naming the field when the window is not bookable."""
    if start.tzinfo is None:
        raise field_error(f"{where}.start_at", "give a time zone (e.g. 2026-01-01T08:00:00+07:00)")
    if end.tzinfo is None:
        raise field_error(f"{where}.end_at", "give a time zone (e.g. 2026-01-01T10:00:00+07:00)")
    for name, value in (("start_at", start), ("end_at", end)):
        try:
            value.astimezone(UTC)
        except (OverflowError, ValueError):
            raise field_error(f"{where}.{name}", "the time is out of range") from None
    if end <= start:
        raise field_error(f"{where}.end_at", "end_at must be after start_at")
    if check_start and start < now - timedelta(seconds=settings.start_grace_s):
        raise field_error(f"{where}.start_at", "the window starts in the past")
    if start > now + timedelta(days=settings.max_advance_days):
        raise field_error(f"{where}.start_at", f"book at most {settings.max_advance_days} days ahead")
    minutes = (end - start).total_seconds() / 60
    if check_start and minutes < settings.min_duration_minutes:
        raise field_error(f"{where}.end_at", f"the shortest stay is {settings.min_duration_minutes} minutes")
    if minutes > settings.max_duration_minutes:
        raise field_error(f"{where}.end_at", f"the longest stay is {settings.max_duration_minutes} minutes")
    if lot is not None and not within_opening_hours(lot, start, end):
        raise field_error(
            f"{where}.end_at" if within_opening_hours(lot, start, start) else f"{where}.start_at",
            "the window is outside the lot's opening hours",
        )


class HasOpeningHours(Protocol):
    opens_at: time | None
    closes_at: time | None


def within_opening_hours(lot: HasOpeningHours, start: datetime, end: datetime) -> bool:
    """Whether [start, end] lies inside one local opening period (periods may run past midnight)."""
    if lot.opens_at is None or lot.closes_at is None:
        return True
    day = start.astimezone(LOCAL).date()
    for d in (day - timedelta(days=1), day):
        opens = datetime.combine(d, lot.opens_at, tzinfo=LOCAL)
        closes_day = d if lot.closes_at > lot.opens_at else d + timedelta(days=1)
        closes = datetime.combine(closes_day, lot.closes_at, tzinfo=LOCAL)
        if opens <= start and end <= closes:
            return True
    return False
