"""End to end through the gateway on real ports: register → sign in (OAuth code + PKCE) → search →
reserve → approve on the sandbox wallet page → confirmed; extend and cancel; a tourist the same way."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from dncity.cli import _with_identity_session, database_url
from dncity.embedded_redis import free_port
from dncity.seed import DEMO_CLIENTS, seed_parking
from services.identity.clients.models import OAuthClient
from services.identity.clients.schemas import ClientCreate
from services.identity.clients.service import create_client
from tests.helpers.live import LiveServer
from tests.identity.helpers import citizen_body, foreigner_body, register_and_verify
from tests.oauth.flow import auth_params, authorize, pkce, query_of
from tests.parking.conftest import tomorrow_at

REDIRECT = "http://127.0.0.1/callback"
PASSWORD_FIELD = "password"


class StartedServer(LiveServer):
    """A live server considered up once it listens: the gateway's /healthz is 503 while health booking
    and tuition (not needed here) are not running."""

    def start(self, timeout: float = 20.0) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.server.started:
            if not self.thread.is_alive():
                break
            time.sleep(0.05)
        if not self.server.started:
            raise RuntimeError(f"server on {self.url} did not start")
        return self


SVC_PARKING_SECRET = "e2e-" + secrets.token_urlsafe(32)


async def ensure_clients(session: AsyncSession) -> str:
    """The demo mobile app and svc-parking, as the demo seed registers them, with one secret for the whole
    session: identity caches clients for a while, so a client recreated with a new secret after a
    test emptied the tables would be refused until the cache entry expires."""
    for spec in DEMO_CLIENTS:
        if (
            spec["client_id"] in ("dncity-mobile", "svc-parking")
            and await session.get(OAuthClient, spec["client_id"]) is None
        ):
            secret = SVC_PARKING_SECRET if spec["client_type"] == "confidential" else None
            await create_client(session, ClientCreate(**spec), secret=secret)
    return SVC_PARKING_SECRET


@pytest.fixture
def gateway_platform(platform_env: dict[str, str]) -> Iterator[str]:
    """Payments, the sandbox provider, parking and the gateway on loopback ports (identity is already live
    for the session), with the demo clients seeded so parking signs in to payments as svc-parking."""
    from dncity.processes import FACTORIES
    from tests.helpers.platform import _load

    secret = asyncio.run(_with_identity_session(ensure_clients))
    names = ["sandbox_provider", "payments", "parking", "gateway"]
    ports = {name: free_port() for name in [*names, "health_booking", "tuition"]}
    env = {f"DNCITY_{name.upper()}_URL": f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env.update(
        {
            "DNCITY_PARKING_CLIENT_ID": "svc-parking",
            "DNCITY_PARKING_CLIENT_SECRET": secret,
            "DNCITY_SANDBOX_DATABASE": ":memory:",
        }
    )
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    servers: list[LiveServer] = []
    try:
        for name in names:
            server_type = StartedServer if name == "gateway" else LiveServer
            servers.append(server_type(_load(FACTORIES[name])(), port=ports[name]).start())
        yield env["DNCITY_GATEWAY_URL"]
    finally:
        for server in reversed(servers):
            server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
async def gateway(gateway_platform: str, database_urls: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    await seed_parking(database_url("parking"))
    async with httpx.AsyncClient(base_url=gateway_platform, timeout=30) as client:
        yield client


async def sign_in(gateway: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, str]:
    """Register and verify the phone, then sign in through the mobile app's code flow; bearer headers."""
    await register_and_verify(gateway, body)
    verifier, challenge = pkce()
    params = auth_params("dncity-mobile", REDIRECT, scope="openid parking", challenge=challenge)
    login = (await gateway.get("/v1/dev/outbox", params={"to": _e164(body["phone"])})).json()[0]["to"]
    location = await authorize(gateway, params, login=login, password=body[PASSWORD_FIELD])
    code = query_of(location)["code"]
    token = await gateway.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": "dncity-mobile",
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.text
    assert "parking" in token.json()["scope"].split()
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def _e164(phone: str) -> str:
    return "+84" + phone[1:] if phone.startswith("0") else phone


async def wait_status(
    gateway: httpx.AsyncClient, headers: dict[str, str], reservation_id: str, status: str, timeout: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = (await gateway.get(f"/v1/parking/reservations/{reservation_id}", headers=headers)).json()
        if body.get("status") == status:
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"reservation stayed {body.get('status')}: {body}")


async def book_and_pay(gateway: httpx.AsyncClient, headers: dict[str, str], plate: str) -> dict[str, Any]:
    window = {"start_at": tomorrow_at(20).isoformat(), "end_at": tomorrow_at(21).isoformat()}
    found = await gateway.get(
        "/v1/parking/lots", params={"lat": 16.0611, "lon": 108.2276, "radius_m": 800, "vehicle_type": "car", **window}
    )
    assert found.status_code == 200, found.text
    lot = next(i for i in found.json()["items"] if i["name"] == "Bãi đỗ xe Cầu Rồng")
    assert lot["quote"]["amount_vnd"] == 30_000
    availability = await gateway.get(
        f"/v1/parking/lots/{lot['id']}/availability", params={"vehicle_type": "car", **window}
    )
    space = next(s for s in availability.json()["free_spaces"] if not s["accessible"])
    created = await gateway.post(
        "/v1/parking/reservations",
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        json={
            "lot_id": lot["id"],
            "vehicle_type": "car",
            "plate_number": plate,
            "space_id": space["id"],
            "quote_token": lot["quote"]["quote_token"],
            **window,
        },
    )
    assert created.status_code == 201, created.text
    reservation = created.json()
    assert reservation["status"] == "pending_payment" and reservation["space"]["id"] == space["id"]
    # The payer approves on the sandbox wallet page (a browser form post).
    async with httpx.AsyncClient() as browser:
        page = await browser.get(reservation["payment"]["next_action"]["url"])
        assert page.status_code == 200
        approved = await browser.post(reservation["payment"]["next_action"]["url"], data={"decision": "approve"})
        assert approved.status_code == 200, approved.text
    return await wait_status(gateway, headers, reservation["id"], "confirmed")


async def test_resident_finds_books_pays_extends_and_cancels_through_the_gateway(gateway: httpx.AsyncClient) -> None:
    headers = await sign_in(gateway, citizen_body())
    confirmed = await book_and_pay(gateway, headers, "43A-123.45")
    upcoming = await gateway.get("/v1/parking/reservations", params={"upcoming": "true"}, headers=headers)
    assert upcoming.status_code == 200 and [i["id"] for i in upcoming.json()["items"]] == [confirmed["id"]]
    # Extend by an hour into the night band: a new payment, approved on the wallet page.
    extension = await gateway.post(
        f"/v1/parking/reservations/{confirmed['id']}/extensions",
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        json={"end_at": tomorrow_at(23).isoformat()},
    )
    assert extension.status_code == 201, extension.text
    assert extension.json()["amount_vnd"] == 50_000
    async with httpx.AsyncClient() as browser:
        await browser.post(extension.json()["payment"]["next_action"]["url"], data={"decision": "approve"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = (await gateway.get(f"/v1/parking/reservations/{confirmed['id']}", headers=headers)).json()
        if now["amount_vnd"] == 80_000:
            break
        await asyncio.sleep(0.2)
    assert now["amount_vnd"] == 80_000
    canceled = await gateway.post(f"/v1/parking/reservations/{confirmed['id']}/cancel", headers=headers)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled" and canceled.json()["refunded_vnd"] == 80_000


async def test_tourist_books_and_pays_through_the_gateway(gateway: httpx.AsyncClient) -> None:
    headers = await sign_in(gateway, foreigner_body())
    confirmed = await book_and_pay(gateway, headers, "KR 12가3456".replace("가", "GA"))
    assert confirmed["plate_normalized"] == "KR12GA3456"
