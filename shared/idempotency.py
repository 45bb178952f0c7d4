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

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, PrimaryKeyConstraint, String, Table, select
from sqlalchemy.exc import IntegrityError
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
    data = jsonable_encoder(payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload)
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


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
    """Run ``work`` once per (owner, key); replay its stored response for retries."""
    request_hash = fingerprint(payload)
    try:
        async with session.begin_nested():
            await session.execute(
                table.insert().values(owner=owner, key=key, request_hash=request_hash, created_at=utcnow())
            )
    except IntegrityError:
        row = (await session.execute(select(table).where(table.c.owner == owner, table.c.key == key))).mappings().one()
        if row["request_hash"] != request_hash:
            raise Conflict(
                "This Idempotency-Key was already used with a different request body",
                code="idempotency_key_reused",
            ) from None
        return JSONResponse(
            row["response_body"], status_code=row["response_status"], headers={"Idempotent-Replayed": "true"}
        )
    result = await work()
    body = jsonable_encoder(result)
    await session.execute(
        table.update()
        .where(table.c.owner == owner, table.c.key == key)
        .values(response_status=status_code, response_body=body)
    )
    return JSONResponse(body, status_code=status_code)


def owner_of(client_id: str, sub: str | None) -> str:
    return f"{client_id}:{sub or ''}"
