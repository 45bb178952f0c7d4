"""GET /v1/me/overview: five services asked in parallel with the person's token; a failing or slow one is
marked unavailable and the rest is still answered."""

from __future__ import annotations

import time

from tests.helpers.tokens import TokenFactory

SCOPES = ["openid", "parking", "health", "tuition", "payments"]


def seed_bodies(upstream) -> None:
    upstream.bodies["/v1/identity/me"] = {"sub": "u1", "full_name": "Nguyễn Văn An", "level": 1}
    upstream.bodies["/v1/parking/reservations"] = {"items": [{"id": "r1"}], "next_cursor": None}
    upstream.bodies["/v1/health/appointments"] = {"items": [{"id": "a1"}], "next_cursor": None}
    upstream.bodies["/v1/tuition/me/invoices"] = {"items": [{"id": "i1"}, {"id": "i2"}], "next_cursor": None}
    upstream.bodies["/v1/payments"] = {"items": [], "next_cursor": None}


async def test_overview_gathers_every_part_with_the_users_token(start_gateway, upstream, tokens) -> None:
    gw = start_gateway()
    seed_bodies(upstream)
    token = tokens.user("u1", SCOPES)
    async with gw.client() as client:
        response = await client.get("/v1/me/overview", headers=tokens.bearer(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["profile"] == {"status": "ok", "data": upstream.bodies["/v1/identity/me"], "error": None}
    assert body["parking_reservations"]["data"]["items"] == [{"id": "r1"}]
    assert body["appointments"]["data"]["items"] == [{"id": "a1"}]
    assert len(body["tuition_invoices"]["data"]["items"]) == 2
    assert body["payments"] == {"status": "ok", "data": {"items": [], "next_cursor": None}, "error": None}
    paths = sorted(f"{c['path']}?{c['query']}" if c["query"] else c["path"] for c in upstream.calls)
    assert paths == sorted(
        [
            "/v1/identity/me",
            "/v1/parking/reservations?upcoming=true",
            "/v1/health/appointments?upcoming=true",
            "/v1/tuition/me/invoices?status=open",
            "/v1/payments?limit=5",
        ]
    )
    for call in upstream.calls:
        assert call["headers"]["authorization"] == f"Bearer {token}"
        assert call["headers"]["x-request-id"] == response.headers["x-request-id"]


async def test_overview_with_one_service_down(start_gateway, upstream, tokens, dead_url) -> None:
    gw = start_gateway(urls={"health_booking": dead_url})
    seed_bodies(upstream)
    async with gw.client() as client:
        response = await client.get("/v1/me/overview", headers=tokens.bearer(tokens.user("u1", SCOPES)))
    assert response.status_code == 200
    body = response.json()
    assert body["appointments"] == {"status": "unavailable", "data": None, "error": "upstream_unavailable"}
    for part in ("profile", "parking_reservations", "tuition_invoices", "payments"):
        assert body[part]["status"] == "ok", part


async def test_overview_with_a_slow_and_a_failing_service(start_gateway, upstream, tokens) -> None:
    gw = start_gateway(overview_part_timeout_s=0.4)
    seed_bodies(upstream)
    upstream.delays["/v1/tuition/"] = 3.0
    upstream.statuses["/v1/payments"] = 500
    upstream.statuses["/v1/parking/"] = 403
    async with gw.client() as client:
        started = time.monotonic()
        response = await client.get("/v1/me/overview", headers=tokens.bearer(tokens.user("u1", SCOPES)))
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    body = response.json()
    assert elapsed < 1.5  # the parts run in parallel and the slow one is given up at its deadline
    assert body["tuition_invoices"] == {"status": "unavailable", "data": None, "error": "timeout"}
    assert body["payments"] == {"status": "unavailable", "data": None, "error": "http_500"}
    assert body["parking_reservations"] == {"status": "forbidden", "data": None, "error": "http_403"}
    assert body["profile"]["status"] == "ok" and body["appointments"]["status"] == "ok"


async def test_overview_needs_a_persons_token(start_gateway, upstream, tokens: TokenFactory) -> None:
    gw = start_gateway()
    async with gw.client() as client:
        anonymous = await client.get("/v1/me/overview")
        agency = await client.get("/v1/me/overview", headers=tokens.bearer(tokens.client("demo-school", ["tuition"])))
        post = await client.post("/v1/me/overview", headers=tokens.bearer(tokens.user("u1", SCOPES)))
    assert anonymous.status_code == 401
    assert agency.status_code == 403 and agency.json()["code"] == "user_token_required"
    assert post.status_code == 405
    assert upstream.calls == []


async def test_overview_is_in_the_aggregated_openapi(start_gateway, upstream) -> None:
    gw = start_gateway()
    async with gw.client() as client:
        doc = (await client.get("/openapi.json")).json()
    operation = doc["paths"]["/v1/me/overview"]["get"]
    assert operation["operationId"] == "get_my_overview"
    assert "401" in operation["responses"] and "200" in operation["responses"]
