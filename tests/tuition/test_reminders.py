"""Reminders before the due date and when overdue: once per invoice and stage, none once paid."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import FastAPI

from services.tuition.common import VN_TZ
from services.tuition.reminders.service import send_reminders
from shared.events import stream_for
from shared.redis import create_redis
from tests.helpers.asgi import running
from tests.helpers.tokens import TokenFactory
from tests.tuition.conftest import Guardian, School, build_tuition, student_row, wait_for


def at_noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=VN_TZ).astimezone(UTC)


async def published(redis_url: str) -> list[dict[str, Any]]:
    redis = create_redis(redis_url)
    try:
        entries = await redis.xrange(stream_for("tuition"))
    finally:
        await redis.aclose()
    events = [json.loads(fields[b"event"]) for _, fields in entries]
    return [e for e in events if e["type"] == "notification.requested"]


async def sweep(app: FastAPI, now: datetime) -> int:
    return await send_reminders(app.state.db, app.state.outbox, app.state.tuition.settings, now)


async def test_due_soon_then_overdue_each_once_to_every_guardian(
    school: School, guardian_factory: Callable[[str], Guardian], tuition_app: FastAPI, redis_url: str
) -> None:
    [child] = await school.students(student_row("HS001"))
    due = date.today() + timedelta(days=10)
    rnd = await school.round(due_dates=[due])
    invoice = await school.invoice(rnd["id"], "HS001", ("tuition", "Học phí", 1_500_000))
    mother, father = guardian_factory("mother"), guardian_factory("father")
    for parent in (mother, father):
        await parent.link(await school.link_code(child["id"]))

    assert await sweep(tuition_app, at_noon(due - timedelta(days=5))) == 0  # too early
    assert await sweep(tuition_app, at_noon(due - timedelta(days=2))) == 2
    assert await sweep(tuition_app, at_noon(due - timedelta(days=1))) == 0  # same stage: never twice
    assert await sweep(tuition_app, at_noon(due)) == 0
    assert await sweep(tuition_app, at_noon(due + timedelta(days=1))) == 2
    assert await sweep(tuition_app, at_noon(due + timedelta(days=7))) == 0

    events = await wait_for(lambda: _at_least(redis_url, 4))
    assert sorted((e["data"]["sub"], e["data"]["dedupe_key"].split(":")[2]) for e in events) == [
        ("father", "due_soon"),
        ("father", "overdue"),
        ("mother", "due_soon"),
        ("mother", "overdue"),
    ]
    first = events[0]["data"]
    assert first["kind"] == "tuition.reminder" and "1.500.000" in first["message"]["vi"]
    assert first["message"]["en"] and events[0]["subject"] == invoice["id"]
    assert (await school.get_invoice(invoice["id"]))["status"] == "overdue"


async def _at_least(redis_url: str, n: int) -> list[dict[str, Any]] | None:
    events = await published(redis_url)
    return events if len(events) >= n else None


async def test_no_reminders_for_paid_or_void_invoices(
    school: School, guardian_factory: Callable[[str], Guardian], tuition_app: FastAPI
) -> None:
    a, b = await school.students(student_row("HS001"), student_row("HS002"))
    due = date.today() + timedelta(days=1)
    rnd = await school.round(due_dates=[due])
    await school.client.post(
        f"/v1/tuition/students/{a['id']}/exemptions",
        headers=school.headers,
        json={"category": "disabled", "evidence_ref": "GXN khuyết tật 12/2025"},
    )
    exempt = await school.invoice(rnd["id"], "HS001", ("tuition", "Học phí", 1_000_000))
    assert exempt["status"] == "paid"  # 100 % exempt: nothing to pay
    voided = await school.invoice(rnd["id"], "HS002", ("meals", "Tiền ăn", 300_000))
    await school.client.post(
        f"/v1/tuition/invoices/{voided['id']}/void", headers=school.headers, json={"reason": "Nhập nhầm"}
    )
    parent = guardian_factory("parent")
    for child in (a, b):
        await parent.link(await school.link_code(child["id"]))
    assert await sweep(tuition_app, at_noon(due)) == 0
    assert await sweep(tuition_app, at_noon(due + timedelta(days=3))) == 0


async def test_instalments_are_reminded_per_instalment(
    school: School, guardian_factory: Callable[[str], Guardian], tuition_app: FastAPI
) -> None:
    [child] = await school.students(student_row("HS001"))
    first, second = date.today() + timedelta(days=20), date.today() + timedelta(days=50)
    rnd = await school.round(due_dates=[first, second])
    invoice = await school.invoice(rnd["id"], "HS001", ("tuition", "Học phí", 1_000_001))
    assert [i["amount_vnd"] for i in invoice["instalments"]] == [500_001, 500_000]
    assert invoice["next_instalment_vnd"] == 500_001
    await guardian_factory("parent").link(await school.link_code(child["id"]))
    assert await sweep(tuition_app, at_noon(first - timedelta(days=1))) == 1  # due_soon:1
    assert await sweep(tuition_app, at_noon(first + timedelta(days=1))) == 1  # overdue:1
    assert await sweep(tuition_app, at_noon(first + timedelta(days=2))) == 0


async def test_a_guardian_who_links_later_still_gets_the_reminder(
    school: School, guardian_factory: Callable[[str], Guardian], tuition_app: FastAPI
) -> None:
    [child] = await school.students(student_row("HS001"))
    due = date.today() + timedelta(days=2)
    rnd = await school.round(due_dates=[due])
    await school.invoice(rnd["id"], "HS001", ("tuition", "Học phí", 700_000))
    assert await sweep(tuition_app, at_noon(due - timedelta(days=1))) == 0  # nobody to tell yet
    await guardian_factory("parent").link(await school.link_code(child["id"]))
    assert await sweep(tuition_app, at_noon(due - timedelta(days=1))) == 1


async def test_the_app_sends_reminders_in_the_background(tokens: TokenFactory, redis_url: str) -> None:
    async with running(build_tuition(tokens, reminder_interval_s=0.2)) as client:
        school = School(client, tokens)
        [child] = await school.students(student_row("HS001"))
        rnd = await school.round(due_dates=[date.today() + timedelta(days=1)])
        await school.invoice(rnd["id"], "HS001", ("meals", "Tiền ăn", 450_000))
        await Guardian(client, tokens, "parent").link(await school.link_code(child["id"]))
        events = await wait_for(lambda: _at_least(redis_url, 1))
        assert events[0]["data"]["sub"] == "parent"
        assert events[0]["data"]["dedupe_key"].endswith(":due_soon:1:parent")
