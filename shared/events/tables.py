from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, Index, MetaData, PrimaryKeyConstraint, String, Table, Text

from shared.db import IdType, JSONType, UTCDateTime


@dataclass(frozen=True)
class EventTables:
    outbox: Table
    processed: Table


def event_tables(metadata: MetaData) -> EventTables:
    """Create (once per service metadata) the outbox and processed-message tables."""
    if "outbox" in metadata.tables:
        return EventTables(metadata.tables["outbox"], metadata.tables["processed_messages"])
    outbox = Table(
        "outbox",
        metadata,
        Column("id", IdType, primary_key=True),
        Column("type", String(200), nullable=False),
        Column("subject", String(200), nullable=True),
        Column("data", JSONType, nullable=False),
        Column("traceparent", String(64), nullable=True),
        Column("request_id", String(128), nullable=True),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("published_at", UTCDateTime(), nullable=True),
        Column("stream_id", String(64), nullable=True),
    )
    Index("ix_outbox_unpublished", outbox.c.published_at, outbox.c.created_at)
    processed = Table(
        "processed_messages",
        metadata,
        Column("consumer_group", String(100), nullable=False),
        Column("event_id", String(64), nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("processed_at", UTCDateTime(), nullable=False),
        Column("note", Text, nullable=True),
        PrimaryKeyConstraint("consumer_group", "event_id"),
    )
    return EventTables(outbox, processed)
