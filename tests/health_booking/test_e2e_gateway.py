"""End to end through the gateway, every service on a real port: a parent registers with Da Nang ID and
signs in on the mobile app, registers a child, finds a slot, books it for the child, pays on the sandbox
wallet page; the appointment becomes booked; the hospital checks the child in and attaches a visit summary;
the parent reads it."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
from fastapi import FastAPI

from dncity.cli import database_url
from services.identity.clients.schemas import ClientCreate
from services.identity.clients.service import create_client
from shared.db import Database
from tests.helpers.live import LiveServer
from tests.helpers.platform import live_platform
from tests.identity.helpers import PASSWORD, citizen_body, citizen_id
from tests.oauth.flow import auth_params, authorize, pkce, query_of

REDIRECT = "http://127.0.0.1/callback"


async def register_clients() -> dict[str, str]:
    """The hospital, the health service's own client and the mobile app, in identity's registry."""
    found = {"e2e-hospital": secrets.token_urlsafe(32), "svc-health_booking": secrets.token_urlsafe(32)}
    db = Database(database_url("identity"))
    try:
        async with db.sessionmaker() as session, session.begin():
            await create_client(
                session,
                ClientCreate(
                    client_id="e2e-hospital",
                    name="Bệnh viện E2E",
                    client_type="confidential",
                    grant_types=["client_credentials"],
                    scopes=["health.schedules.write", "health.records.write"],
                ),
                secret=found["e2e-hospital"],
            )
            await create_client(
                session,
                ClientCreate(
                    client_id="svc-health_booking",
                    name="Platform service: health_booking",
                    client_type="confidential",
                    grant_types=["client_credentials"],
                    scopes=["payments.write"],
                ),
                secret=found["svc-health_booking"],
            )
            await create_client(
                session,
                ClientCreate(
                    client_id="e2e-health-mobile",
                    name="Super-app (health e2e)",
                    client_type="public",
                    grant_types=["authorization_code", "refresh_token"],
                    redirect_uris=[REDIRECT],
                    scopes=["openid", "profile", "health", "payments"],
                ),
            )
    finally:
        await db.dispose()
    return found


async def eventually(check: Callable[[], Any], timeout: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.2)


async def test_parent_books_pays_and_reads_the_childs_visit_summary_through_the_gateway(
    service_app: Callable[..., FastAPI],
) -> None:
    client_secrets = await register_clients()
    # An identity server whose own token checks work (the session server's JWKS URL predates its port).
    identity = LiveServer(service_app("identity")).start()
    saved = {k: os.environ.get(k) for k in ("DNCITY_IDENTITY_URL", "DNCITY_HEALTH_BOOKING_CLIENT_SECRET")}
    os.environ["DNCITY_IDENTITY_URL"] = identity.url
    os.environ["DNCITY_HEALTH_BOOKING_CLIENT_SECRET"] = client_secrets["svc-health_booking"]
    try:
        with live_platform() as platform:
            async with httpx.AsyncClient(base_url=platform.gateway, timeout=30) as gw:
                await _run(gw, client_secrets)
    finally:
        identity.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def _run(gw: httpx.AsyncClient, client_secrets: dict[str, str]) -> None:
    # The hospital publishes its directory entry and a schedule (client credentials via the gateway).
    token = await gw.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "health.schedules.write health.records.write"},
        auth=("e2e-hospital", client_secrets["e2e-hospital"]),
    )
    assert token.status_code == 200, token.text
    hospital = {"Authorization": f"Bearer {token.json()['access_token']}"}
    fac = await gw.post(
        "/v1/health/agency/facilities",
        headers=hospital,
        json={
            "name": "Bệnh viện Phụ sản - Nhi E2E",
            "kind": "hospital",
            "address": "402 Lê Văn Hiến",
            "lat": 16.0195,
            "lon": 108.2530,
            "prepayment_required": True,
            "min_notice_minutes": 60,
        },
    )
    assert fac.status_code == 201, fac.text
    doc = await gw.post(
        f"/v1/health/agency/facilities/{fac.json()['id']}/practitioners",
        headers=hospital,
        json={"name": "BS. Lê Minh Châu", "specialties": ["pediatrics"], "languages": ["vi", "en"]},
    )
    assert doc.status_code == 201, doc.text
    schedule = await gw.post(
        f"/v1/health/agency/facilities/{fac.json()['id']}/schedules",
        headers=hospital,
        json={
            "practitioner_id": doc.json()["id"],
            "specialty": "pediatrics",
            "weekdays": list(range(7)),
            "start_time": "08:00",
            "end_time": "11:00",
            "slot_minutes": 30,
            "fee_vnd": 120_000,
            "valid_from": date.today().isoformat(),
        },
    )
    assert schedule.status_code == 201, schedule.text

    # The parent registers (SMS code from the dev outbox) and signs in on the mobile app (code + PKCE).
    body = citizen_body(full_name="Nguyễn Thị Hoa")
    registered = await gw.post("/v1/identity/registrations", json=body)
    assert registered.status_code == 201, registered.text
    outbox = await gw.get("/v1/dev/outbox", params={"to": registered.json()["phone"]})
    match = re.search(r"\b(\d{6})\b", outbox.json()[0]["body"])
    assert match, outbox.text
    verified = await gw.post(
        f"/v1/identity/registrations/{registered.json()['id']}/verify", json={"code": match.group(1)}
    )
    assert verified.status_code == 200, verified.text
    verifier, challenge = pkce()
    params = auth_params("e2e-health-mobile", REDIRECT, scope="openid profile health", challenge=challenge)
    location = await authorize(gw, params, login=registered.json()["phone"], password=PASSWORD)
    exchanged = await gw.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(location)["code"],
            "redirect_uri": REDIRECT,
            "client_id": "e2e-health-mobile",
            "code_verifier": verifier,
        },
    )
    assert exchanged.status_code == 200, exchanged.text
    parent = {"Authorization": f"Bearer {exchanged.json()['access_token']}"}
    child = await gw.post(
        "/v1/identity/me/dependents",
        headers=parent,
        json={"full_name": "Nguyễn Gia Bảo", "date_of_birth": "2019-02-03", "citizen_id": citizen_id(date(2019, 2, 3))},
    )
    assert child.status_code == 201, child.text
    child_id = child.json()["id"]

    # Find an English-speaking paediatrician's slot (browsable without signing in) and book it for the child.
    slots = await gw.get("/v1/health/slots", params={"specialty": "pediatrics", "language": "en"})
    assert slots.status_code == 200, slots.text
    slot = slots.json()["items"][0]
    booked = await gw.post(
        "/v1/health/appointments",
        headers={**parent, "Idempotency-Key": "e2e-book-1"},
        json={"slot_id": slot["id"], "patient": child_id, "reason": "Ho, sốt nhẹ"},
    )
    assert booked.status_code == 201, booked.text
    appt = booked.json()
    assert appt["status"] == "pending_payment" and appt["patient_kind"] == "dependent"

    # Pay on the sandbox wallet page; the payment event books the appointment.
    async with httpx.AsyncClient() as browser:
        paid = await browser.post(appt["payment"]["url"], data={"decision": "approve"})
    assert paid.status_code == 200, paid.text

    async def is_booked() -> dict[str, Any] | None:
        current = (await gw.get(f"/v1/health/appointments/{appt['id']}", headers=parent)).json()
        return current if current.get("status") == "booked" else None

    confirmed = await eventually(is_booked)
    assert confirmed and confirmed["paid_vnd"] == 120_000 and confirmed["queue_number"] == 1
    upcoming = await gw.get("/v1/health/appointments", params={"upcoming": "true"}, headers=parent)
    assert [a["id"] for a in upcoming.json()["items"]] == [appt["id"]]
    overview = (await gw.get("/v1/me/overview", headers=parent)).json()
    assert overview["appointments"]["status"] == "ok"
    assert [a["id"] for a in overview["appointments"]["data"]["items"]] == [appt["id"]]

    # The hospital checks the child in and attaches a visit summary; the parent reads it.
    arrived = await gw.post(f"/v1/health/agency/appointments/{appt['id']}/arrive", headers=hospital)
    assert arrived.status_code == 200, arrived.text
    record = await gw.post(
        f"/v1/health/agency/appointments/{appt['id']}/records",
        headers=hospital,
        json={"title": "Khám nhi", "summary": "Viêm họng nhẹ; súc miệng nước muối."},
    )
    assert record.status_code == 201, record.text
    records = await gw.get("/v1/health/me/records", params={"patient": child_id}, headers=parent)
    assert records.status_code == 200, records.text
    assert records.json()["records"][0]["summary"] == "Viêm họng nhẹ; súc miệng nước muối."
    log = await gw.get("/v1/health/me/records/access-log", params={"patient": child_id}, headers=parent)
    assert [e["accessor_role"] for e in log.json()["items"]] == ["guardian"]
