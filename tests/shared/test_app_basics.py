"""The service factory: health, readiness, metrics, problem+json errors, request ids, the transaction."""

from __future__ import annotations

import gc
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from dncity.cli import service_settings
from services.parking.db import Base, events
from shared.app import ServiceParts, create_service_app
from shared.db import SessionDep, utcnow
from shared.errors import Conflict, problem_responses
from shared.observability import parse_traceparent
from shared.settings import PlatformSettings
from tests.helpers.asgi import running

router = APIRouter(prefix="/v1/parking/test")


class Thing(BaseModel):
    amount_vnd: int = Field(gt=0)
    note: str = Field(max_length=10)


@router.post("/things", status_code=201, responses=problem_responses(409, 422))
async def make_thing(thing: Thing, session: SessionDep, fail: Annotated[bool, Query()] = False) -> dict[str, int]:
    """Writes an outbox row, then optionally fails: the write must not survive a failure."""
    await session.execute(
        events.processed.insert().values(
            consumer_group="t", event_id=str(thing.amount_vnd), event_type="x", processed_at=utcnow()
        )
    )
    if fail:
        raise Conflict("the thing conflicts", code="thing_conflict")
    return {"amount_vnd": thing.amount_vnd}


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internals")


@router.get("/count")
async def count(session: SessionDep) -> dict[str, int]:
    n = (await session.execute(select(func.count()).select_from(events.processed))).scalar_one()
    return {"count": n}


def make_app(**platform: object):
    return create_service_app(
        "parking",
        settings=service_settings("parking"),
        metadata=Base.metadata,
        parts=ServiceParts(routers=[router]),
        title="t",
        platform=PlatformSettings(**platform),
    )


async def test_health_ready_and_metrics() -> None:
    async with running(make_app()) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok", "service": "parking", "checks": {}}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}
        await client.get("/v1/parking/test/count")
        metrics = (await client.get("/metrics")).text
        assert 'route="/v1/parking/test/count"' in metrics
        assert "http_request_duration_seconds_bucket" in metrics


async def test_startup_freezes_what_is_alive_unless_told_not_to() -> None:
    assert gc.get_freeze_count() == 0  # the suite turns it off (tests/conftest.py)
    async with running(make_app()) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert gc.get_freeze_count() == 0
    try:
        async with running(make_app(gc_freeze_after_startup=True)) as client:
            # Modules, the app and its settings now sit in the permanent generation.
            assert gc.get_freeze_count() > 10_000
            assert (await client.get("/healthz")).status_code == 200
    finally:
        gc.unfreeze()


async def test_readyz_reports_unreachable_redis() -> None:
    async with running(make_app(redis_url="redis://127.0.0.1:1/0")) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"].startswith("error")
        assert ready.json()["checks"]["database"] == "ok"


async def test_validation_error_is_problem_json_naming_fields() -> None:
    async with running(make_app()) as client:
        response = await client.post("/v1/parking/test/things", json={"amount_vnd": 1.5, "note": "x" * 11})
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == "validation_error"
        assert {e["field"] for e in body["errors"]} == {"body.amount_vnd", "body.note"}
        assert body["request_id"] == response.headers["x-request-id"]


async def test_business_error_rolls_back_and_success_commits() -> None:
    async with running(make_app()) as client:
        failed = await client.post("/v1/parking/test/things?fail=true", json={"amount_vnd": 5, "note": "a"})
        assert failed.status_code == 409
        assert failed.json()["code"] == "thing_conflict"
        assert (await client.get("/v1/parking/test/count")).json() == {"count": 0}
        ok = await client.post("/v1/parking/test/things", json={"amount_vnd": 5, "note": "a"})
        assert ok.status_code == 201
        assert (await client.get("/v1/parking/test/count")).json() == {"count": 1}


async def test_unknown_route_and_method_and_crash_are_problems() -> None:
    async with running(make_app()) as client:
        missing = await client.get("/v1/parking/nope")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        wrong = await client.delete("/v1/parking/test/count")
        assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"
    transport_app = make_app()
    import httpx

    async with transport_app.router.lifespan_context(transport_app):
        transport = httpx.ASGITransport(app=transport_app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            crash = await client.get("/v1/parking/test/boom")
            assert crash.status_code == 500
            assert crash.json()["code"] == "internal_error"
            assert "secret internals" not in crash.text


async def test_request_id_and_traceparent() -> None:
    async with running(make_app()) as client:
        fresh = await client.get("/healthz")
        assert len(fresh.headers["x-request-id"]) == 32
        assert parse_traceparent(fresh.headers["traceparent"]) is not None

        incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        kept = await client.get("/healthz", headers={"x-request-id": "req-123", "traceparent": incoming})
        assert kept.headers["x-request-id"] == "req-123"
        trace_id, span_id, _ = parse_traceparent(kept.headers["traceparent"])  # type: ignore[misc]
        assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736" and span_id != "00f067aa0ba902b7"

        bad = await client.get("/healthz", headers={"x-request-id": "bad id\n", "traceparent": "garbage"})
        assert bad.headers["x-request-id"] != "bad id\n"
        assert parse_traceparent(bad.headers["traceparent"]) is not None


async def test_openapi_uses_problem_json_and_stable_ids() -> None:
    app = make_app()
    doc = app.openapi()
    operation = doc["paths"]["/v1/parking/test/things"]["post"]
    assert operation["operationId"] == "make_thing"
    assert "application/problem+json" in operation["responses"]["422"]["content"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_outbound_calls_do_not_write_plain_text_lines_into_the_json_log() -> None:
    """At the platform's INFO level, httpx's own 'HTTP Request: …' lines (plain text, one per call)
    stay out of stdout, which carries one JSON object per line."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import http.server, threading, httpx
        from shared.observability import configure_logging
        configure_logging("INFO")
        server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
        threading.Thread(target=server.handle_request, daemon=True).start()
        httpx.get(f"http://127.0.0.1:{server.server_port}/", timeout=5)
        print("done")
    """)
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines() == ["done"], out.stdout
