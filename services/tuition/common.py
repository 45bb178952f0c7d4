"""Small helpers shared by the tuition domains: who the caller is, cursors, CSV and dates."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.auth import Principal
from shared.errors import Forbidden, field_error

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
SCHOOL_SCOPES = ("tuition.students.write", "tuition.invoices.write")
GUARDIAN_SCOPE = "tuition"
MAX_PAGE = 100


def today_vn(now: datetime) -> date:
    """Due dates are calendar days in Da Nang, whatever the server's zone."""
    return now.astimezone(VN_TZ).date()


def school_of(principal: Principal) -> str | None:
    """The school a client-credentials token acts for (its client_id), or None for a person's token."""
    if principal.is_user:
        return None
    if not any(principal.has(s) for s in SCHOOL_SCOPES):
        raise Forbidden(
            "This needs a school's token (tuition.students.write or tuition.invoices.write)", code="insufficient_scope"
        )
    return principal.client_id


def guardian_of(principal: Principal) -> str:
    if not principal.is_user or not principal.has(GUARDIAN_SCOPE):
        raise Forbidden("This needs a person's token with the scope tuition", code="insufficient_scope")
    assert principal.sub is not None
    return principal.sub


def encode_cursor(*parts: Any) -> str:
    raw = json.dumps([p.isoformat() if isinstance(p, date | datetime) else p for p in parts])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, n: int) -> list[Any] | None:
    if not cursor:
        return None
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError as exc:
        raise field_error("query.cursor", "invalid cursor") from exc
    if not isinstance(parts, list) or len(parts) != n:
        raise field_error("query.cursor", "invalid cursor")
    return parts


def to_csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue()


def _cell(value: Any) -> Any:
    """Text a spreadsheet would run as a formula (=, +, -, @) is prefixed with ' (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def mask_personal_id(value: str | None) -> str | None:
    return None if not value else "*" * (len(value) - 4) + value[-4:]
