"""Alembic operations for the event tables, shared by every service's first migration."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.db import IdType, JSONType, UTCDateTime


def create_event_tables() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", IdType, nullable=False),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(200), nullable=True),
        sa.Column("data", JSONType, nullable=False),
        sa.Column("traceparent", sa.String(64), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Column("stream_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index("ix_outbox_unpublished", "outbox", ["published_at", "created_at"])
    op.create_table(
        "processed_messages",
        sa.Column("consumer_group", sa.String(100), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("consumer_group", "event_id", name=op.f("pk_processed_messages")),
    )


def drop_event_tables() -> None:
    op.drop_table("processed_messages")
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    op.drop_table("outbox")


def create_idempotency_table() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", JSONType, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("owner", "key", name=op.f("pk_idempotency_keys")),
    )


def drop_idempotency_table() -> None:
    op.drop_table("idempotency_keys")
