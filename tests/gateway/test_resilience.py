"""Timeouts, retries, circuit breakers, body limits, request ids, trace context, spoofed headers, CORS and
security headers — observed from outside, against a real upstream on a real port."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.helpers.tokens import TokenFactory

SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "referrer-policy", "content-security-policy")


async def test_slow_upstream_is_504_within_the_route_timeout(start_gateway, upstream, override_route) -> None:
    override_route("GET", "/v1/parking/lots", timeout_s=0.3)
    gw = start_gateway()
    upstream.delays["/v1/parking/lots"] = 2.0
    async with gw.client() as client:
        started = time.monotonic()
        response = await client.get("/v1/parking/lots")
        elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert response.json()["code"] == "upstream_timeout"
    assert elapsed < 1.0  # answered at the deadline, not when the upstream finally replied


async def test_idempotent_requests_are_retried_once_and_posts_never(start_gateway, upstream, tokens) -> None:
    gw = start_gateway(breaker_failure_threshold=100)
    user = tokens.bearer(tokens.user("u1", ["parking"]))
    upstream.statuses["/v1/parking/"] = 503
    async with gw.client() as client:
        get = await client.get("/v1/parking/reservations", headers=user)
        gets = len(upstream.calls)
        post = await client.post("/v1/parking/reservations/r1/cancel", headers=user)
    assert get.status_code == 503 and post.status_code == 503  # the service's own answer, passed on
    assert gets == 2  # the GET was tried twice
    assert len(upstream.calls) == 3  # the POST once


async def test_unreachable_upstream_is_502(start_gateway, upstream, dead_url) -> None:
    gw = start_gateway(urls={"parking": dead_url})
    async with gw.client() as client:
        response = await client.get("/v1/parking/lots")
    assert response.status_code == 502
    assert response.json()["code"] == "upstream_unavailable"


async def test_circuit_breaker_opens_half_opens_and_closes(start_gateway, upstream) -> None:
    gw = start_gateway(breaker_failure_threshold=3, breaker_open_s=0.5)
    upstream.statuses["/v1/parking/"] = 502
    async with gw.client() as client:
        failures = [(await client.get("/v1/parking/lots")).status_code for _ in range(3)]
        assert failures == [502, 502, 502]
        calls_when_opened = len(upstream.calls)
        # Open: refused at once with 503 problem+json and Retry-After, nothing sent upstream.
        refused = await client.get("/v1/parking/lots")
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "circuit_open"
        assert refused.headers["retry-after"] == "1"
        assert len(upstream.calls) == calls_when_opened
        # Other upstreams are unaffected.
        assert (await client.get("/.well-known/openid-configuration")).status_code == 200
        metrics = (await client.get("/metrics")).text
        assert 'gateway_circuit_open{upstream="parking"} 1.0' in metrics
        # Half-open after open_s: one probe goes through; it fails, so the circuit opens again.
        await asyncio.sleep(0.55)
        probe = await client.get("/v1/parking/lots")
        assert probe.status_code == 502
        assert (await client.get("/v1/parking/lots")).json()["code"] == "circuit_open"
        # The service recovers: the next probe succeeds and closes the circuit.
        upstream.statuses.clear()
        await asyncio.sleep(0.55)
        upstream.delays["/v1/parking/lots"] = 0.3
        probe, concurrent = await asyncio.gather(client.get("/v1/parking/lots"), _later(client, "/v1/parking/lots"))
        assert probe.status_code == 200
        assert concurrent.status_code == 503  # only one probe at a time while half-open
        upstream.delays.clear()
        assert [(await client.get("/v1/parking/lots")).status_code for _ in range(3)] == [200, 200, 200]
        metrics = (await client.get("/metrics")).text
        assert 'gateway_circuit_open{upstream="parking"} 0.0' in metrics


async def _later(client: httpx.AsyncClient, path: str) -> httpx.Response:
    await asyncio.sleep(0.1)
    return await client.get(path)


async def test_oversized_body_is_413_and_not_forwarded(start_gateway, upstream, tokens) -> None:
    gw = start_gateway(max_body_bytes=1000)
    user = tokens.bearer(tokens.user("u1", ["parking"]))

    async def chunked():
        for _ in range(5):
            yield b"x" * 400

    async with gw.client() as client:
        declared = await client.post("/v1/parking/reservations/r1/cancel", content=b"x" * 1001, headers=user)
        streamed = await client.post("/v1/parking/reservations/r1/cancel", content=chunked(), headers=user)
        fits = await client.post("/v1/parking/reservations/r1/cancel", content=b"x" * 1000, headers=user)
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"
    assert fits.status_code == 200
    assert len(upstream.calls) == 1


async def test_spoofed_identity_and_forwarding_headers_are_stripped(start_gateway, upstream, tokens) -> None:
    gw = start_gateway()
    spoofed = {
        "X-Dncity-Sub": "admin",
        "X-Dncity-Scopes": "clients.admin",
        "X-User-Id": "victim",
        "X-Client-Id": "demo-hospital",
        "X-Authenticated-User": "victim",
        "X-Auth-Request-User": "victim",
        "X-Remote-User": "victim",
        "X-Forwarded-For": "10.0.0.1",
        "X-Forwarded-Host": "evil.example",
        "X-Real-IP": "10.0.0.1",
        "Forwarded": "for=10.0.0.1",
        "X-Original-URL": "/v1/identity/clients",
        "X-HTTP-Method-Override": "DELETE",
        "X-Internal-Token": "x",
    }
    async with gw.client() as client:
        response = await client.get(
            "/v1/parking/reservations",
            headers={**spoofed, **tokens.bearer(tokens.user("u1", ["parking"])), "X-App-Version": "2.1"},
        )
    assert response.status_code == 200
    seen = upstream.calls[0]["headers"]
    for name in spoofed:
        if name.lower() in ("x-forwarded-for", "x-forwarded-host"):
            continue
        assert name.lower() not in seen, name
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-host"] == gw.url.removeprefix("http://")
    assert seen["x-app-version"] == "2.1"  # ordinary headers pass


async def test_request_id_accepted_or_generated_and_traceparent_continued(start_gateway, upstream) -> None:
    gw = start_gateway()
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    async with gw.client() as client:
        given = await client.get(
            "/v1/parking/lots",
            headers={"X-Request-ID": "app-123.abc", "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
        )
        generated = await client.get("/v1/parking/lots", headers={"X-Request-ID": "bad id with spaces"})
        refused = await client.get("/v1/parking/reservations", headers={"X-Request-ID": "app-456"})
    assert given.headers["x-request-id"] == "app-123.abc"
    sent = upstream.calls[0]["headers"]
    assert sent["x-request-id"] == "app-123.abc"
    assert sent["traceparent"].startswith(f"00-{trace_id}-") and sent["traceparent"] != given.headers["traceparent"]
    assert given.headers["traceparent"].startswith(f"00-{trace_id}-")
    assert "00f067aa0ba902b7" not in sent["traceparent"]  # a new span for the hop
    assert generated.headers["x-request-id"] != "bad id with spaces"
    assert len(generated.headers["x-request-id"]) == 32
    assert upstream.calls[1]["headers"]["x-request-id"] == generated.headers["x-request-id"]
    # Refusals at the edge carry the id too, in the header and in the problem body.
    assert refused.headers["x-request-id"] == "app-456" and refused.json()["request_id"] == "app-456"


async def test_cors_only_for_configured_origins_and_never_on_authorize(start_gateway, upstream) -> None:
    app_origin = "https://app.danang.gov.vn"
    gw = start_gateway(cors_origins=[app_origin])
    preflight = {
        "Origin": app_origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with gw.client() as client:
        allowed = await client.get("/v1/parking/lots", headers={"Origin": app_origin})
        other = await client.get("/v1/parking/lots", headers={"Origin": "https://evil.example"})
        ok_pre = await client.options("/v1/parking/reservations", headers=preflight)
        bad_pre = await client.options(
            "/v1/parking/reservations", headers={**preflight, "Origin": "https://evil.example"}
        )
        authorize_pre = await client.options("/oauth2/authorize", headers=preflight)
        authorize = await client.get("/oauth2/authorize", headers={"Origin": app_origin})
    assert allowed.headers["access-control-allow-origin"] == app_origin
    assert "x-request-id" in allowed.headers["access-control-expose-headers"]
    assert "access-control-allow-origin" not in other.headers
    assert ok_pre.status_code == 204
    assert ok_pre.headers["access-control-allow-origin"] == app_origin
    assert "POST" in ok_pre.headers["access-control-allow-methods"]
    assert "authorization" in ok_pre.headers["access-control-allow-headers"]
    for response in (bad_pre, authorize_pre):
        assert response.status_code == 403
        assert "access-control-allow-origin" not in response.headers
    assert authorize.status_code == 200 and "access-control-allow-origin" not in authorize.headers
    assert all(c["method"] != "OPTIONS" for c in upstream.calls)  # preflights are answered at the edge


async def test_security_headers_on_every_response(start_gateway, upstream, tokens: TokenFactory) -> None:
    gw = start_gateway()
    upstream.bodies["/oauth2/login"] = "<html></html>"
    async with gw.client() as client:
        responses = [
            await client.get("/v1/parking/lots"),  # forwarded
            await client.get("/v1/parking/reservations"),  # refused at the edge (401)
            await client.get("/readyz"),  # the gateway's own endpoint
            await client.get("/no/such/path"),  # 404
        ]
    for response in responses:
        for name in SECURITY_HEADERS:
            assert name in response.headers, (response.request.url, name)
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
    assert responses[0].headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
