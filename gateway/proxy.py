"""The forwarding hot path: raw ASGI in, aiohttp out (httpx is several times slower here).

Bodies are streamed both ways; a request body over the limit is refused with 413 before anything
reaches the upstream. Hop-by-hop headers are dropped, X-Forwarded-* set, X-Request-ID and a child
traceparent forwarded.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import structlog
from starlette.types import Receive, Scope, Send

from shared.errors import problem_body
from shared.observability import child_traceparent, current_request_id

log = structlog.get_logger("gateway.proxy")

HOP_BY_HOP = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
        b"transfer-encoding", b"upgrade", b"host", b"content-length", b"x-request-id", b"traceparent",
        b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host",
    }
)
RESPONSE_DROP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"})


class BodyTooLarge(Exception):
    pass


async def send_problem(
    send: Send, status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps(problem_body(status, code, None, detail)).encode()
    raw_headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


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
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class Proxy:
    def __init__(self, *, max_body_bytes: int, timeout_s: float, connect_timeout_s: float, limit_per_host: int):
        self.max_body_bytes = max_body_bytes
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, connect=connect_timeout_s)
        self.limit_per_host = limit_per_host
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=self.limit_per_host, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=self.timeout, auto_decompress=False, skip_auto_headers=("User-Agent",)
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def forward(self, scope: Scope, receive: Receive, send: Send, base_url: str) -> None:
        assert self.session is not None, "proxy not started"
        declared = None
        headers: list[tuple[str, str]] = []
        host = ""
        for key, value in scope["headers"]:
            if key == b"content-length":
                declared = value
            if key == b"host":
                host = value.decode("latin-1")
            if key not in HOP_BY_HOP:
                headers.append((key.decode("latin-1"), value.decode("latin-1")))
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await send_problem(send, 413, "payload_too_large", f"Request body exceeds {self.max_body_bytes} bytes")
            return
        try:
            body = await read_body(receive, self.max_body_bytes)
        except BodyTooLarge:
            await send_problem(send, 413, "payload_too_large", f"Request body exceeds {self.max_body_bytes} bytes")
            return
        client = scope.get("client")
        headers.append(("x-forwarded-for", client[0] if client else ""))
        headers.append(("x-forwarded-proto", scope.get("scheme", "http")))
        if host:
            headers.append(("x-forwarded-host", host))
        request_id = current_request_id()
        if request_id:
            headers.append(("x-request-id", request_id))
        headers.append(("traceparent", child_traceparent()))
        path = scope.get("raw_path") or scope["path"].encode()
        url = base_url + path.decode("latin-1")
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        try:
            async with self.session.request(
                scope["method"], aiohttp.client.URL(url, encoded=True), headers=headers, data=body or None,
                allow_redirects=False,
            ) as upstream:
                out = [
                    (k.lower(), v) for k, v in upstream.raw_headers if k.lower().decode("latin-1") not in RESPONSE_DROP
                ]
                payload = await upstream.read()
                out.append((b"content-length", str(len(payload)).encode()))
                await send({"type": "http.response.start", "status": upstream.status, "headers": out})
                await send({"type": "http.response.body", "body": payload})
        except TimeoutError:
            await send_problem(send, 504, "upstream_timeout", "The service did not answer in time")
        except aiohttp.ClientError as exc:
            log.warning("upstream_unavailable", url=base_url, error=repr(exc))
            await send_problem(send, 502, "upstream_unavailable", "The service is unavailable", {"retry-after": "1"})
        except asyncio.CancelledError:
            raise
