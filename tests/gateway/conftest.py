"""A real gateway on a real port in front of a real upstream app on another port.

The upstream (``Upstream``) answers every path with what it received (method, path, query, headers,
body) and can be told, per path prefix, to be slow or to fail; it serves /oauth2/jwks by asking the
real identity service of the test session, so the gateway verifies tokens against identity's keys.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from dncity.embedded_redis import free_port
from gateway.app import create_app
from gateway.settings import GatewaySettings
from shared.settings import SERVICE_NAMES, PlatformSettings
from tests.helpers.live import LiveServer


class Upstream:
    def __init__(self) -> None:
        self.delays: dict[str, float] = {}
        self.statuses: dict[str, int] = {}
        self.bodies: dict[str, Any] = {}
        self.calls: list[dict[str, Any]] = []
        self.app = self._build()

    def reset(self) -> None:
        self.delays.clear()
        self.statuses.clear()
        self.bodies.clear()
        self.calls.clear()

    def _rule(self, rules: dict[str, Any], path: str) -> Any:
        for prefix, value in rules.items():
            if path.startswith(prefix):
                return value
        return None

    def _build(self) -> FastAPI:
        app = FastAPI()
        upstream = self

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @app.get("/oauth2/jwks")
        async def jwks() -> Response:
            async with httpx.AsyncClient() as client:
                response = await client.get(os.environ["DNCITY_IDENTITY_URL"] + "/oauth2/jwks")
            return Response(response.content, media_type="application/json")

        @app.api_route(
            "/{path:path}",
            methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
            include_in_schema=False,
        )
        async def echo(request: Request, path: str) -> Response:
            body = await request.body()
            call = {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "headers": dict(request.headers),
                "body": body.decode("utf-8", "replace"),
            }
            upstream.calls.append(call)
            delay = upstream._rule(upstream.delays, request.url.path)
            if delay:
                await asyncio.sleep(delay)
            status = upstream._rule(upstream.statuses, request.url.path) or 200
            content = upstream._rule(upstream.bodies, request.url.path)
            return JSONResponse(content if content is not None else call, status_code=status)

        return app


class ReadyServer(LiveServer):
    """LiveServer that waits for /readyz (the gateway's /healthz is 503 while an upstream is down), and
    without uvicorn's proxy-headers handling: the gateway is the edge and trusts no X-Forwarded-For."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=self.host,
                port=self.port,
                log_level="warning",
                access_log=False,
                lifespan="on",
                proxy_headers=False,
            )
        )

    def start(self, timeout: float = 20.0) -> ReadyServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.started:
                try:
                    if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"server on {self.url} did not start")


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    server = LiveServer(up.app).start()
    up.url = server.url  # type: ignore[attr-defined]
    yield up
    server.stop()


class GatewayHandle:
    def __init__(self, server: ReadyServer, app: Any, log: list[str]) -> None:
        self.server = server
        self.app = app
        self.log = log
        self.url = server.url

    def client(self, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10, **kw)


@pytest.fixture
def start_gateway(upstream: Upstream) -> Iterator[Callable[..., GatewayHandle]]:
    """Start a gateway with settings overrides; every service points at the echo upstream unless
    ``urls`` says otherwise (e.g. a port where nothing listens)."""
    started: list[ReadyServer] = []
    upstream.reset()

    def start(urls: dict[str, str] | None = None, redis_url: str | None = "env", **settings: Any) -> GatewayHandle:
        service_urls = {f"{name}_url": upstream.url for name in SERVICE_NAMES}  # type: ignore[attr-defined]
        service_urls.update({f"{k}_url": v for k, v in (urls or {}).items()})
        overrides: dict[str, Any] = dict(service_urls)
        if redis_url != "env":
            overrides["redis_url"] = redis_url
        platform = PlatformSettings(**overrides)
        log: list[str] = []
        app = create_app(GatewaySettings(**settings), platform, access_log=log.append)
        server = ReadyServer(app).start()
        started.append(server)
        return GatewayHandle(server, app, log)

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port('127.0.0.1')}"


@pytest.fixture
def override_route(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Change the policy of the table row a request matches (e.g. a short timeout), for one test."""
    import dataclasses

    import gateway.routes as routes

    def override(method: str, path: str, **policy: Any) -> None:
        route = routes.match(method, path)
        assert route is not None
        changed = dataclasses.replace(route, policy=dataclasses.replace(route.policy, **policy))
        bucket = routes._bucket(route.pattern)
        rows = tuple(changed if r is route else r for r in routes._BUCKETS[bucket])
        monkeypatch.setitem(routes._BUCKETS, bucket, rows)
        monkeypatch.setattr(routes, "_MATCHED", {})  # forget lookups made with the table as it was

    return override
