"""Service-to-service HTTP: one pooled ``httpx.AsyncClient`` per app (on shared/http11.py), explicit timeouts.

Every call forwards ``X-Request-ID`` and a child ``traceparent``. Retries happen only for idempotent
methods (and for POSTs that carry an ``Idempotency-Key``, which the receiver deduplicates), only on
connection errors and 502/503/504, with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any

import httpx

from shared.http11 import Http11Transport
from shared.observability import child_traceparent, current_request_id

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})


def tracing_headers() -> dict[str, str]:
    headers = {"traceparent": child_traceparent()}
    request_id = current_request_id()
    if request_id:
        headers["x-request-id"] = request_id
    return headers


class ServiceClient:
    def __init__(
        self,
        *,
        connect_timeout: float = 2.0,
        read_timeout: float = 10.0,
        retries: int = 2,
        backoff_base: float = 0.1,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 100,
    ) -> None:
        self.retries = retries
        self.backoff_base = backoff_base
        # The platform's own HTTP/1.1 transport (shared/http11.py), not httpx's default pool (httpcore):
        # a burst of 100 concurrent calls over kept-alive connections spent ~1 s in httpcore's pool
        # (100 GET /healthz: 0.99 s; 14 ms on this transport), and bookings call payments in bursts.
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            transport=transport or Http11Transport(max_connections=max_connections, max_idle=max_connections),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    def _may_retry(self, method: str, headers: Mapping[str, str]) -> bool:
        if method.upper() in IDEMPOTENT_METHODS:
            return True
        return any(k.lower() == "idempotency-key" for k in headers)

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        merged = {**tracing_headers(), **dict(headers or {})}
        attempts = 1 + (self.retries if self._may_retry(method, merged) else 0)
        for attempt in range(1, attempts + 1):
            try:
                response = await self.client.request(method, url, headers=merged, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadTimeout):
                # A read timeout on a non-idempotent call is not retried: attempts is 1 then.
                if attempt == attempts:
                    raise
            else:
                if response.status_code not in RETRY_STATUSES or attempt == attempts:
                    return response
                await response.aclose()
            delay = self.backoff_base * (2 ** (attempt - 1))
            await asyncio.sleep(delay + random.uniform(0, delay))
        raise AssertionError("unreachable")

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)
