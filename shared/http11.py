"""HTTP/1.1 at the protocol level: keep-alive connections, httptools parsing.

Used by the gateway to forward to the services, and (as an httpx transport, :class:`Http11Transport`)
by the payments service to call the payment provider, the hottest outbound call of the platform.

Why not aiohttp (or httpx): measured on the gateway's core, aiohttp's client (request/response objects,
header multidicts, cookie and redirect handling, stream readers) cost about half of the gateway's CPU per
forwarded request; httpx was slower still. A proxy needs none of that: it writes the request it already
has as bytes and reads back status, headers and body. httptools (the llhttp parser uvicorn uses) does the
parsing, including chunked bodies.

Connections idle longer than ``max_idle_s`` are not reused (the services' servers close idle
keep-alive connections after about 5 s, and a request written into a connection the server is closing
would fail). A response to HEAD has no body: the connection is then not reused.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

import httptools
import httpx


class UpstreamConnectionError(ConnectionError):
    """The request failed on the wire; it may have reached the upstream."""


class UpstreamConnectError(UpstreamConnectionError):
    """No connection could be made: the request never left."""


class _Connection(asyncio.Protocol):
    __slots__ = (
        "body",
        "closed",
        "head",
        "headers",
        "idle_since",
        "keep_alive",
        "parser",
        "status",
        "transport",
        "waiter",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes]] | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.closed = False
        self.head = False
        self.keep_alive = True
        self.idle_since = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamConnectionError(f"invalid response from upstream: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(UpstreamConnectionError("upstream closed the connection"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if self.head:  # no body follows a HEAD response, whatever Content-Length says
            self.keep_alive = False
            self._complete()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if not self.head:
            self.keep_alive = self.parser.should_keep_alive()
            self._complete()

    def _complete(self) -> None:
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
            waiter.set_result((self.parser.get_status_code(), self.headers, body))

    def _fail(self, exc: Exception) -> None:
        waiter = self.waiter
        self.waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def start(self, payload: bytes, head: bool) -> asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes]]:
        self.headers = []
        self.body = []
        self.head = head
        self.keep_alive = True
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(payload)
        return self.waiter


class UpstreamPool:
    """Keep-alive connections to one upstream (host:port)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout_s: float = 2.0,
        max_idle: int = 200,
        max_idle_s: float = 2.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        default_port = 443 if ssl_context is not None else 80
        self.host_header = (host if port == default_port else f"{host}:{port}").encode()
        self.connect_timeout_s = connect_timeout_s
        self.max_idle = max_idle
        self.max_idle_s = max_idle_s
        self.idle: list[_Connection] = []

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _transport, conn = await loop.create_connection(
                    _Connection,
                    self.host,
                    self.port,
                    ssl=self.ssl_context,
                    server_hostname=self.host if self.ssl_context is not None else None,
                )
        except TimeoutError as exc:
            raise UpstreamConnectError("connecting to the upstream timed out") from exc
        except OSError as exc:  # includes ssl.SSLError (a certificate that does not verify)
            raise UpstreamConnectError(f"cannot connect to the upstream: {exc}") from exc
        return conn

    async def request(
        self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes | None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send one request; ``target`` is the raw path and query. Raises UpstreamConnectionError."""
        conn = None
        now = time.monotonic()
        while self.idle:
            candidate = self.idle.pop()
            if not candidate.closed and now - candidate.idle_since < self.max_idle_s:
                conn = candidate
                break
            candidate.close()
        if conn is None:
            conn = await self._connect()
        parts = [method.encode(), b" ", target, b" HTTP/1.1\r\nhost: ", self.host_header, b"\r\n"]
        for name, value in headers:
            parts += [name, b": ", value, b"\r\n"]
        if body:
            parts += [b"content-length: ", str(len(body)).encode(), b"\r\n\r\n", body]
        elif method in ("POST", "PUT", "PATCH"):
            parts.append(b"content-length: 0\r\n\r\n")
        else:
            parts.append(b"\r\n")
        try:
            result = await conn.start(b"".join(parts), method == "HEAD")
        except BaseException:
            conn.close()  # a timeout or a failure leaves the connection in an unknown state
            raise
        if conn.keep_alive and not conn.closed and len(self.idle) < self.max_idle:
            conn.idle_since = time.monotonic()
            self.idle.append(conn)
        else:
            conn.close()
        return result

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


class UpstreamClient:
    """One pool per upstream origin."""

    def __init__(self, *, connect_timeout_s: float = 2.0, max_idle: int = 200) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.max_idle = max_idle
        self.pools: dict[str, UpstreamPool] = {}

    def pool(self, base_url: str) -> UpstreamPool:
        pool = self.pools.get(base_url)
        if pool is None:
            scheme, _, hostport = base_url.partition("://")
            if scheme != "http":
                raise ValueError(f"upstreams are plain http on the internal network, not {base_url}")
            host, _, port = hostport.rstrip("/").partition(":")
            pool = self.pools[base_url] = UpstreamPool(
                host, int(port or 80), connect_timeout_s=self.connect_timeout_s, max_idle=self.max_idle
            )
        return pool

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()


# Hop-by-hop and framing headers: the pool writes Host and Content-Length itself.
_OWN_HEADERS = frozenset({b"host", b"content-length", b"transfer-encoding", b"connection", b"keep-alive"})


class Http11Transport(httpx.AsyncBaseTransport):
    """An httpx transport on these pools: httpx's API and error classes, a fraction of its CPU per call.

    Timeouts come from the request (httpx's ``timeout`` extension): ``connect`` bounds connecting,
    ``read`` bounds the wait for the whole response. Errors map to httpx's own: no connection →
    ``ConnectError``/``ConnectTimeout`` (the request never left), a connection lost or an unparsable
    response → ``RemoteProtocolError``, no response in time → ``ReadTimeout`` (both: it may have
    arrived). No proxies and no HTTP/2; https verifies certificates with the system's trust store.
    At most ``max_connections`` requests are in flight per origin (one connection each); the others wait
    for a slot for at most the ``pool`` timeout (``PoolTimeout``: nothing was sent).
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_idle: int = 100,
        max_idle_s: float = 2.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context``: for https, e.g. a provider's private CA or a client certificate (mutual TLS);
        by default the system's trust store with hostname checks."""
        self.max_connections = max_connections
        self.max_idle = min(max_idle, max_connections)
        self.max_idle_s = max_idle_s
        # Per origin: its keep-alive pool and the semaphore that caps its requests in flight.
        self.pools: dict[tuple[bytes, bytes, int | None], tuple[UpstreamPool, asyncio.Semaphore]] = {}
        self._ssl: ssl.SSLContext | None = ssl_context

    def _pool(self, url: httpx.URL, connect_timeout_s: float) -> tuple[UpstreamPool, asyncio.Semaphore]:
        key = (url.raw_scheme, url.raw_host, url.port)
        found = self.pools.get(key)
        if found is None:
            if url.scheme == "https":
                if self._ssl is None:
                    self._ssl = ssl.create_default_context()
                context, default_port = self._ssl, 443
            elif url.scheme == "http":
                context, default_port = None, 80
            else:
                raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}")
            pool = UpstreamPool(
                url.host,
                url.port or default_port,
                connect_timeout_s=connect_timeout_s,
                max_idle=self.max_idle,
                max_idle_s=self.max_idle_s,
                ssl_context=context,
            )
            found = self.pools[key] = (pool, asyncio.Semaphore(self.max_connections))
        return found

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        connect_s = timeouts.get("connect") or 5.0
        read_s = timeouts.get("read")
        body = await request.aread()
        headers = [(name.lower(), value) for name, value in request.headers.raw if name.lower() not in _OWN_HEADERS]
        pool, slots = self._pool(request.url, connect_s)
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await slots.acquire()
        except TimeoutError as exc:
            raise httpx.PoolTimeout("no free connection slot in time", request=request) from exc
        try:
            async with asyncio.timeout(read_s):
                status, raw_headers, payload = await pool.request(request.method, request.url.raw_path, headers, body)
        except UpstreamConnectError as exc:
            cause = exc.__cause__
            error = httpx.ConnectTimeout if isinstance(cause, TimeoutError) else httpx.ConnectError
            raise error(str(exc), request=request) from exc
        except UpstreamConnectionError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except TimeoutError as exc:
            raise httpx.ReadTimeout("no response in time", request=request) from exc
        finally:
            slots.release()
        return httpx.Response(status, headers=raw_headers, stream=httpx.ByteStream(payload), request=request)

    async def aclose(self) -> None:
        for pool, _ in self.pools.values():
            pool.close()
        self.pools.clear()


__all__ = [
    "Any",
    "Http11Transport",
    "UpstreamClient",
    "UpstreamConnectError",
    "UpstreamConnectionError",
    "UpstreamPool",
]
