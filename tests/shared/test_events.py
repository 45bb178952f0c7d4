"""The event bus against a real Redis protocol server and the service's real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dncity.cli import database_url
from services.parking.db import events as parking_events
from services.tuition.db import events as tuition_events
from shared.db import Database
from shared.events import CloudEvent, EventConsumer, Outbox, OutboxRelay, stream_for
from shared.events.envelope import dead_letter_stream
from shared.redis import create_redis


@pytest.fixture
async def dbs() -> AsyncIterator[tuple[Database, Database]]:
    parking, tuition = Database(database_url("parking")), Database(database_url("tuition"))
    yield parking, tuition
    await parking.dispose()
    await tuition.dispose()


@pytest.fixture
async def redis(redis_url: str):
    client = create_redis(redis_url)
    yield client
    await client.aclose()


async def publish(db: Database, type_: str, data: dict, *, fail: bool = False) -> str:
    outbox = Outbox(parking_events)
    try:
        async with db.sessionmaker() as session, session.begin():
            event_id = await outbox.add(session, type_, data, subject="r-1")
            if fail:
                raise RuntimeError("business rule failed after the event was written")
    except RuntimeError:
        return ""
    return event_id


def consumer(db: Database, redis, handlers, **kw) -> EventConsumer:
    return EventConsumer(
        db=db,
        redis=redis,
        tables=tuition_events,
        group="tuition.test",
        streams=[stream_for("parking")],
        handlers=handlers,
        block_ms=50,
        **kw,
    )


async def processed_count(db: Database) -> int:
    async with db.sessionmaker() as session:
        table = tuition_events.processed
        return (await session.execute(select(func.count()).select_from(table))).scalar_one()


async def test_outbox_event_is_relayed_as_cloudevent_and_handled_once(dbs, redis) -> None:
    parking, tuition = dbs
    event_id = await publish(parking, "payment.succeeded", {"reference": "r-1", "amount_vnd": 20000})
    rolled_back = await publish(parking, "payment.succeeded", {"reference": "r-2"}, fail=True)
    assert rolled_back == ""
    relay = OutboxRelay(db=parking, redis=redis, tables=parking_events, service="parking")
    assert await relay.publish_pending() == 1
    assert await relay.publish_pending() == 0  # marked published

    entries = await redis.xrange(stream_for("parking"))
    assert len(entries) == 1
    envelope = CloudEvent.from_fields(entries[0][1])
    assert envelope.specversion == "1.0" and envelope.id == event_id
    assert envelope.source == "/dncity/parking" and envelope.data["amount_vnd"] == 20000

    seen: list[str] = []

    async def on_paid(session: AsyncSession, event: CloudEvent) -> None:
        seen.append(event.data["reference"])

    c = consumer(tuition, redis, {"payment.succeeded": on_paid})
    await c.ensure_groups()
    # Redis may deliver twice (a relay crash after XADD): the handler still runs once.
    await redis.xadd(stream_for("parking"), entries[0][1])
    assert await c.read_new() == 2
    assert seen == ["r-1"]
    assert await processed_count(tuition) == 1
    assert await redis.xpending(stream_for("parking"), "tuition.test") == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


async def test_failed_handler_is_retried_with_backoff_then_succeeds(dbs, redis) -> None:
    parking, tuition = dbs
    await publish(parking, "payment.succeeded", {"reference": "r-1"})
    await OutboxRelay(db=parking, redis=redis, tables=parking_events, service="parking").publish_pending()
    attempts = 0

    async def flaky(session: AsyncSession, event: CloudEvent) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise RuntimeError("downstream not ready")

    c = consumer(tuition, redis, {"payment.succeeded": flaky}, retry_base_ms=300)
    await c.ensure_groups()
    await c.read_new()
    assert attempts == 1 and await processed_count(tuition) == 0  # the failure rolled back its row
    assert await c.reclaim() == 0  # backoff (300 ms) not yet elapsed
    await asyncio.sleep(0.35)
    assert await c.reclaim() == 1 and attempts == 2
    assert await c.reclaim() == 0  # the second backoff is 600 ms
    await asyncio.sleep(0.65)
    assert await c.reclaim() == 1 and attempts == 3
    assert await processed_count(tuition) == 1
    assert (await redis.xpending(stream_for("parking"), "tuition.test"))["pending"] == 0


async def test_poison_message_goes_to_dead_letter_stream(dbs, redis) -> None:
    parking, tuition = dbs
    await publish(parking, "payment.succeeded", {"reference": "bad"})
    await OutboxRelay(db=parking, redis=redis, tables=parking_events, service="parking").publish_pending()

    async def always_fails(session: AsyncSession, event: CloudEvent) -> None:
        raise ValueError("cannot settle")

    c = consumer(tuition, redis, {"payment.succeeded": always_fails}, retry_base_ms=1, max_deliveries=3)
    await c.ensure_groups()
    await c.read_new()
    for _ in range(10):
        await asyncio.sleep(0.02)
        await c.reclaim()
    dead = await redis.xrange(dead_letter_stream("tuition.test"))
    assert len(dead) == 1
    assert dead[0][1][b"deliveries"] == b"3" and b"cannot settle" in dead[0][1][b"error"]
    assert (await redis.xpending(stream_for("parking"), "tuition.test"))["pending"] == 0
    assert await processed_count(tuition) == 0


async def test_pending_messages_of_a_crashed_consumer_are_reclaimed(dbs, redis) -> None:
    parking, tuition = dbs
    await publish(parking, "payment.succeeded", {"reference": "r-9"})
    await OutboxRelay(db=parking, redis=redis, tables=parking_events, service="parking").publish_pending()
    seen: list[str] = []

    async def handler(session: AsyncSession, event: CloudEvent) -> None:
        seen.append(event.data["reference"])

    crashed = consumer(tuition, redis, {"payment.succeeded": handler}, consumer_name="crashed")
    await crashed.ensure_groups()
    # The crashed consumer read the message and died before handling or acknowledging it.
    await redis.xreadgroup("tuition.test", "crashed", {stream_for("parking"): ">"}, count=10)
    survivor = consumer(tuition, redis, {"payment.succeeded": handler}, consumer_name="survivor", retry_base_ms=30)
    await asyncio.sleep(0.05)
    assert await survivor.reclaim() == 1
    assert seen == ["r-9"]
    assert (await redis.xpending(stream_for("parking"), "tuition.test"))["pending"] == 0


async def test_relay_and_consumer_loops_deliver_between_services(dbs, redis) -> None:
    parking, tuition = dbs
    stop = asyncio.Event()
    received = asyncio.Event()

    async def handler(session: AsyncSession, event: CloudEvent) -> None:
        received.set()

    relay = OutboxRelay(db=parking, redis=redis, tables=parking_events, service="parking", poll_interval=0.05)
    c = consumer(tuition, redis, {"parking.reservation.confirmed": handler})
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(c.run(stop))]
    await publish(parking, "parking.reservation.confirmed", {"id": "x"})
    await asyncio.wait_for(received.wait(), timeout=5)
    stop.set()
    await asyncio.gather(*tasks)
