"""The gateway process: a raw ASGI front that forwards by prefix, and a small FastAPI app for its own
endpoints (/healthz, /readyz, /metrics, /openapi.json, /docs) and for 404s."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from gateway import openapi
from gateway.proxy import Proxy
from gateway.routes import match
from gateway.settings import GatewaySettings
from shared.errors import install_error_handlers
from shared.http import ServiceClient
from shared.observability import Metrics, RequestContextMiddleware, configure_logging
from shared.settings import SERVICE_NAMES, PlatformSettings

VERSION = "1.0.0"


class ServiceHealth(BaseModel):
    status: str
    services: dict[str, str]


class Gateway:
    """ASGI entry point: proxied prefixes go straight to :class:`Proxy`, everything else to FastAPI."""

    def __init__(self, settings: GatewaySettings, platform: PlatformSettings) -> None:
        self.settings = settings
        self.platform = platform
        self.upstreams = {name: platform.service_url(name) for name in SERVICE_NAMES}
        self.proxy = Proxy(
            max_body_bytes=settings.max_body_bytes,
            timeout_s=settings.upstream_timeout_s,
            connect_timeout_s=settings.upstream_connect_timeout_s,
            limit_per_host=settings.max_connections_per_upstream,
        )
        self.internal = self._internal_app()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = match(scope["path"])
            if route is not None:
                scope["route"] = route  # route template for metrics and the access log
                await self.proxy.forward(scope, receive, send, self.upstreams[route.service])
                return
        await self.internal(scope, receive, send)

    def _internal_app(self) -> FastAPI:
        gateway = self
        cache: dict[str, Any] = {"doc": None, "at": 0.0}

        @contextlib.asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            await gateway.proxy.start()
            app.state.http = ServiceClient(connect_timeout=1.0, read_timeout=5.0, retries=0)
            try:
                yield
            finally:
                await app.state.http.aclose()
                await gateway.proxy.close()

        app = FastAPI(
            title="Da Nang citizen super-app API",
            version=VERSION,
            lifespan=lifespan,
            docs_url=None,
            redoc_url=None,
            openapi_url=None,
        )
        install_error_handlers(app)

        async def probe(http: ServiceClient, name: str) -> str:
            try:
                response = await http.get(gateway.upstreams[name] + "/healthz")
                return "ok" if response.status_code == 200 else f"status {response.status_code}"
            except Exception as exc:
                return f"unavailable: {type(exc).__name__}"

        @app.get("/healthz", response_model=ServiceHealth, tags=["operations"])
        async def gateway_health(request: Request) -> JSONResponse:
            """The gateway and each service it fronts."""
            results = await asyncio.gather(*(probe(request.app.state.http, n) for n in SERVICE_NAMES))
            services = dict(zip(SERVICE_NAMES, results, strict=True))
            ok = all(v == "ok" for v in services.values())
            return JSONResponse(
                {"status": "ok" if ok else "degraded", "services": services}, status_code=200 if ok else 503
            )

        @app.get("/readyz", tags=["operations"])
        async def gateway_ready() -> dict[str, str]:
            """The gateway process is ready to forward."""
            return {"status": "ok"}

        @app.get("/metrics", tags=["operations"], response_class=Response)
        async def gateway_metrics() -> Response:
            """Prometheus metrics of the gateway."""
            return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)

        @app.get("/openapi.json", include_in_schema=False)
        async def aggregated_openapi(request: Request) -> JSONResponse:
            if cache["doc"] is None or time.monotonic() - cache["at"] > gateway.settings.openapi_cache_s:
                http: ServiceClient = request.app.state.http

                async def fetch(name: str) -> tuple[str, dict[str, Any] | None]:
                    try:
                        response = await http.get(gateway.upstreams[name] + "/openapi.json")
                        return name, response.json() if response.status_code == 200 else None
                    except Exception:
                        return name, None

                docs = dict(await asyncio.gather(*(fetch(n) for n in SERVICE_NAMES)))
                available = {k: v for k, v in docs.items() if v is not None}
                own = app.openapi()
                cache["doc"] = openapi.merge(available, title=app.title, version=VERSION, own=own)
                cache["doc"]["info"]["x-services-unavailable"] = sorted(set(docs) - set(available))
                cache["at"] = time.monotonic()
            return JSONResponse(cache["doc"])

        @app.get("/docs", include_in_schema=False)
        async def swagger_ui() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title="Da Nang super-app API")

        return app

    metrics: Metrics


def create_app(settings: GatewaySettings | None = None, platform: PlatformSettings | None = None) -> Any:
    platform = platform or PlatformSettings()
    configure_logging(platform.log_level, platform.log_json)
    gateway = Gateway(settings or GatewaySettings(), platform)
    gateway.metrics = Metrics("gateway")
    return RequestContextMiddleware(gateway, metrics=gateway.metrics)
