"""Dev-only event diagnostics: prove the bus end to end across processes.

``POST /v1/<service>/dev/events/ping`` writes a ``dncity.diagnostics.ping`` event through the outbox;
every service runs a diagnostics consumer group over all services' streams, and
``GET /v1/<service>/dev/events/received?event_id=`` tells whether this service has processed it
(its processed-message row). Mounted only when dev endpoints are on — the prod profile refuses them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.app import ConsumerSpec
from shared.db import SessionDep
from shared.events import CloudEvent
from shared.settings import SERVICE_NAMES

PING = "dncity.diagnostics.ping"


class PingSent(BaseModel):
    event_id: str


class PingReceipt(BaseModel):
    service: str
    event_id: str
    received: bool
    processed_at: datetime | None = None


def group_name(service: str) -> str:
    return f"{service}.diagnostics"


def api_prefix(service: str) -> str:
    return {"health_booking": "health"}.get(service, service)


def diagnostics_router(service: str) -> APIRouter:
    router = APIRouter(prefix=f"/v1/{api_prefix(service)}/dev/events", tags=["dev"])

    @router.post("/ping", response_model=PingSent, status_code=201, operation_id=f"{service}_dev_ping")
    async def dev_ping(request: Request, session: SessionDep) -> PingSent:
        """Publish a diagnostics event through the outbox (dev profile only)."""
        event_id = await request.app.state.outbox.add(session, PING, {"from": service})
        return PingSent(event_id=event_id)

    @router.get("/received", response_model=PingReceipt, operation_id=f"{service}_dev_received")
    async def dev_received(
        request: Request, session: SessionDep, event_id: Annotated[str, Query(min_length=1, max_length=64)]
    ) -> PingReceipt:
        """Whether this service's diagnostics consumer has processed an event (dev profile only)."""
        table = request.app.state.event_tables.processed
        row = (
            await session.execute(
                select(table.c.processed_at).where(
                    table.c.consumer_group == group_name(service), table.c.event_id == event_id
                )
            )
        ).first()
        return PingReceipt(
            service=service, event_id=event_id, received=row is not None, processed_at=row[0] if row else None
        )

    return router


async def _on_ping(session: AsyncSession, event: CloudEvent) -> None:
    """Nothing to change: the processed-message row written with this handler is the receipt."""


def diagnostics_consumer(service: str) -> ConsumerSpec:
    return ConsumerSpec(group=group_name(service), sources=SERVICE_NAMES, handlers={PING: _on_ping})
