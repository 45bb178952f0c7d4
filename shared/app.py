"""``create_service_app``: the one factory every service uses.

It wires settings checks, the database, Redis, the shared HTTP client, the outbox relay and event
consumers (all owned by the lifespan), request ids and traceparent, problem+json errors, /healthz,
/readyz, /metrics and an OpenAPI document with stable operation ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import MetaData, text

from shared.auth import CachingVerifier, JWKSCache, TokenVerifier
from shared.db import Database
from shared.errors import PROBLEM_MEDIA_TYPE, Problem, install_error_handlers
from shared.events import EventConsumer, Handler, Outbox, OutboxRelay, event_tables, stream_for
from shared.http import ServiceClient
from shared.input_guard import reject_nul
from shared.observability import Metrics, RequestContextMiddleware, configure_logging
from shared.redis import create_redis
from shared.settings import PlatformSettings, ServiceSettings

log = structlog.get_logger("app")

Hook = Callable[[FastAPI], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerSpec:
    """A consumer group of this service: which services' streams it reads and its handlers by type."""

    group: str
    sources: Sequence[str]
    handlers: Mapping[str, Handler]


@dataclass
class ServiceParts:
    routers: Sequence[APIRouter] = ()
    dev_routers: Sequence[APIRouter] = ()
    consumers: Sequence[ConsumerSpec] = ()
    on_startup: Sequence[Hook] = ()
    on_shutdown: Sequence[Hook] = ()
    tags: Sequence[dict[str, str]] = field(default_factory=list)


def stable_operation_id(route: APIRoute) -> str:
    return route.name


def create_service_app(
    name: str,
    *,
    settings: ServiceSettings,
    metadata: MetaData,
    parts: ServiceParts,
    title: str,
    description: str = "",
    version: str = "1.0.0",
    platform: PlatformSettings | None = None,
) -> FastAPI:
    platform = platform or PlatformSettings()
    settings.check(platform)
    configure_logging(platform.log_level, platform.log_json)
    tables = event_tables(metadata)
    metrics = Metrics(name)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(
            settings.resolved_database_url(platform),
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            echo=settings.db_echo,
        )
        redis = create_redis(platform.redis_url) if platform.redis_url else None
        http = ServiceClient(
            connect_timeout=platform.http_connect_timeout_s,
            read_timeout=platform.http_read_timeout_s,
            retries=platform.http_retries,
        )
        app.state.db, app.state.redis, app.state.http = db, redis, http
        jwks_url = platform.service_url("identity") + "/oauth2/jwks"

        async def fetch_jwks() -> dict[str, Any]:
            response = await http.get(jwks_url)
            response.raise_for_status()
            return dict(response.json())

        verifier = TokenVerifier(
            issuer=platform.issuer,
            audience=platform.api_audience,
            jwks=JWKSCache(
                fetch_jwks, ttl_s=platform.jwks_cache_ttl_s, min_refetch_interval_s=platform.jwks_min_refetch_interval_s
            ),
            leeway_s=platform.token_leeway_s,
        )
        app.state.verifier = (
            CachingVerifier(verifier, ttl_s=platform.verified_token_cache_s)
            if platform.verified_token_cache_s > 0
            else verifier
        )
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if redis is not None:
            relay = OutboxRelay(
                db=db,
                redis=redis,
                tables=tables,
                service=name,
                metrics=metrics,
                poll_interval=platform.event_poll_interval_s,
            )
            app.state.relay = relay
            tasks.append(asyncio.create_task(relay.run(stop), name=f"{name}-relay"))
            for spec in consumers:
                consumer = EventConsumer(
                    db=db,
                    redis=redis,
                    tables=tables,
                    group=spec.group,
                    streams=[stream_for(s) for s in spec.sources],
                    handlers=spec.handlers,
                    metrics=metrics,
                    max_deliveries=platform.event_max_deliveries,
                    retry_base_ms=platform.event_retry_base_ms,
                )
                tasks.append(asyncio.create_task(consumer.run(stop), name=f"{name}-{spec.group}"))
        for hook in parts.on_startup:
            await hook(app)
        if platform.gc_freeze_after_startup:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            stop.set()
            for hook in parts.on_shutdown:
                await hook(app)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await http.aclose()
            if redis is not None:
                await redis.aclose()
            await db.dispose()

    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        generate_unique_id_function=stable_operation_id,
        openapi_tags=list(parts.tags) or None,
        dependencies=[Depends(reject_nul)],  # NUL and unusable date-times: a 422 naming the field, not a 500
    )
    app.state.service_name = name
    app.state.settings = settings
    app.state.platform = platform
    app.state.metrics = metrics
    app.state.event_tables = tables
    app.state.outbox = Outbox(tables)
    app.state.relay = None
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.include_router(_ops_router(name))
    for router in parts.routers:
        app.include_router(router)
    consumers = list(parts.consumers)
    if platform.dev_endpoints_enabled:
        from shared.diagnostics import diagnostics_consumer, diagnostics_router

        for router in [*parts.dev_routers, diagnostics_router(name)]:
            app.include_router(router)
        consumers.append(diagnostics_consumer(name))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


class HealthStatus(BaseModel):
    status: str
    service: str
    checks: dict[str, str] = {}


def _ops_router(name: str) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", response_model=HealthStatus, summary="Liveness")
    async def healthz() -> HealthStatus:
        """Liveness: the process answers."""
        return HealthStatus(status="ok", service=name)

    @router.get(
        "/readyz",
        response_model=HealthStatus,
        summary="Readiness",
        responses={503: {"model": HealthStatus, "description": "A dependency is unavailable"}},
    )
    async def readyz(request: Request) -> Any:
        """Readiness: the database and Redis answer."""
        checks: dict[str, str] = {}
        try:
            async with request.app.state.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        redis = request.app.state.redis
        if redis is None:
            checks["redis"] = "not configured"
        else:
            try:
                await asyncio.wait_for(redis.ping(), timeout=2)
                checks["redis"] = "ok"
            except Exception as exc:
                checks["redis"] = f"error: {type(exc).__name__}"
        ok = all(v in ("ok", "not configured") for v in checks.values())
        body = HealthStatus(status="ok" if ok else "unavailable", service=name, checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}},
    )
    async def metrics(request: Request) -> Response:
        """Prometheus metrics in the text exposition format."""
        return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with problem+json in place of FastAPI's default validation error body."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    field_error = components["Problem"].pop("$defs", {}).get("FieldError")
    if field_error:
        components["FieldError"] = field_error
    problem_content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {})
            if "422" in responses:
                responses["422"] = {"description": "Invalid request", "content": problem_content}
            for response in responses.values():
                content = response.get("content", {})
                # Declared problem statuses carry only problem+json.
                if PROBLEM_MEDIA_TYPE in content and "application/json" in content:
                    del content["application/json"]
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    app.openapi_schema = schema
    return schema
