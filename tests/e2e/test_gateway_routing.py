"""Through the gateway over real HTTP: every service reachable, errors as problem+json, ids echoed."""

from __future__ import annotations

import httpx

from tests.helpers.platform import LivePlatform


async def test_gateway_health_reports_every_service(platform: LivePlatform) -> None:
    async with httpx.AsyncClient(base_url=platform.gateway) as client:
        health = await client.get("/healthz")
        assert health.status_code == 200, health.text
        assert set(health.json()["services"]) == {"identity", "payments", "parking", "health_booking", "tuition"}
        assert set(health.json()["services"].values()) == {"ok"}


async def test_gateway_forwards_to_each_service_and_echoes_request_id(platform: LivePlatform) -> None:
    async with httpx.AsyncClient(base_url=platform.gateway) as client:
        jwks = await client.get("/oauth2/jwks", headers={"X-Request-ID": "e2e-1"})
        assert jwks.status_code == 200 and jwks.json()["keys"]
        assert jwks.headers["x-request-id"] == "e2e-1"
        for prefix in ("/v1/payments", "/v1/parking", "/v1/health", "/v1/tuition", "/v1/identity"):
            # Reaches the service (or the gateway's policy for that prefix), never a bare 404 page.
            missing = await client.get(f"{prefix}/no-such-thing")
            assert missing.status_code in (401, 404), prefix
            assert missing.headers["content-type"] == "application/problem+json"
        unknown = await client.get("/v2/whatever")
        assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"


async def test_gateway_refuses_oversized_bodies(platform: LivePlatform) -> None:
    async with httpx.AsyncClient(base_url=platform.gateway) as client:
        response = await client.post(
            "/v1/parking/dev/events/ping",
            content=b"x" * (2 * 1024 * 1024),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413 and response.json()["code"] == "payload_too_large"


async def test_aggregated_openapi_covers_every_service(platform: LivePlatform) -> None:
    async with httpx.AsyncClient(base_url=platform.gateway) as client:
        doc = (await client.get("/openapi.json")).json()
        paths = set(doc["paths"])
        for prefix in ("/v1/identity/", "/v1/payments/", "/v1/parking/", "/v1/health/", "/v1/tuition/"):
            assert any(p.startswith(prefix) for p in paths), prefix
        assert doc["info"]["x-services-unavailable"] == []
        # What the gateway itself may answer is declared on each forwarded operation.
        reserve = doc["paths"]["/v1/parking/reservations"]["post"]["responses"]
        assert {"401", "403", "413", "429", "502", "503", "504"} <= set(reserve)
        search = doc["paths"]["/v1/parking/lots"]["get"]["responses"]
        assert "429" in search and "401" not in search  # public at the edge
        assert "Problem" in doc["components"]["schemas"]
        docs = await client.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
