"""The platform as separate OS processes: every service, the sandbox provider and the gateway on free
ports, against the test session's databases and Redis (SQLite + embedded Redis, or PostgreSQL + Redis
when the environment points at them). An event published by one process is consumed by others, and
everything is reached through the gateway, as a client would."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dncity.embedded_redis import free_port
from dncity.processes import Supervisor, platform_specs, service_env
from shared.diagnostics import api_prefix
from shared.settings import DEFAULT_PORTS, SERVICE_NAMES
from tests.helpers.tokens import TokenFactory

pytestmark = pytest.mark.multiprocess

EVENT_WAIT_S = 30.0


@pytest.fixture
def process_platform() -> Iterator[tuple[str, Supervisor]]:
    """Start every process; yield the gateway URL and the supervisor; stop them all."""
    ports = {name: free_port() for name in DEFAULT_PORTS}
    # Payments as it runs on a 2-core PostgreSQL deployment: two server processes sharing its port.
    specs = platform_specs(ports, {"DNCITY_PAYMENTS_WORKERS": "2"})
    supervisor = Supervisor(specs, service_env(ports))
    supervisor.start()
    try:
        supervisor.wait_healthy(timeout=90)
        yield f"http://127.0.0.1:{ports['gateway']}", supervisor
    finally:
        supervisor.stop()


def _parent_of(proc_dir: Path) -> int | None:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def wait_received(client: httpx.Client, service: str, event_id: str, headers: dict[str, str]) -> dict:
    url = f"/v1/{api_prefix(service)}/dev/events/received"
    deadline = time.monotonic() + EVENT_WAIT_S
    while True:
        response = client.get(url, params={"event_id": event_id}, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["received"] or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_platform_runs_as_separate_processes_behind_the_gateway(
    process_platform: tuple[str, Supervisor], tokens: TokenFactory
) -> None:
    gateway, supervisor = process_platform
    assert {spec.name for spec in supervisor.specs} >= {*SERVICE_NAMES, "gateway"}
    pids = {name: proc.pid for name, proc in supervisor.procs.items()}
    assert len(set(pids.values())) == len(pids), "each process is its own OS process"
    # A person's token, in case the gateway's edge policy wants one on these paths; services verify it
    # against the JWKS of the identity *process* (same database, same keys).
    bearer = tokens.bearer(tokens.user("e2e-person", ["openid", "parking", "health", "tuition", "payments"]))

    with httpx.Client(base_url=gateway, timeout=10) as client:
        # Every service is healthy, as the gateway sees it.
        health = client.get("/healthz")
        assert health.status_code == 200, health.text
        assert health.json()["services"] == {name: "ok" for name in SERVICE_NAMES}

        # An event published by parking, through its outbox, the relay and Redis Streams …
        request_id = f"e2e-{uuid.uuid4().hex}"
        ping = client.post("/v1/parking/dev/events/ping", headers={**bearer, "X-Request-ID": request_id})
        assert ping.status_code == 201, ping.text
        # … with the caller's request id carried through the gateway and the service and back.
        assert ping.headers.get("x-request-id") == request_id
        event_id = ping.json()["event_id"]

        # … is consumed by the other processes' consumer groups.
        for consumer in ("tuition", "identity"):
            receipt = wait_received(client, consumer, event_id, bearer)
            assert receipt["received"] is True, f"{consumer} did not receive {event_id} within {EVENT_WAIT_S}s"
            assert receipt["service"] == consumer and receipt["processed_at"]

        # Payments runs two workers; an event either one publishes reaches the others all the same.
        payments_pid = supervisor.procs["payments"].pid
        children = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _parent_of(p) == payments_pid]
        assert len(children) >= 2, "payments should run two worker processes"
        for _ in range(4):
            ping = client.post("/v1/payments/dev/events/ping", headers=bearer)
            assert ping.status_code == 201, ping.text
            receipt = wait_received(client, "parking", ping.json()["event_id"], bearer)
            assert receipt["received"] is True

        # One OpenAPI document lists every service's paths.
        document = client.get("/openapi.json")
        assert document.status_code == 200
        info, paths = document.json()["info"], document.json()["paths"]
        assert info.get("x-services-unavailable") == []
        for service in SERVICE_NAMES:
            assert f"/v1/{api_prefix(service)}/dev/events/ping" in paths, f"{service} missing from /openapi.json"
            assert any(p.startswith(f"/v1/{api_prefix(service)}/") for p in paths)

        # Unknown routes are the gateway's own problem+json 404.
        missing = client.get("/v1/nowhere")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")

    supervisor.stop()
    exits = {name: proc.poll() for name, proc in supervisor.procs.items()}
    assert all(code is not None for code in exits.values()), f"still running: {exits}"
    # Graceful: uvicorn finishes shutdown and re-raises the SIGTERM it caught (-15); the supervisor's
    # SIGKILL after its grace period (-9) or a crash would show here.
    assert all(code in (0, -signal.SIGTERM) for code in exits.values()), f"unclean exits: {exits}"
