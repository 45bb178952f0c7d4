"""The gateway process: a raw ASGI edge that applies the policy table (token checks, scopes, rate limits,
body limit, CORS, circuit breakers, timeouts) and forwards over protocol-level HTTP/1.1; a small FastAPI app answers the
gateway's own endpoints (/healthz, /readyz, /metrics, /openapi.json, /docs, /v1/me/overview) and 404s.

Every response, forwarded or not, carries X-Request-ID, traceparent and the security headers, is counted
in the per-route metrics and writes one JSON access-log line (never a token).

Serve it with granian for speed (``granian --interface asgi --factory gateway.app:create_app``); uvicorn
works too (tests run it in a thread).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest
from pydantic import BaseModel
from starlette.types import Message, Receive, Scope, Send

from gateway import openapi
from gateway.edgeauth import EdgeAuth, authorize, missing_token, token_in_query
from gateway.overview import Overview, build_overview
from gateway.proxy import (
    BodyTooLarge,
    CircuitOpen,
    Proxy,
    UpstreamResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
    is_spoofable,
    read_body,
)
from gateway.ratelimit import Decision, Pending, RateLimiter, configured_classes
from gateway.routes import Route, match, owner
from gateway.settings import GatewaySettings
from shared.auth import JWKSCache, Principal, TokenVerifier
from shared.errors import ProblemError, install_error_handlers, problem_body, problem_responses
from shared.http import ServiceClient
from shared.observability import _REQUEST_ID_RE, Metrics, configure_logging, parse_traceparent
from shared.observability import _request_id as _request_id_var  # the context problem bodies read
from shared.observability import _traceparent as _traceparent_var
from shared.settings import SERVICE_NAMES, PlatformSettings

VERSION = "1.0.0"
log = structlog.get_logger("gateway")
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
SAFE_METHODS = frozenset({"GET", "HEAD"})
CORS_ALLOW_HEADERS = b"authorization, content-type, idempotency-key, x-request-id, traceparent, accept-language"
CORS_EXPOSE_HEADERS = b"x-request-id, traceparent, ratelimit, ratelimit-policy, retry-after, location, www-authenticate"
SPOOF_CHECK = frozenset(
    {b"authorization", b"origin", b"access-control-request-method", b"idempotency-key", b"content-length"}
)


class ServiceHealth(BaseModel):
    status: str
    services: dict[str, str]


class Gateway:
    """ASGI entry point: table routes go through :meth:`edge`, everything else to the FastAPI app."""

    def __init__(
        self, settings: GatewaySettings, platform: PlatformSettings, access_log: Callable[[str], Any] | None = None
    ) -> None:
        self.settings = settings
        self.platform = platform
        self.upstreams = {name: platform.service_url(name) for name in SERVICE_NAMES}
        self.proxy = Proxy(
            connect_timeout_s=settings.upstream_connect_timeout_s,
            limit_per_host=settings.max_connections_per_upstream,
            breaker_threshold=settings.breaker_failure_threshold,
            breaker_open_s=settings.breaker_open_s,
            breaker_probes=settings.breaker_half_open_probes,
        )
        self.access_log = access_log or sys.stdout.write
        self.cors_origins = frozenset(o.encode() for o in settings.cors_origins)
        security = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        if platform.public_base_url.startswith("https://"):
            security.append(
                (b"strict-transport-security", f"max-age={settings.hsts_max_age_s}; includeSubDomains".encode())
            )
        self.security_headers = security
        self.metrics = Metrics("gateway")
        self.breaker_state = Gauge(
            "gateway_circuit_open",
            "1 while an upstream's circuit is open or half-open",
            ["upstream"],
            registry=self.metrics.registry,
        )
        self.refusals = Counter(
            "gateway_refusals_total",
            "Requests refused at the edge, by reason",
            ["reason"],
            registry=self.metrics.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.edge_auth: EdgeAuth | None = None
        self._gauge_open: dict[str, bool] = {}
        self._ts_second = 0
        self._ts_prefix = ""
        self.limiter: RateLimiter | None = None
        self.internal = self._internal_app()

    @property
    def app(self) -> Gateway:
        """Kept for helpers that unwrap ``app.app.internal``."""
        return self

    # ------------------------------------------------------------------ the edge
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.internal(scope, receive, send)
            return
        started = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        request_id = ""
        incoming_tp = None
        authorization = origin = preflight = idem_key = b""
        declared_length = -1
        forward: list[tuple[bytes, bytes]] = []
        host = b""
        for key, value in scope["headers"]:
            if key in SPOOF_CHECK:
                if key == b"authorization":
                    authorization = value
                elif key == b"origin":
                    origin = value
                elif key == b"access-control-request-method":
                    preflight = value
                elif key == b"idempotency-key":
                    idem_key = value
                elif key == b"content-length":
                    declared_length = int(value) if value.isdigit() else -1
                    continue
            elif key == b"x-request-id":
                request_id = value.decode("latin-1")
                continue
            elif key == b"traceparent":
                incoming_tp = value.decode("latin-1")
                continue
            elif key == b"host":
                host = value
            if not is_spoofable(key):
                forward.append((key, value))
        # One urandom call for the request id, a trace id, our span id and the upstream hop's span id.
        rand = os.urandom(48).hex()
        if not request_id or not _REQUEST_ID_RE.match(request_id):
            request_id = rand[:32]
        parent = parse_traceparent(incoming_tp) if incoming_tp else None
        if parent is None:  # a missing or invalid traceparent starts a new trace
            trace_id, flags = rand[32:64], "01"
        else:
            trace_id, flags = parent[0], parent[2]
        traceparent = f"00-{trace_id}-{rand[64:80]}-{flags}"
        hop_traceparent = f"00-{trace_id}-{rand[80:96]}-{flags}"
        # The context problem bodies and outgoing calls read. (structlog's contextvars are not bound on
        # the hot path: the few warnings logged name the request id themselves.)
        _request_id_var.set(request_id)
        _traceparent_var.set(traceparent)
        common = [(b"x-request-id", request_id.encode()), (b"traceparent", traceparent.encode())]
        state = scope.setdefault("state", {})
        route: Route | None = None
        status = 500
        try:
            if preflight and method == "OPTIONS":
                route = match(preflight.decode("latin-1").upper(), path)
                status = await self._preflight(route, origin, send, common)
                return
            route = match(method, path)
            if route is None:
                if owner(path) is None:  # not a service path: the gateway's own endpoints or 404
                    status = await self._internal(scope, receive, send, common, origin, None)
                    return
                raise ProblemError(
                    f"{method} is not allowed here", status=405, code="method_not_allowed", title="Method not allowed"
                )
            policy = route.policy
            if "/." in path and any(segment in (".", "..") for segment in path.split("/")):
                # Dot segments could make a path match one row here and mean another path upstream.
                raise ProblemError(
                    "The path has . or .. segments", status=400, code="invalid_path", title="Bad request"
                )
            if b"access_token=" in scope.get("query_string", b""):
                raise token_in_query()
            if declared_length > self.settings.max_body_bytes:
                raise ProblemError(
                    f"Request body exceeds {self.settings.max_body_bytes} bytes",
                    status=413,
                    code="payload_too_large",
                    title="Request body too large",
                )
            principal: Principal | None = None
            if policy.auth != "public":
                principal = await self._authenticate(authorization)
                state["client_id"] = principal.client_id
                authorize(policy, principal)
            extra: list[tuple[bytes, bytes]] = []
            hold_for = None
            pending: Pending | None = None
            if self.limiter is not None:
                client = scope.get("client")
                identities = {"ip": client[0] if client else "unknown"}
                if principal is not None:
                    identities["sub"] = principal.sub or principal.client_id
                    identities["client"] = principal.client_id
                else:
                    basic = _basic_client_id(authorization)
                    if basic:
                        identities["client"] = basic
                hold_for = principal.sub if policy.holds and principal is not None and method == "POST" else None
                verdict = self.limiter.begin(
                    policy.rate,
                    identities,
                    hold_for=hold_for,
                    hold_member=idem_key.decode("latin-1") if idem_key else request_id,
                )
                if isinstance(verdict, Pending) and method in SAFE_METHODS and not policy.local:
                    # A safe request travels to the upstream while Redis answers; the answer is read
                    # before the response goes out (and a refusal replaces it). Limits still hold, and
                    # the Redis round trip is off the latency path of reads.
                    pending = verdict
                else:
                    decision = verdict if isinstance(verdict, Decision) else await self.limiter.finish(verdict)
                    extra = decision.headers
                    if not decision.allowed:
                        raise self._refusal(decision)
            if policy.local:
                state["principal"] = principal
                status = await self._internal(scope, receive, send, common + extra, origin, route)
                return
            status = await self._forward(
                scope,
                receive,
                send,
                route,
                forward,
                host,
                common + extra,
                origin,
                hold_for,
                idem_key.decode("latin-1") if idem_key else request_id,
                hop_traceparent,
                pending,
            )
        except _Refusal as refusal:
            status = await self._send_problem(send, refusal.problem, common + refusal.headers, origin, route)
        except ProblemError as exc:
            status = await self._send_problem(send, exc, common, origin, route)
        finally:
            self._observe(method, route, path, status, started, state.get("client_id"), request_id)

    def _refusal(self, decision: Decision) -> _Refusal:
        self.refusals.labels(decision.reason).inc()
        retry = [(b"retry-after", str(decision.retry_after_s).encode())]
        if decision.reason == "rate_limiter_unavailable":
            return _problem(503, decision.reason, "Rate limiting is unavailable; try again shortly", retry)
        if decision.reason == "too_many_active_holds":
            return _problem(
                429, decision.reason, "You have too many unpaid bookings at once; pay for or cancel one first", retry
            )
        return _problem(429, decision.reason, "Too many requests; slow down", retry + decision.headers)

    async def _authenticate(self, authorization: bytes) -> Principal:
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise missing_token()
        assert self.edge_auth is not None, "gateway not started"
        return await self.edge_auth.principal(token)

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        headers: list[tuple[bytes, bytes]],
        host: bytes,
        extra: list[tuple[bytes, bytes]],
        origin: bytes,
        hold_for: str | None,
        hold_member: str,
        hop_traceparent: str,
        pending: Pending | None,
    ) -> int:
        try:
            body = await read_body(receive, self.settings.max_body_bytes)
        except BodyTooLarge:
            raise ProblemError(
                f"Request body exceeds {self.settings.max_body_bytes} bytes",
                status=413,
                code="payload_too_large",
                title="Request body too large",
            ) from None
        client = scope.get("client")
        headers.append((b"x-forwarded-for", client[0].encode() if client else b""))
        headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
        if host:
            headers.append((b"x-forwarded-host", host))
        headers.append(extra[0])  # x-request-id
        headers.append((b"traceparent", hop_traceparent.encode()))
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        try:
            upstream = await self._call_upstream(route, scope["method"], target, headers, body, hold_for, hold_member)
        except BaseException:
            if pending is not None:
                pending.discard()
            raise
        if pending is not None:  # the limiter's answer decides whether the upstream's response goes out
            decision = await self.limiter.finish(pending)  # type: ignore[union-attr]
            if not decision.allowed:
                raise self._refusal(decision)
            extra = extra + decision.headers
        if hold_for and not 200 <= upstream.status < 300:
            await self.limiter.release_hold(hold_for, hold_member)  # type: ignore[union-attr]
        out = upstream.headers
        out.append((b"content-length", str(len(upstream.body)).encode()))
        self._finish_headers(out, extra, origin, route)
        await send({"type": "http.response.start", "status": upstream.status, "headers": out})
        await send({"type": "http.response.body", "body": upstream.body})
        return upstream.status

    async def _call_upstream(
        self,
        route: Route,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        hold_for: str | None = None,
        hold_member: str = "",
    ) -> UpstreamResponse:
        policy = route.policy
        try:
            upstream = await self.proxy.call(
                route.service,
                method,
                self.upstreams[route.service],
                target,
                headers,
                body or None,
                timeout_s=policy.timeout_s,
                retry=policy.retry,
            )
        except CircuitOpen as exc:
            self._breaker_gauge(route.service)
            if hold_for:
                await self.limiter.release_hold(hold_for, hold_member)  # type: ignore[union-attr]
            raise _problem(
                503,
                "circuit_open",
                f"The {route.service} service is unavailable; try again later",
                [(b"retry-after", str(exc.retry_after_s).encode())],
            ) from None
        except UpstreamTimeout:
            self._breaker_gauge(route.service)
            raise _problem(504, "upstream_timeout", "The service did not answer in time", []) from None
        except UpstreamUnavailable:
            self._breaker_gauge(route.service)
            if hold_for:
                await self.limiter.release_hold(hold_for, hold_member)  # type: ignore[union-attr]
            raise _problem(
                502, "upstream_unavailable", "The service is unavailable", [(b"retry-after", b"1")]
            ) from None
        self._breaker_gauge(route.service)
        return upstream

    def _breaker_gauge(self, service: str) -> None:
        is_open = self.proxy.breaker(service).state != "closed"
        if self._gauge_open.get(service) != is_open:  # the gauge is written only when the state changes
            self._gauge_open[service] = is_open
            self.breaker_state.labels(service).set(1 if is_open else 0)

    def _finish_headers(
        self, out: list[tuple[bytes, bytes]], extra: list[tuple[bytes, bytes]], origin: bytes, route: Route | None
    ) -> None:
        """Add ids, rate-limit, CORS and security headers (the latter unless the response set its own)."""
        present = {k for k, _ in out}
        out.extend(extra)
        for name, value in self.security_headers:
            if name not in present:
                out.append((name, value))
        if b"content-security-policy" not in present:
            html = any(k == b"content-type" and v.startswith(b"text/html") for k, v in out)
            # Pages (sign-in, consent, docs) bring their own policy; data never needs to run anything.
            out.append(
                (
                    b"content-security-policy",
                    b"frame-ancestors 'none'" if html else b"default-src 'none'; frame-ancestors 'none'",
                )
            )
        if origin and origin in self.cors_origins and (route is None or route.policy.cors):
            out.append((b"access-control-allow-origin", origin))
            out.append((b"access-control-expose-headers", CORS_EXPOSE_HEADERS))
            out.append((b"vary", b"Origin"))

    async def _preflight(
        self, route: Route | None, origin: bytes, send: Send, common: list[tuple[bytes, bytes]]
    ) -> int:
        if route is None or not route.policy.cors or origin not in self.cors_origins:
            raise _problem(403, "cors_not_allowed", "This origin may not call this route from a browser", [])
        headers = [
            *common,
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-methods", b"GET, POST, PUT, PATCH, DELETE, OPTIONS"),
            (b"access-control-allow-headers", CORS_ALLOW_HEADERS),
            (b"access-control-max-age", str(self.settings.cors_max_age_s).encode()),
            (b"vary", b"Origin"),
            (b"content-length", b"0"),
        ]
        self._finish_headers(headers, [], b"", None)
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return 204

    async def _internal(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        extra: list[tuple[bytes, bytes]],
        origin: bytes,
        route: Route | None,
    ) -> int:
        status_holder = [500]
        docs = scope["path"] == "/docs"

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                headers = [
                    h for h in message.get("headers", []) if h[0].lower() not in (b"x-request-id", b"traceparent")
                ]
                if docs:  # Swagger UI loads its scripts from a CDN: it brings no CSP of ours
                    headers.append((b"content-security-policy", b"frame-ancestors 'none'"))
                self._finish_headers(headers, extra, origin, route)
                message["headers"] = headers
            await send(message)

        await self.internal(scope, receive, send_wrapper)
        return status_holder[0]

    async def _send_problem(
        self, send: Send, exc: ProblemError, extra: list[tuple[bytes, bytes]], origin: bytes, route: Route | None
    ) -> int:
        body = json.dumps(problem_body(exc.status, exc.code, exc.title, exc.detail, **exc.extra)).encode()
        headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
        self._finish_headers(headers, extra, origin, route)
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return exc.status

    def _observe(
        self,
        method: str,
        route: Route | None,
        path: str,
        status: int,
        started: float,
        client_id: str | None,
        request_id: str,
    ) -> None:
        duration = time.perf_counter() - started
        template = (
            route.path if route is not None else (path if path in OPS_PATHS or path in _OWN_PATHS else "unmatched")
        )
        key = (method, template, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.metrics.requests.labels("gateway", method, template, str(status)),
                self.metrics.latency.labels("gateway", method, template),
            )
            if len(self._children) < 5000:  # bounded: methods, routes and statuses are few
                self._children[key] = children
        children[0].inc()
        children[1].observe(duration)
        if path in OPS_PATHS:
            return
        # Formatted by hand (json.dumps of a dict costs more than the rest of the line): every field is
        # from a fixed charset (validated request id, table templates, method) except client_id.
        upstream = f'"{route.service}"' if route is not None else "null"
        now = time.time()
        second = int(now)
        if second != self._ts_second:
            self._ts_second = second
            self._ts_prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        self.access_log(
            f'{{"ts": "{self._ts_prefix}.{int((now - second) * 1000):03d}Z", "level": "info", "event": "request", '
            f'"request_id": "{request_id}", "method": "{method}", "route": "{template}", '
            f'"status": {status}, "duration_ms": {duration * 1000:.3f}, '
            f'"client_id": {"null" if client_id is None else json.dumps(client_id)}, '
            f'"upstream": {upstream}}}\n'
        )

    # ------------------------------------------------------------------ own endpoints
    def _internal_app(self) -> FastAPI:
        gateway = self
        cache: dict[str, Any] = {"doc": None, "at": 0.0}

        @contextlib.asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            await gateway.startup(app)
            try:
                yield
            finally:
                await gateway.shutdown(app)

        app = FastAPI(
            title="Da Nang citizen super-app API",
            version=VERSION,
            lifespan=lifespan,
            docs_url=None,
            redoc_url=None,
            openapi_url=None,
            generate_unique_id_function=lambda route: route.name,  # operation ids = function names
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

        @app.get(
            "/v1/me/overview",
            response_model=Overview,
            tags=["mobile app"],
            responses=problem_responses(401, 403, 429),
        )
        async def get_my_overview(request: Request) -> Overview:
            """The signed-in person's home screen: profile, upcoming bookings, open invoices, recent payments."""
            if request.scope.get("state", {}).get("principal") is None:
                raise missing_token()  # only reachable through the edge, which has checked the token
            return await build_overview(
                gateway.proxy,
                gateway.upstreams,
                request.headers["authorization"],
                gateway.settings.overview_part_timeout_s,
            )

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
                openapi.declare_edge_responses(cache["doc"], match)
                cache["doc"]["info"]["x-services-unavailable"] = sorted(set(docs) - set(available))
                cache["at"] = time.monotonic()
            return JSONResponse(cache["doc"])

        @app.get("/docs", include_in_schema=False)
        async def swagger_ui() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title="Da Nang super-app API")

        return app

    async def startup(self, app: FastAPI) -> None:
        await self.proxy.start()
        http = ServiceClient(connect_timeout=1.0, read_timeout=5.0, retries=1)
        app.state.http = http
        jwks_url = self.platform.service_url("identity") + "/oauth2/jwks"

        async def fetch_jwks() -> dict[str, Any]:
            response = await http.get(jwks_url)
            response.raise_for_status()
            return dict(response.json())

        jwks = JWKSCache(
            fetch_jwks,
            ttl_s=self.platform.jwks_cache_ttl_s,
            min_refetch_interval_s=self.platform.jwks_min_refetch_interval_s,
        )
        with contextlib.suppress(Exception):
            await jwks.get("")  # fetched at start; identity may come up later, then on first use
        verifier = TokenVerifier(
            issuer=self.platform.issuer,
            audience=self.platform.api_audience,
            jwks=jwks,
            leeway_s=self.platform.token_leeway_s,
        )
        self.edge_auth = EdgeAuth(
            verifier, ttl_s=self.settings.token_cache_ttl_s, max_size=self.settings.token_cache_size
        )
        if self.settings.rate_limits_enabled:
            if not self.platform.redis_url:
                log.warning("rate_limits_without_redis", effect="sign-in, code, token and payment routes answer 503")
            self.limiter = RateLimiter(
                self.platform.redis_url,
                scale=self.settings.rate_limit_scale,
                timeout_s=self.settings.redis_timeout_s,
                retry_s=self.settings.redis_retry_s,
                max_active_holds=self.settings.max_active_holds,
                hold_window_s=self.settings.hold_window_s,
                classes=configured_classes(self.settings.rate_limit_overrides),
            )

    async def shutdown(self, app: FastAPI) -> None:
        await app.state.http.aclose()
        if self.limiter is not None:
            await self.limiter.aclose()
        await self.proxy.close()


_OWN_PATHS = frozenset({"/openapi.json", "/docs", "/v1/me/overview"})


class _Refusal(Exception):
    def __init__(self, problem: ProblemError, headers: list[tuple[bytes, bytes]]) -> None:
        self.problem = problem
        self.headers = headers


def _problem(status: int, code: str, detail: str, headers: list[tuple[bytes, bytes]]) -> _Refusal:
    return _Refusal(ProblemError(detail, status=status, code=code, title=HTTPStatus(status).phrase), headers)


def _basic_client_id(authorization: bytes) -> str | None:
    """The client id of HTTP Basic client authentication (unverified: only a rate-limit key)."""
    if authorization[:6].lower() != b"basic ":
        return None
    try:
        return base64.b64decode(authorization[6:].strip(), validate=True).decode().partition(":")[0][:128] or None
    except (ValueError, UnicodeDecodeError):
        return None


def create_app(
    settings: GatewaySettings | None = None,
    platform: PlatformSettings | None = None,
    access_log: Callable[[str], Any] | None = None,
) -> Gateway:
    platform = platform or PlatformSettings()
    configure_logging(platform.log_level, platform.log_json)
    return Gateway(settings or GatewaySettings(), platform, access_log)
