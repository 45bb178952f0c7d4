"""Deriving slot times from a schedule: pure functions, no database (tested directly).

Working hours, breaks and closures are local Asia/Ho_Chi_Minh times; the derived slots are UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from services.health_booking.common import local_to_utc


@dataclass(frozen=True)
class Pattern:
    weekdays: frozenset[int]
    start: time
    end: time
    breaks: tuple[tuple[time, time], ...]
    slot_minutes: int
    valid_from: date
    valid_to: date | None


@dataclass(frozen=True)
class ClosedDays:
    start: date
    end: date


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _minutes(at: time) -> int:
    return at.hour * 60 + at.minute


def derive(
    pattern: Pattern, first: date, last: date, closures: Sequence[ClosedDays] = ()
) -> list[tuple[datetime, datetime]]:
    """Every slot (start, end) in UTC for local days first..last inclusive."""
    out: list[tuple[datetime, datetime]] = []
    day = max(first, pattern.valid_from)
    last = min(last, pattern.valid_to) if pattern.valid_to else last
    breaks = [(_minutes(a), _minutes(b)) for a, b in pattern.breaks]
    while day <= last:
        if day.weekday() in pattern.weekdays and not any(c.start <= day <= c.end for c in closures):
            out.extend(_day_slots(day, _minutes(pattern.start), _minutes(pattern.end), breaks, pattern.slot_minutes))
        day += timedelta(days=1)
    return out


def _day_slots(
    day: date, start: int, end: int, breaks: Iterable[tuple[int, int]], length: int
) -> list[tuple[datetime, datetime]]:
    slots: list[tuple[datetime, datetime]] = []
    at = start
    breaks = sorted(breaks)
    while at + length <= end:
        clash = next(((b0, b1) for b0, b1 in breaks if at < b1 and b0 < at + length), None)
        if clash is not None:
            # Resume right after the break rather than on the original grid, as clinics do.
            at = clash[1]
            continue
        begin = local_to_utc(day, time(at // 60, at % 60))
        slots.append((begin, begin + timedelta(minutes=length)))
        at += length
    return slots
