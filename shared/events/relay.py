from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

import structlog
from redis.asyncio import Redis
from sqlalchemy import select

from shared.db import Database, utcnow
from shared.events.envelope import CloudEvent, stream_for
from shared.events.tables import EventTables
from shared.observability import Metrics

log = structlog.get_logger("events.relay")

# Streams keep a long history for late consumers; trimming is approximate and far above any backlog.
STREAM_MAXLEN = 1_000_000


class OutboxRelay:
    """Publishes committed outbox rows to the service's Redis Stream, oldest first.

    At-least-once: a crash between XADD and marking the row publishes the event again, and consumers
    deduplicate by event id. On PostgreSQL several replicas relay in parallel (SKIP LOCKED).
    """

    def __init__(
        self,
        *,
        db: Database,
        redis: Redis,
        tables: EventTables,
        service: str,
        metrics: Metrics | None = None,
        poll_interval: float = 0.2,
        batch: int = 100,
    ) -> None:
        self.db = db
        self.redis = redis
        self.table = tables.outbox
        self.service = service
        self.stream = stream_for(service)
        self.metrics = metrics
        self.poll_interval = poll_interval
        self.batch = batch
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def publish_pending(self) -> int:
        table = self.table
        query = (
            select(table)
            .where(table.c.published_at.is_(None))
            .order_by(table.c.created_at, table.c.id)
            .limit(self.batch)
        )
        if self.db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        async with self.db.sessionmaker() as session, session.begin():
            rows = (await session.execute(query)).mappings().all()
            for row in rows:
                event = CloudEvent(
                    id=row["id"],
                    source=f"/dncity/{self.service}",
                    type=row["type"],
                    subject=row["subject"],
                    time=row["created_at"],
                    data=row["data"],
                    traceparent=row["traceparent"],
                    requestid=row["request_id"],
                )
                # redis-py types its replies loosely: a stream id comes back as bytes (decode_responses off).
                stream_id: Any = await self.redis.xadd(
                    self.stream, cast(Any, event.to_fields()), maxlen=STREAM_MAXLEN, approximate=True
                )
                await session.execute(
                    table.update()
                    .where(table.c.id == row["id"])
                    .values(published_at=utcnow(), stream_id=stream_id.decode())
                )
                if self.metrics:
                    self.metrics.events_published.labels(self.service, row["type"]).inc()
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                published = await self.publish_pending()
            except Exception:
                log.exception("relay_failed", service=self.service)
                published = 0
            if published:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
