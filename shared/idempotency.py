"""Idempotency-Key for POSTs that move money or take a booking (Stripe's semantics).

The key is recorded in the same transaction as the business change, together with the response:

- first request: the row is inserted, the work runs, the response is stored, all commit together;
- a retry with the same key and the same body replays the stored response (same status and body);
- the same key with a different body → 409 ``idempotency_key_reused``;
- a concurrent duplicate waits on the unique key (PostgreSQL) or the database lock (SQLite) and then
  replays; if the first request failed and rolled back, the duplicate simply does the work.

Keys are scoped by owner (the caller's client id and subject), so two callers never collide.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, PrimaryKeyConstraint, String, Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import JSONType, UTCDateTime, utcnow
from shared.errors import Conflict

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="A unique key per operation; retries with the same key return the first result.",
    ),
]
OptionalIdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"),
]


def idempotency_table(metadata: MetaData) -> Table:
    if "idempotency_keys" in metadata.tables:
        return metadata.tables["idempotency_keys"]
    return Table(
        "idempotency_keys",
        metadata,
        Column("owner", String(200), nullable=False),
        Column("key", String(255), nullable=False),
        Column("request_hash", String(64), nullable=False),
        Column("response_status", Integer, nullable=True),
        Column("response_body", JSONType, nullable=True),
        Column("created_at", UTCDateTime(), nullable=False),
        PrimaryKeyConstraint("owner", "key"),
    )


def fingerprint(payload: Any) -> str:
    # A model's JSON dump is already plain JSON; other payloads go through FastAPI's encoder.
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else jsonable_encoder(payload)
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@functools.cache
def _statements(table: Table, dialect: str) -> tuple[Any, Any, Any]:
    """Built once per table: statement construction costs more than executing them."""
    insert = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    claim = insert.on_conflict_do_nothing(index_elements=["owner", "key"]).returning(table.c.owner)
    this_key = (table.c.owner == bindparam("b_owner")) & (table.c.key == bindparam("b_key"))
    stored = select(table.c.request_hash, table.c.response_status, table.c.response_body).where(this_key)
    store = table.update().where(this_key).values(response_status=bindparam("status"), response_body=bindparam("body"))
    return claim, stored, store


async def run_idempotent(
    session: AsyncSession,
    table: Table,
    *,
    owner: str,
    key: str,
    payload: Any,
    work: Callable[[], Awaitable[Any]],
    status_code: int = 201,
) -> JSONResponse:
    """Run ``work`` once per (owner, key); replay its stored response for retries.

    The key is claimed with INSERT … ON CONFLICT DO NOTHING: a concurrent duplicate waits on the unique
    key (PostgreSQL) or the write lock (SQLite) until the first commits, then finds its row and replays;
    if the first rolled back, the duplicate claims the key and does the work itself.
    """
    request_hash = fingerprint(payload)
    conn = await session.connection()
    claim, stored, store = _statements(table, conn.dialect.name)
    claimed = (
        await conn.execute(claim, {"owner": owner, "key": key, "request_hash": request_hash, "created_at": utcnow()})
    ).first()
    if claimed is None:
        row = (await conn.execute(stored, {"b_owner": owner, "b_key": key})).one()
        if row.request_hash != request_hash:
            raise Conflict(
                "This Idempotency-Key was already used with a different request body",
                code="idempotency_key_reused",
            )
        return JSONResponse(row.response_body, status_code=row.response_status, headers={"Idempotent-Replayed": "true"})
    result = await work()
    body = result.model_dump(mode="json") if isinstance(result, BaseModel) else jsonable_encoder(result)
    await conn.execute(store, {"b_owner": owner, "b_key": key, "status": status_code, "body": body})
    return JSONResponse(body, status_code=status_code)


def owner_of(client_id: str, sub: str | None) -> str:
    return f"{client_id}:{sub or ''}"
