"""Request ids, W3C trace context, JSON logs and Prometheus metrics.

A pure-ASGI middleware accepts or generates ``X-Request-ID`` and ``traceparent``, echoes them, binds
them to structlog's context (so every log line carries them) and to context variables the HTTP client
and the event outbox read when they call onwards.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
import time
from contextvars import ContextVar
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_traceparent: ContextVar[str | None] = ContextVar("traceparent", default=None)

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def current_request_id() -> str | None:
    return _request_id.get()


def current_traceparent() -> str | None:
    return _traceparent.get()


def new_request_id() -> str:
    return secrets.token_hex(16)


def new_traceparent(trace_id: str | None = None) -> str:
    return f"00-{trace_id or secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def parse_traceparent(value: str | None) -> tuple[str, str, str] | None:
    """(trace_id, parent_id, flags) of a valid version-00 traceparent, else None."""
    if not value:
        return None
    match = _TRACEPARENT_RE.match(value.strip())
    if not match or match.group(1) == "0" * 32 or match.group(2) == "0" * 16:
        return None
    return match.group(1), match.group(2), match.group(3)


def child_traceparent(parent: str | None = None) -> str:
    """A traceparent for an outgoing call: same trace, a new span id."""
    parsed = parse_traceparent(parent or _traceparent.get())
    if parsed is None:
        return new_traceparent()
    trace_id, _parent, flags = parsed
    return f"00-{trace_id}-{secrets.token_hex(8)}-{flags}"


def bind_context(request_id: str | None, traceparent: str | None) -> None:
    """Bind ids for work that does not come from a request (an event being consumed)."""
    _request_id.set(request_id)
    _traceparent.set(traceparent)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id, traceparent=traceparent)


_logging_configured = False


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    global _logging_configured
    if _logging_configured:
        return
    _logging_configured = True
    logging.basicConfig(stream=sys.stdout, level=level, format="%(message)s")
    # httpx/httpcore log every outbound request at INFO as plain text: not JSON, and a line per call that
    # the access log of the service called already records.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )


class Metrics:
    """One registry per app, so several apps can live in one test process."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by route template, method and status",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route template",
            ["service", "method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.events_published = Counter(
            "events_published_total",
            "Events relayed from the outbox",
            ["service", "type"],
            registry=self.registry,
        )
        self.events_consumed = Counter(
            "events_consumed_total",
            "Events handled by consumers",
            ["service", "group", "type", "outcome"],
            registry=self.registry,
        )
        self.service = service


_SKIP_ACCESS_LOG = {"/healthz", "/readyz", "/metrics"}


class RequestContextMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware overhead): ids, access log and metrics for each request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.log = structlog.get_logger("access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get("x-request-id", "")
        if not _REQUEST_ID_RE.match(request_id):
            request_id = new_request_id()
        incoming = headers.get("traceparent")
        # Our span is a child of the caller's; a missing or invalid header starts a new trace.
        traceparent = child_traceparent(incoming) if parse_traceparent(incoming) else new_traceparent()
        bind_context(request_id, traceparent)
        status_holder = {"status": 500}
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                extra = [
                    (b"x-request-id", request_id.encode()),
                    (b"traceparent", traceparent.encode()),
                ]
                message["headers"] = [
                    h for h in message.get("headers", []) if h[0].lower() not in (b"x-request-id", b"traceparent")
                ] + extra
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            duration = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            status = status_holder["status"]
            self.metrics.requests.labels(self.metrics.service, method, template, str(status)).inc()
            self.metrics.latency.labels(self.metrics.service, method, template).observe(duration)
            if scope.get("path") not in _SKIP_ACCESS_LOG:
                self.log.info(
                    "request",
                    method=method,
                    route=template,
                    status=status,
                    duration_ms=round(duration * 1000, 2),
                    client_id=scope.get("state", {}).get("client_id"),
                )
