from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database, utcnow
from shared.events.envelope import CloudEvent, dead_letter_stream
from shared.events.tables import EventTables
from shared.observability import Metrics, bind_context, child_traceparent

log = structlog.get_logger("events.consumer")

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]


class EventConsumer:
    """One consumer in a Redis Streams consumer group.

    Each event is handled in one database transaction together with its processed-message row, so a
    handler's effects happen exactly once even when Redis delivers the event again. A failed event stays
    pending and is claimed again after an exponential backoff (by this or any other consumer of the
    group, which also recovers the messages of a crashed consumer). After ``max_deliveries`` attempts it
    is copied to the group's dead-letter stream and acknowledged.
    """

    def __init__(
        self,
        *,
        db: Database,
        redis: Redis,
        tables: EventTables,
        group: str,
        streams: Sequence[str],
        handlers: Mapping[str, Handler],
        consumer_name: str | None = None,
        metrics: Metrics | None = None,
        max_deliveries: int = 5,
        retry_base_ms: int = 500,
        block_ms: int = 500,
        batch: int = 20,
    ) -> None:
        self.db = db
        self.redis = redis
        self.processed = tables.processed
        self.group = group
        self.streams = list(streams)
        self.handlers = dict(handlers)
        self.name = consumer_name or f"{socket.gethostname()}-{os.getpid()}-{id(self):x}"
        self.metrics = metrics
        self.max_deliveries = max_deliveries
        self.retry_base_ms = retry_base_ms
        self.block_ms = block_ms
        self.batch = batch

    async def ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                # From the start of the stream: events published before the group existed still count.
                await self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def backoff_ms(self, deliveries: int) -> int:
        return int(self.retry_base_ms * (2 ** max(0, deliveries - 1)))

    async def run(self, stop: asyncio.Event) -> None:
        groups_ready = False
        while not stop.is_set():
            try:
                if not groups_ready:
                    await self.ensure_groups()
                    groups_ready = True
                await self.reclaim()
                await self.read_new()
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if "NOGROUP" in str(exc) or "UNBLOCKED" in str(exc):
                    # Redis lost the stream or group (restart without persistence, FLUSHDB): recreate.
                    groups_ready = False
                    continue
                log.exception("consumer_loop_failed", group=self.group)
                await asyncio.sleep(1)
            except Exception:
                log.exception("consumer_loop_failed", group=self.group)
                await asyncio.sleep(1)

    async def read_new(self) -> int:
        response: Any = await self.redis.xreadgroup(
            self.group, self.name, {s: ">" for s in self.streams}, count=self.batch, block=self.block_ms
        )
        handled = 0
        for stream, messages in response or []:
            for message_id, fields in messages:
                await self.handle(stream.decode(), message_id.decode(), fields, deliveries=1)
                handled += 1
        return handled

    async def reclaim(self) -> int:
        """Claim pending messages whose backoff has elapsed (failed here, or left by a crashed consumer)."""
        claimed = 0
        for stream in self.streams:
            pending: Any = await self.redis.xpending_range(stream, self.group, min="-", max="+", count=100)
            for entry in pending:
                deliveries = int(entry["times_delivered"])
                idle = int(entry["time_since_delivered"])
                if idle < self.backoff_ms(deliveries):
                    continue
                message_id = entry["message_id"]
                result: Any = await self.redis.xclaim(
                    stream,
                    self.group,
                    self.name,
                    min_idle_time=self.backoff_ms(deliveries),
                    message_ids=[message_id],
                )
                for claimed_id, fields in result:
                    mid = claimed_id.decode() if isinstance(claimed_id, bytes) else claimed_id
                    if not fields:  # trimmed from the stream; nothing left to process
                        await self.redis.xack(stream, self.group, mid)
                        continue
                    await self.handle(stream, mid, fields, deliveries=deliveries + 1)
                    claimed += 1
        return claimed

    async def handle(self, stream: str, message_id: str, fields: dict[bytes, bytes], *, deliveries: int) -> None:
        try:
            event = CloudEvent.from_fields(fields)
        except Exception as exc:
            await self._dead_letter(stream, message_id, fields, f"malformed envelope: {exc}", deliveries)
            return
        handler = self.handlers.get(event.type)
        if handler is None:
            await self.redis.xack(stream, self.group, message_id)
            return
        bind_context(event.requestid, child_traceparent(event.traceparent))
        try:
            async with self.db.sessionmaker() as session, session.begin():
                if await self._first_time(session, event):
                    await handler(session, event)
                    outcome = "handled"
                else:
                    outcome = "duplicate"
        except Exception as exc:
            self._count(event.type, "failed")
            log.warning(
                "event_handler_failed",
                group=self.group,
                type=event.type,
                event_id=event.id,
                deliveries=deliveries,
                error=repr(exc)[:300],
            )
            if deliveries >= self.max_deliveries:
                await self._dead_letter(stream, message_id, fields, repr(exc)[:1000], deliveries)
            return
        await self.redis.xack(stream, self.group, message_id)
        self._count(event.type, outcome)

    async def _first_time(self, session: AsyncSession, event: CloudEvent) -> bool:
        table = self.processed
        seen = await session.execute(
            select(table.c.event_id).where(table.c.consumer_group == self.group, table.c.event_id == event.id)
        )
        if seen.first() is not None:
            return False
        # A concurrent duplicate (a reclaimed message still in flight elsewhere) fails on the primary
        # key at commit, rolls back the handler's work and is retried, then seen as processed.
        await session.execute(
            table.insert().values(
                consumer_group=self.group, event_id=event.id, event_type=event.type, processed_at=utcnow()
            )
        )
        return True

    async def _dead_letter(
        self, stream: str, message_id: str, fields: dict[bytes, bytes], error: str, deliveries: int
    ) -> None:
        log.error("event_dead_lettered", group=self.group, stream=stream, message_id=message_id, error=error)
        await self.redis.xadd(
            dead_letter_stream(self.group),
            {
                "event": fields.get(b"event", b""),
                "stream": stream,
                "message_id": message_id,
                "group": self.group,
                "error": error,
                "deliveries": str(deliveries),
            },
        )
        await self.redis.xack(stream, self.group, message_id)
        if self.metrics:
            self.metrics.events_consumed.labels(self.metrics.service, self.group, "unknown", "dead_lettered").inc()

    def _count(self, type_: str, outcome: str) -> None:
        if self.metrics:
            self.metrics.events_consumed.labels(self.metrics.service, self.group, type_, outcome).inc()
