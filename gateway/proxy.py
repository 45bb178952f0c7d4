"""The forwarding hot path: raw ASGI in, protocol-level HTTP/1.1 out (see shared/http11.py for why).

A request body over the limit is refused with 413 before anything reaches the upstream. Hop-by-hop
headers and headers a client could use to impersonate someone (internal identity headers, forwarding
headers) are dropped; X-Forwarded-*, X-Request-ID and a child traceparent are set by the gateway.
Each upstream call runs under the route's timeout (504 when exceeded) and its upstream's circuit
breaker; idempotent requests on routes that allow it are retried once after a connection failure or a
502/503 when time remains.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from starlette.types import Receive

from gateway.breaker import CircuitBreaker, CircuitOpen
from gateway.routes import IDEMPOTENT_METHODS
from shared.http11 import UpstreamClient, UpstreamConnectionError, UpstreamPool
from shared.observability import current_request_id

log = structlog.get_logger("gateway.proxy")

# Never forwarded as sent by the client: hop-by-hop headers, headers the gateway sets itself, and
# identity/forwarding headers a client could set to impersonate someone or hide its address.
DROP_REQUEST_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"expect",  # the gateway has the whole body already; an upstream 100 Continue would confuse a reply
        b"proxy-connection",
        b"host",
        b"content-length",
        b"x-request-id",
        b"traceparent",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"forwarded",
        b"x-real-ip",
        b"x-client-ip",
        b"true-client-ip",
        b"x-original-url",
        b"x-rewrite-url",
        b"x-original-uri",
        b"x-http-method-override",
        b"x-remote-user",
        b"remote-user",
        b"x-user",
        b"x-user-id",
        b"x-sub",
        b"x-subject",
        b"x-client-id",
        b"x-scope",
        b"x-scopes",
        b"x-principal",
        b"x-authenticated-user",
        b"x-authenticated-userid",
        b"x-auth-user",
        b"x-auth-request-user",
        b"x-auth-request-email",
        b"x-consumer-id",
        b"x-consumer-username",
        b"x-credential-identifier",
        b"x-acr",
        b"x-loa",
    }
)
# Any header starting with one of these is internal to the platform (or to a proxy) and is dropped too.
DROP_REQUEST_PREFIXES = (
    b"x-dncity-",
    b"x-internal-",
    b"x-gateway-",
    b"x-forwarded-",
    b"x-authenticated-",
    b"x-auth-",
    b"x-userinfo",
    b"x-jwt-",
    b"x-token-",
)
RESPONSE_DROP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"content-length",
        b"server",
        b"date",
        b"x-request-id",
        b"traceparent",
    }
)
RETRY_STATUSES = frozenset({502, 503})
FAILURE_STATUSES = frozenset({502, 503, 504})


def is_spoofable(name: bytes) -> bool:
    return name in DROP_REQUEST_HEADERS or name.startswith(DROP_REQUEST_PREFIXES)


class BodyTooLarge(Exception):
    pass


class UpstreamTimeout(Exception):
    pass


class UpstreamUnavailable(Exception):
    pass


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        if chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Proxy:
    def __init__(
        self,
        *,
        connect_timeout_s: float,
        limit_per_host: int,
        breaker_threshold: int = 5,
        breaker_open_s: float = 10.0,
        breaker_probes: int = 1,
    ) -> None:
        self.client = UpstreamClient(connect_timeout_s=connect_timeout_s, max_idle=limit_per_host)
        self.breaker_args = {
            "failure_threshold": breaker_threshold,
            "open_s": breaker_open_s,
            "half_open_probes": breaker_probes,
        }
        self.breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, service: str) -> CircuitBreaker:
        breaker = self.breakers.get(service)
        if breaker is None:
            breaker = self.breakers[service] = CircuitBreaker(service, **self.breaker_args)  # type: ignore[arg-type]
        return breaker

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self.client.close()

    async def call(
        self,
        service: str,
        method: str,
        base_url: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
        *,
        timeout_s: float,
        retry: bool,
    ) -> UpstreamResponse:
        """One upstream exchange under the breaker and the deadline; raises CircuitOpen,
        UpstreamTimeout or UpstreamUnavailable. ``target`` is the raw path and query string."""
        breaker = self.breaker(service)
        breaker.before_call()  # raises CircuitOpen
        attempts = 2 if retry and method in IDEMPOTENT_METHODS else 1
        try:
            return await self._exchange(
                breaker, service, method, self.client.pool(base_url), target, headers, body, timeout_s, attempts
            )
        except BaseException:
            breaker.abandon()  # a half-open probe that ended without a verdict frees its slot
            raise

    async def _exchange(
        self,
        breaker: CircuitBreaker,
        service: str,
        method: str,
        pool: UpstreamPool,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
        timeout_s: float,
        attempts: int,
    ) -> UpstreamResponse:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        for attempt in range(1, attempts + 1):
            try:
                async with asyncio.timeout_at(deadline):
                    status, raw_headers, payload = await pool.request(method, target, headers, body)
            except TimeoutError:
                breaker.on_failure()
                raise UpstreamTimeout from None
            except UpstreamConnectionError as exc:
                if attempt < attempts and loop.time() < deadline:
                    continue
                breaker.on_failure()
                log.warning("upstream_unavailable", service=service, error=str(exc), request_id=current_request_id())
                raise UpstreamUnavailable from exc
            if status in RETRY_STATUSES and attempt < attempts and loop.time() < deadline:
                continue
            if status in FAILURE_STATUSES:
                breaker.on_failure()
            else:
                breaker.on_success()
            return UpstreamResponse(status, [h for h in raw_headers if h[0] not in RESPONSE_DROP], payload)
        raise AssertionError("unreachable")


__all__ = [
    "BodyTooLarge",
    "CircuitOpen",
    "Proxy",
    "UpstreamResponse",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "is_spoofable",
    "read_body",
]
