"""Small helpers shared by the health_booking domains: local time and cursors."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.errors import field_error

# Clinic hours, days and cut-offs are Vietnamese business rules; Vietnam has no DST (UTC+7 all year).
LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def local_date(moment: datetime) -> date:
    return moment.astimezone(LOCAL_TZ).date()


def local_to_utc(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=LOCAL_TZ).astimezone(UTC)


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    start = local_to_utc(day, time(0, 0))
    return start, start + timedelta(days=1)


def encode_cursor(*values: Any) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, kinds: tuple[type, ...]) -> list[Any]:
    """Decode an opaque cursor; any tampering is a 422 naming query.cursor, never a 500."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError("shape")
        out: list[Any] = []
        for value, kind in zip(values, kinds, strict=True):
            if kind is datetime:
                parsed = datetime.fromisoformat(value)
                if parsed.tzinfo is None:
                    raise ValueError("naive")
                out.append(parsed)
            elif kind is int:
                if not isinstance(value, int):
                    raise ValueError("int")
                out.append(value)
            else:
                out.append(str(value))
        return out
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise field_error("query.cursor", "Invalid cursor") from exc
