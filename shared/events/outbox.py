from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import new_id, utcnow
from shared.events.tables import EventTables
from shared.observability import current_request_id, current_traceparent


class Outbox:
    """Writes events into the caller's transaction; the relay publishes them after commit."""

    def __init__(self, tables: EventTables) -> None:
        self.tables = tables

    async def add(self, session: AsyncSession, type_: str, data: dict[str, Any], *, subject: str | None = None) -> str:
        event_id = new_id()
        table = self.tables.outbox
        await session.execute(
            table.insert().values(
                id=event_id,
                type=type_,
                subject=subject,
                data=data,
                traceparent=current_traceparent(),
                request_id=current_request_id(),
                created_at=utcnow(),
            )
        )
        return event_id
