"""Appending to and reading the audit log."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.audit.models import AuditEvent
from shared.db import new_id, utcnow
from shared.errors import field_error
from shared.observability import current_request_id

# Keys that must never reach the audit log, whatever a caller passes.
_FORBIDDEN_KEYS = frozenset(
    {
        "password",
        "new_password",
        "current_password",
        "code",
        "token",
        "secret",
        "citizen_id",
        "passport_number",
        "recovery_code",
    }
)


async def record(
    session: AsyncSession,
    *,
    sub: str | None,
    action: str,
    client_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one audit event in the caller's transaction (request id from the current request)."""
    clean = {k: v for k, v in (details or {}).items() if k not in _FORBIDDEN_KEYS}
    session.add(
        AuditEvent(
            id=new_id(),
            sub=sub,
            action=action,
            client_id=client_id,
            request_id=current_request_id(),
            details=clean,
            created_at=utcnow(),
        )
    )
    await session.flush()


def encode_cursor(created_at: datetime, event_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), event_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, event_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(created), str(event_id)
    except (ValueError, TypeError) as exc:
        raise field_error("query.cursor", "not a cursor this endpoint returned") from exc


async def list_for(
    session: AsyncSession, sub: str, *, limit: int, cursor: str | None = None
) -> tuple[list[AuditEvent], str | None]:
    """Newest first, keyset-paginated."""
    query = select(AuditEvent).where(AuditEvent.sub == sub)
    if cursor:
        created, event_id = decode_cursor(cursor)
        query = query.where(
            or_(AuditEvent.created_at < created, and_(AuditEvent.created_at == created, AuditEvent.id < event_id))
        )
    rows = list(
        await session.scalars(query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit + 1))
    )
    next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def all_for(session: AsyncSession, sub: str) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.sub == sub).order_by(AuditEvent.created_at, AuditEvent.id)
    return list(await session.scalars(query))
