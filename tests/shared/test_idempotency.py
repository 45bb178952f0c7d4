"""Idempotency-Key: replay, different body, concurrent duplicates — one effect only."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import func, select

from dncity.cli import service_settings
from services.payments.db import Base, events, idempotency_keys
from shared.app import ServiceParts, create_service_app
from shared.auth import Principal, RequireClient
from shared.db import SessionDep, new_id, utcnow
from shared.idempotency import IdempotencyKey, owner_of, run_idempotent
from shared.settings import PlatformSettings
from tests.helpers.asgi import running
from tests.helpers.tokens import TokenFactory

router = APIRouter(prefix="/v1/payments/idemtest")


class Charge(BaseModel):
    amount_vnd: int


@router.post("/charges", status_code=201)
async def charge(
    body: Charge, session: SessionDep, key: IdempotencyKey, p: Annotated[Principal, RequireClient("payments.write")]
) -> object:
    async def work() -> dict[str, object]:
        event_id = new_id()
        await session.execute(
            events.processed.insert().values(
                consumer_group="charges", event_id=event_id, event_type="charge", processed_at=utcnow()
            )
        )
        await asyncio.sleep(0.01)  # widen the race window
        return {"id": event_id, "amount_vnd": body.amount_vnd}

    return await run_idempotent(
        session, idempotency_keys, owner=owner_of(p.client_id, p.sub), key=key, payload=body, work=work
    )


@router.get("/count")
async def charges_count(session: SessionDep) -> dict[str, int]:
    return {"n": (await session.execute(select(func.count()).select_from(events.processed))).scalar_one()}


def app():
    return create_service_app(
        "payments",
        settings=service_settings("payments"),
        metadata=Base.metadata,
        parts=ServiceParts(routers=[router]),
        title="t",
        platform=PlatformSettings(),
    )


async def test_replay_and_reuse_with_other_body(tokens: TokenFactory) -> None:
    auth = tokens.bearer(tokens.client("svc-parking", ["payments.write"]))
    async with running(app()) as client:
        first = await client.post(
            "/v1/payments/idemtest/charges", json={"amount_vnd": 5000}, headers={**auth, "Idempotency-Key": "k1"}
        )
        again = await client.post(
            "/v1/payments/idemtest/charges", json={"amount_vnd": 5000}, headers={**auth, "Idempotency-Key": "k1"}
        )
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json() and again.headers["idempotent-replayed"] == "true"
        other = await client.post(
            "/v1/payments/idemtest/charges", json={"amount_vnd": 9000}, headers={**auth, "Idempotency-Key": "k1"}
        )
        assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
        # Another caller's identical key is its own.
        auth2 = tokens.bearer(tokens.client("svc-tuition", ["payments.write"]))
        theirs = await client.post(
            "/v1/payments/idemtest/charges", json={"amount_vnd": 5000}, headers={**auth2, "Idempotency-Key": "k1"}
        )
        assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
        missing = await client.post("/v1/payments/idemtest/charges", json={"amount_vnd": 1}, headers=auth)
        assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "header.Idempotency-Key"
        assert (await client.get("/v1/payments/idemtest/count")).json() == {"n": 2}


async def test_fifty_concurrent_requests_with_one_key_do_the_work_once(tokens: TokenFactory) -> None:
    auth = {**tokens.bearer(tokens.client("svc-parking", ["payments.write"])), "Idempotency-Key": "same"}
    async with running(app()) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/payments/idemtest/charges", json={"amount_vnd": 7000}, headers=auth) for _ in range(50))
        )
        assert {r.status_code for r in responses} == {201}, [r.text for r in responses if r.status_code != 201][:1]
        assert len({r.json()["id"] for r in responses}) == 1
        assert (await client.get("/v1/payments/idemtest/count")).json() == {"n": 1}
