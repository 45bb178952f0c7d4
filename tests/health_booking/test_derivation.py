"""Slot derivation from schedules: days, breaks, holidays and Vietnam's fixed UTC+7 (no DST)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from services.health_booking.schedules.derivation import ClosedDays, Pattern, derive


def pattern(**kw) -> Pattern:
    base = dict(
        weekdays=frozenset(range(5)),
        start=time(8),
        end=time(12),
        breaks=(),
        slot_minutes=30,
        valid_from=date(2025, 1, 1),
        valid_to=None,
    )
    base.update(kw)
    return Pattern(**base)


def test_slots_are_local_working_hours_in_utc() -> None:
    slots = derive(pattern(), date(2025, 7, 7), date(2025, 7, 7))  # a Monday
    assert len(slots) == 8
    assert slots[0] == (datetime(2025, 7, 7, 1, 0, tzinfo=UTC), datetime(2025, 7, 7, 1, 30, tzinfo=UTC))
    assert slots[-1][1] == datetime(2025, 7, 7, 5, 0, tzinfo=UTC)  # 12:00 in Da Nang


def test_weekdays_across_days_and_weeks() -> None:
    slots = derive(pattern(slot_minutes=60), date(2025, 7, 4), date(2025, 7, 8))  # Fri … Tue
    days = sorted({s[0].astimezone(UTC).date() for s in slots})
    assert days == [date(2025, 7, 4), date(2025, 7, 7), date(2025, 7, 8)]  # weekend skipped


def test_breaks_split_the_day_and_resume_after_the_break() -> None:
    slots = derive(
        pattern(start=time(8), end=time(12), breaks=((time(9, 45), time(10, 15)),), slot_minutes=30),
        date(2025, 7, 7),
        date(2025, 7, 7),
    )
    local = [s[0].astimezone(UTC).strftime("%H:%M") for s in slots]
    # 08:00 08:30 09:00 | break 09:45-10:15 (09:30 would overlap it) | 10:15 10:45 11:15 (local = UTC+7)
    assert local == ["01:00", "01:30", "02:00", "03:15", "03:45", "04:15"]


def test_holidays_and_closures_remove_days() -> None:
    closures = [ClosedDays(date(2025, 9, 1), date(2025, 9, 2))]  # Quốc khánh
    slots = derive(pattern(slot_minutes=240), date(2025, 9, 1), date(2025, 9, 5), closures)
    assert [s[0].date() for s in slots] == [date(2025, 9, 3), date(2025, 9, 4), date(2025, 9, 5)]


def test_valid_range_bounds_the_schedule() -> None:
    p = pattern(slot_minutes=240, valid_from=date(2025, 7, 8), valid_to=date(2025, 7, 9))
    assert [s[0].date() for s in derive(p, date(2025, 7, 7), date(2025, 7, 11))] == [date(2025, 7, 8), date(2025, 7, 9)]


def test_no_dst_every_day_of_the_year_is_utc_plus_7() -> None:
    p = pattern(weekdays=frozenset(range(7)), slot_minutes=240)
    slots = derive(p, date(2025, 1, 1), date(2025, 12, 31))
    assert len(slots) == 365
    assert {s[0].time() for s in slots} == {time(1, 0)}


def test_evening_hours_cross_the_utc_date() -> None:
    p = pattern(start=time(6), end=time(8), slot_minutes=60)  # 06:00 local = 23:00 UTC the day before
    slots = derive(p, date(2025, 7, 7), date(2025, 7, 7))
    assert slots[0][0] == datetime(2025, 7, 6, 23, 0, tzinfo=UTC)


def test_slot_longer_than_the_remaining_time_is_not_offered() -> None:
    slots = derive(pattern(start=time(8), end=time(9, 45), slot_minutes=30), date(2025, 7, 7), date(2025, 7, 7))
    assert len(slots) == 3
