"""End to end through the gateway, every service on a real port: a school imports students and invoices,
a guardian signs in with Da Nang ID, links two children with codes, pays both invoices in one payment on
the sandbox wallet page, both invoices become paid and the school's report shows the money collected."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from typing import Any

import httpx

from dncity.cli import database_url
from services.identity.clients.schemas import ClientCreate
from services.identity.clients.service import create_client
from shared.db import Database
from tests.helpers.platform import live_platform
from tests.oauth.flow import PASSWORD, auth_params, authorize, pkce, query_of

REDIRECT = "http://127.0.0.1/callback"
PHONE = "+84905777888"


async def register_clients() -> dict[str, str]:
    """The school, the tuition service's own client and the mobile app, as identity's registry holds them."""
    secrets_by_id = {"e2e-school": secrets.token_urlsafe(32), "svc-tuition": secrets.token_urlsafe(32)}
    db = Database(database_url("identity"))
    try:
        async with db.sessionmaker() as session, session.begin():
            await create_client(
                session,
                ClientCreate(
                    client_id="e2e-school",
                    name="Trường THCS E2E",
                    client_type="confidential",
                    grant_types=["client_credentials"],
                    scopes=["tuition.students.write", "tuition.invoices.write"],
                ),
                secret=secrets_by_id["e2e-school"],
            )
            await create_client(
                session,
                ClientCreate(
                    client_id="svc-tuition",
                    name="Platform service: tuition",
                    client_type="confidential",
                    grant_types=["client_credentials"],
                    scopes=["payments.write"],
                ),
                secret=secrets_by_id["svc-tuition"],
            )
            await create_client(
                session,
                ClientCreate(
                    client_id="e2e-mobile",
                    name="Super-app (e2e)",
                    client_type="public",
                    grant_types=["authorization_code", "refresh_token"],
                    redirect_uris=[REDIRECT],
                    scopes=["openid", "profile", "phone", "tuition", "payments"],
                ),
            )
    finally:
        await db.dispose()
    return secrets_by_id


async def make_guardian() -> str:
    from services.identity.accounts.models import Account
    from services.identity.accounts.passwords import hash_password

    db = Database(database_url("identity"))
    try:
        async with db.sessionmaker() as session, session.begin():
            account = Account(
                kind="citizen",
                status="active",
                level=1,
                full_name="Nguyễn Thị Hoa",
                phone_e164=PHONE,
                phone_verified=True,
                citizen_id="048185009999",
                password_hash=await hash_password(PASSWORD),
                preferred_language="vi",
            )
            session.add(account)
            await session.flush()
            return str(account.id)
    finally:
        await db.dispose()


async def eventually(check: Any, timeout: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.2)


async def test_school_to_guardian_payment_through_the_gateway() -> None:
    client_secrets = await register_clients()
    guardian_sub = await make_guardian()
    saved = os.environ.get("DNCITY_TUITION_CLIENT_SECRET")
    os.environ["DNCITY_TUITION_CLIENT_SECRET"] = client_secrets["svc-tuition"]
    try:
        with live_platform() as platform:
            async with httpx.AsyncClient(base_url=platform.gateway, timeout=30) as gw:
                await _run(gw, client_secrets, guardian_sub)
    finally:
        if saved is None:
            os.environ.pop("DNCITY_TUITION_CLIENT_SECRET", None)
        else:
            os.environ["DNCITY_TUITION_CLIENT_SECRET"] = saved


async def _run(gw: httpx.AsyncClient, client_secrets: dict[str, str], guardian_sub: str) -> None:
    # The school authenticates with client credentials at Da Nang ID, through the gateway.
    token = await gw.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "tuition.students.write tuition.invoices.write"},
        auth=("e2e-school", client_secrets["e2e-school"]),
    )
    assert token.status_code == 200, token.text
    school = {"Authorization": f"Bearer {token.json()['access_token']}"}

    csv_students = (
        "student_code,personal_id,full_name,date_of_birth,grade,class_name\n"
        "E2E-001,048214001001,Nguyễn Gia Bảo,2013-04-01,6,6A\n"
        "E2E-002,048214001002,Nguyễn Gia Hân,2010-09-09,9,9C\n"
    )
    imported = await gw.post(
        "/v1/tuition/students/import", content=csv_students.encode(), headers={**school, "Content-Type": "text/csv"}
    )
    assert imported.status_code == 200, imported.text
    ids = {r["key"]: r["id"] for r in imported.json()["rows"]}
    rnd = await gw.post(
        "/v1/tuition/rounds",
        headers=school,
        json={"code": "E2E-HK1", "name": "Đợt thu HK1", "term": "2025-2026/HK1", "due_dates": ["2099-12-31"]},
    )
    assert rnd.status_code == 201, rnd.text
    lines = {
        "lines": [
            {"student_code": "E2E-001", "kind": "tuition", "description": "Học phí HK1", "amount_vnd": 3_000_000},
            {"student_code": "E2E-001", "kind": "meals", "description": "Bán trú", "amount_vnd": 900_000},
            {"student_code": "E2E-002", "kind": "tuition", "description": "Học phí HK1", "amount_vnd": 3_500_000},
        ]
    }
    invoices = await gw.post(f"/v1/tuition/rounds/{rnd.json()['id']}/invoices/import", headers=school, json=lines)
    assert invoices.status_code == 200, invoices.text
    codes = []
    for student_id in ids.values():
        issued = await gw.post(f"/v1/tuition/students/{student_id}/link-codes", headers=school)
        assert issued.status_code == 201, issued.text
        codes.append(issued.json()["code"])

    # The guardian signs in on the mobile app (authorization code + PKCE), through the gateway.
    verifier, challenge = pkce()
    params = auth_params("e2e-mobile", REDIRECT, scope="openid tuition payments", challenge=challenge)
    location = await authorize(gw, params, login=PHONE)
    code = query_of(location)["code"]
    exchanged = await gw.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": "e2e-mobile",
            "code_verifier": verifier,
        },
    )
    assert exchanged.status_code == 200, exchanged.text
    guardian = {"Authorization": f"Bearer {exchanged.json()['access_token']}"}

    for link_code in codes:
        linked = await gw.post("/v1/tuition/me/students", headers=guardian, json={"link_code": link_code})
        assert linked.status_code == 201, linked.text
    mine = (await gw.get("/v1/tuition/me/students", headers=guardian)).json()["items"]
    assert {s["student_code"] for s in mine} == {"E2E-001", "E2E-002"}
    open_invoices = (await gw.get("/v1/tuition/me/invoices", params={"status": "open"}, headers=guardian)).json()
    assert len(open_invoices["items"]) == 2
    overview = (await gw.get("/v1/me/overview", headers=guardian)).json()
    assert overview["tuition_invoices"]["status"] == "ok"
    assert len(overview["tuition_invoices"]["data"]["items"]) == 2

    # One payment for both children's invoices, approved on the sandbox wallet page.
    order = await gw.post(
        "/v1/tuition/me/payments",
        headers={**guardian, "Idempotency-Key": "e2e-pay-1"},
        json={"items": [{"invoice_id": i["id"]} for i in open_invoices["items"]]},
    )
    assert order.status_code == 201, order.text
    assert order.json()["amount_vnd"] == 7_400_000
    async with httpx.AsyncClient(timeout=30) as browser:
        approved = await browser.post(order.json()["payment_url"], data={"decision": "approve"})
    assert approved.status_code < 400, approved.text

    async def settled() -> dict[str, Any] | None:
        body = (await gw.get(f"/v1/tuition/me/payments/{order.json()['id']}", headers=guardian)).json()
        return body if body["status"] == "succeeded" else None

    assert await eventually(settled), "the payment was not settled"
    for invoice in open_invoices["items"]:
        seen = (await gw.get(f"/v1/tuition/invoices/{invoice['id']}", headers=guardian)).json()
        assert seen["status"] == "paid" and seen["outstanding_vnd"] == 0
    assert (await gw.get("/v1/tuition/me/invoices", params={"status": "open"}, headers=guardian)).json()["items"] == []
    payment = (await gw.get(f"/v1/payments/{order.json()['payment_id']}", headers=guardian)).json()
    assert payment["status"] == "succeeded" and payment["payer_sub"] == guardian_sub

    report = await gw.get("/v1/tuition/reports/collections", headers={**school, "Accept": "text/csv"})
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    as_json = (await gw.get("/v1/tuition/reports/collections", headers=school)).json()
    by_class = {r["class_name"]: (r["collected_vnd"], r["outstanding_vnd"]) for r in as_json["items"]}
    assert by_class == {"6A": (3_900_000, 0), "9C": (3_500_000, 0)}
