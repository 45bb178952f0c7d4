"""NUL characters in request input: a 422 naming the field, never a 500 (PostgreSQL cannot store U+0000)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query
from pydantic import BaseModel
from sqlalchemy import func, select

from dncity.cli import service_settings
from services.parking.db import Base, events
from shared.app import ServiceParts, create_service_app
from shared.db import SessionDep, new_id, utcnow
from shared.errors import problem_responses
from shared.settings import PlatformSettings
from tests.helpers.asgi import running

router = APIRouter(prefix="/v1/parking/guard")


class Inner(BaseModel):
    tags: list[str]


class Note(BaseModel):
    text: str
    inner: Inner | None = None


async def _store(session: SessionDep, value: str) -> None:
    # A real write of the value: on PostgreSQL a NUL here would be a DataError (500) without the guard.
    await session.execute(
        events.processed.insert().values(consumer_group="g", event_id=value[:64], event_type="x", processed_at=utcnow())
    )


@router.get("/things/{thing_id}", responses=problem_responses(422))
async def read_thing(thing_id: str, session: SessionDep, label: Annotated[str, Query()] = "") -> dict[str, int]:
    """Looks the path and query values up in the database."""
    n = await session.scalar(
        select(func.count()).select_from(events.processed).where(events.processed.c.event_id.in_([thing_id, label]))
    )
    return {"count": int(n or 0)}


@router.post("/notes", status_code=201, responses=problem_responses(422))
async def make_note(note: Note, session: SessionDep) -> dict[str, str]:
    """Stores the note's text and tags."""
    for value in [note.text, *(note.inner.tags if note.inner else [])]:
        await _store(session, value)
    return {"text": note.text}


@router.post("/forms", status_code=201, responses=problem_responses(422))
async def make_form(name: Annotated[str, Form()], session: SessionDep) -> dict[str, str]:
    """Stores a form field."""
    await _store(session, name)
    return {"name": name}


class Window(BaseModel):
    start_at: datetime
    extra: list[datetime] = []


class Plan(BaseModel):
    windows: list[Window]


@router.post("/plans", status_code=201, responses=problem_responses(422))
async def make_plan(plan: Plan, session: SessionDep) -> dict[str, int]:
    """Stores each window's start (UTCDateTime refuses naive values; +14:00 at year 1 overflows)."""
    for window in plan.windows:
        await session.execute(
            events.processed.insert().values(
                consumer_group="g", event_id=new_id(), event_type="x", processed_at=window.start_at
            )
        )
    return {"windows": len(plan.windows)}


@router.get("/since", responses=problem_responses(422))
async def count_since(
    session: SessionDep, start: Annotated[datetime | None, Query(alias="from")] = None
) -> dict[str, int]:
    """Counts rows processed since a time."""
    query = select(func.count()).select_from(events.processed)
    if start is not None:
        query = query.where(events.processed.c.processed_at >= start)
    return {"count": int(await session.scalar(query) or 0)}


@router.get("/count")
async def count_rows(session: SessionDep) -> dict[str, int]:
    n = await session.scalar(select(func.count()).select_from(events.processed))
    return {"count": int(n or 0)}


def make_app():
    return create_service_app(
        "parking",
        settings=service_settings("parking"),
        metadata=Base.metadata,
        parts=ServiceParts(routers=[router]),
        title="t",
        platform=PlatformSettings(),
    )


def _names_field(response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert [e["field"] for e in body["errors"]] == [field]
    assert body["errors"][0]["type"] == "string_nul"


async def test_nul_in_path_query_json_and_form_is_a_422_naming_the_field() -> None:
    async with running(make_app()) as client:
        _names_field(await client.get("/v1/parking/guard/things/a%00b"), "path.thing_id")
        _names_field(await client.get("/v1/parking/guard/things/a", params={"label": "x\x00"}), "query.label")
        _names_field(await client.post("/v1/parking/guard/notes", json={"text": "a\x00b"}), "body.text")
        _names_field(
            await client.post("/v1/parking/guard/notes", json={"text": "ok", "inner": {"tags": ["fine", "b\x00"]}}),
            "body.inner.tags.1",
        )
        _names_field(await client.post("/v1/parking/guard/forms", data={"name": "a\x00"}), "body.name")
        # Nothing was stored by any of the refused requests.
        assert (await client.get("/v1/parking/guard/count")).json() == {"count": 0}


async def test_clean_input_and_undeclared_nul_query_parameters_pass() -> None:
    async with running(make_app()) as client:
        # A query parameter the route does not declare is ignored, as any unknown parameter is.
        response = await client.get("/v1/parking/guard/things/a", params={"label": "x", "other": "\x00"})
        assert response.status_code == 200, response.text
        # A JSON escape that is not a NUL (an escaped backslash followed by "u0000") is plain text.
        response = await client.post(
            "/v1/parking/guard/notes", content=b'{"text": "\\\\u0000"}', headers={"content-type": "application/json"}
        )
        assert response.status_code == 201, response.text
        assert response.json() == {"text": "\\u0000"}
        assert (await client.post("/v1/parking/guard/forms", data={"name": "ok"})).status_code == 201
        assert (await client.get("/v1/parking/guard/count")).json() == {"count": 2}


async def test_a_real_service_refuses_nul_before_touching_the_database(service_app, tokens) -> None:
    school = tokens.bearer(tokens.client("demo-school", ["tuition.students.write", "tuition.invoices.write"]))
    async with running(service_app("tuition")) as client:
        _names_field(await client.get("/v1/tuition/students/a%00b", headers=school), "path.student_id")
        _names_field(
            await client.get("/v1/tuition/students", params={"class_name": "1A\x00"}, headers=school),
            "query.class_name",
        )
        round_ = {"code": "HK1-2026", "name": "Term\x00 1", "term": "2026-1", "due_dates": ["2030-09-30"]}
        _names_field(await client.post("/v1/tuition/rounds", json=round_, headers=school), "body.name")
        listed = await client.get("/v1/tuition/rounds", headers=school)
        assert listed.status_code == 200 and listed.json()["items"] == []


async def test_unusable_datetimes_are_a_422_naming_the_field() -> None:
    def plan(*starts: str, extra: tuple[str, ...] = ()) -> dict[str, object]:
        return {"windows": [{"start_at": s, "extra": list(extra)} for s in starts]}

    async with running(make_app()) as client:
        for raw, message in [
            ("2030-01-01T08:00:00", "Give a time zone"),
            ("0001-01-01T00:00:00+14:00", "out of range"),
            ("9999-12-31T23:59:59-12:00", "out of range"),
            ("9999-12-31T23:59:59Z", "out of range"),
        ]:
            response = await client.get("/v1/parking/guard/since", params={"from": raw})
            assert response.status_code == 422, (raw, response.text)
            assert response.json()["errors"][0]["field"] == "query.from"
            assert message in response.json()["errors"][0]["message"]
            response = await client.post("/v1/parking/guard/plans", json=plan("2030-01-01T08:00:00+07:00", raw))
            assert response.status_code == 422, (raw, response.text)
            assert [e["field"] for e in response.json()["errors"]] == ["body.windows.1.start_at"]
        nested = await client.post(
            "/v1/parking/guard/plans", json=plan("2030-01-01T08:00:00Z", extra=("2030-01-01T08:00:00Z", "2030-01-02"))
        )
        assert [e["field"] for e in nested.json()["errors"]] == ["body.windows.0.extra.1"]
        assert (await client.get("/v1/parking/guard/count")).json() == {"count": 0}
        # Zoned times in range pass, and text that is not a date-time is left to the normal validation.
        ok = await client.post("/v1/parking/guard/plans", json=plan("2030-01-01T08:00:00+07:00", "1900-01-01T00:00Z"))
        assert ok.status_code == 201, ok.text
        assert (await client.get("/v1/parking/guard/since", params={"from": "1800-01-01T00:00:00Z"})).json() == {
            "count": 2
        }
        garbage = await client.get("/v1/parking/guard/since", params={"from": "yesterday"})
        assert garbage.status_code == 422 and garbage.json()["errors"][0]["type"] == "datetime_from_date_parsing"


async def test_database_errors_do_not_carry_parameters_into_logs(database_urls: dict[str, str]) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from shared.db import create_engine

    engine = create_engine(database_urls["parking"])
    secret = "citizen-079123456789"
    try:
        async with engine.connect() as conn:
            await conn.execute(text("CREATE TEMPORARY TABLE guard_probe (x VARCHAR(40) PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO guard_probe (x) VALUES (:x)"), {"x": secret})
            try:
                await conn.execute(text("INSERT INTO guard_probe (x) VALUES (:x)"), {"x": secret})
            except DBAPIError as exc:
                message = str(exc)
            else:
                raise AssertionError("a duplicate key must fail")
    finally:
        await engine.dispose()
    assert "INSERT INTO guard_probe" in message  # the statement is still there to debug with
    assert secret not in message
