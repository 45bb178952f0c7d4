"""Per-route latency histograms and status counts on /metrics; one JSON access-log line per request."""

from __future__ import annotations

import json


async def test_metrics_count_statuses_and_latency_per_route(start_gateway, upstream, tokens) -> None:
    gw = start_gateway()
    async with gw.client() as client:
        await client.get("/v1/parking/lots/l1")
        await client.get("/v1/parking/lots/l2")
        await client.get("/v1/parking/reservations")  # 401
        metrics = (await client.get("/metrics")).text
    assert (
        'http_requests_total{method="GET",route="/v1/parking/lots/{id}",service="gateway",status="200"} 2.0' in metrics
    )
    assert 'http_requests_total{method="GET",route="/v1/parking/*",service="gateway",status="401"} 1.0' in metrics
    assert 'http_request_duration_seconds_count{method="GET",route="/v1/parking/lots/{id}",service="gateway"} 2.0' in (
        metrics
    )
    assert 'http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/parking/lots/{id}"' in metrics


async def test_one_json_access_log_line_per_request_without_tokens(start_gateway, upstream, tokens) -> None:
    gw = start_gateway()
    token = tokens.user("u1", ["parking"])
    async with gw.client() as client:
        ok = await client.get("/v1/parking/reservations", headers=tokens.bearer(token))
        await client.get("/v1/parking/reservations", headers=tokens.bearer(token + "x"))
        await client.get("/readyz")  # operations endpoints are not logged
    lines = [json.loads(line) for line in gw.log]
    assert len(lines) == 2
    first, second = lines
    assert first["request_id"] == ok.headers["x-request-id"]
    assert first["route"] == "/v1/parking/*" and first["status"] == 200 and first["method"] == "GET"
    assert first["client_id"] == "dncity-mobile" and first["upstream"] == "parking"
    assert isinstance(first["duration_ms"], float)
    assert second["status"] == 401 and second["client_id"] is None
    assert all(token not in raw and "Bearer" not in raw for raw in gw.log)


async def test_gateway_runs_in_process_with_the_shared_helper() -> None:
    """tests/helpers/asgi.running() (used by other suites) starts the gateway's lifespan in-process."""
    from gateway.app import create_app
    from tests.helpers.asgi import running

    async with running(create_app(access_log=lambda line: None)) as client:
        ready = await client.get("/readyz")
        refused = await client.get("/v1/parking/reservations")
    assert ready.status_code == 200 and ready.headers["x-request-id"]
    assert refused.status_code == 401
