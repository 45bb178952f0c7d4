"""shared/http11.py as an httpx transport, over real sockets: what it sends, what it reads back, and
how each way a call can fail reaches the caller (as httpx's own errors, which retry logic relies on);
and the payments client's time budget over such a socket."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from shared.http11 import Http11Transport
from tests.helpers.live import LiveServer


def echo_app() -> FastAPI:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.api_route("/echo/{rest:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def echo(rest: str, request: Request) -> dict[str, object]:
        return {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": {k: v for k, v in request.headers.items() if k in ("idempotency-key", "host", "x-many")},
            "body": (await request.body()).decode(),
            "client_port": request.client.port if request.client else None,
        }

    @app.get("/chunked")
    async def chunked() -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for n in range(3):
                yield f"part{n};".encode()

        return StreamingResponse(parts(), media_type="text/plain")

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        await asyncio.sleep(1.0)
        return {"late": True}

    return app


@pytest.fixture(scope="module")
def server() -> AsyncIterator[LiveServer]:
    live = LiveServer(echo_app()).start()
    yield live  # type: ignore[misc]
    live.stop()


async def test_requests_and_responses_round_trip_over_kept_alive_connections(server: LiveServer) -> None:
    transport = Http11Transport()
    async with httpx.AsyncClient(base_url=server.url, transport=transport, timeout=5) as client:
        posted = await client.post(
            "/echo/a%20b",
            params={"q": "đà nẵng", "n": 2},
            json={"amount": 50_000},
            headers={"Idempotency-Key": "k-1", "X-Many": "1"},
        )
        assert posted.status_code == 200 and posted.headers["content-type"] == "application/json"
        body = posted.json()
        assert body["method"] == "POST" and body["path"] == "/echo/a b"
        assert httpx.QueryParams(body["query"]) == httpx.QueryParams({"q": "đà nẵng", "n": "2"})
        assert body["headers"] == {"idempotency-key": "k-1", "host": server.url.removeprefix("http://"), "x-many": "1"}
        assert json.loads(body["body"]) == {"amount": 50_000}
        # The second call reuses the first one's connection (same client port on the server side).
        again = (await client.delete("/echo/x")).json()
        assert again["method"] == "DELETE" and again["body"] == "" and again["client_port"] == body["client_port"]
        streamed = await client.get("/chunked")
        assert streamed.status_code == 200 and streamed.text == "part0;part1;part2;"
        missing = await client.get("/nowhere")
        assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}


async def test_nothing_listening_is_a_connect_error() -> None:
    from dncity.embedded_redis import free_port

    async with httpx.AsyncClient(transport=Http11Transport(), timeout=2) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{free_port('127.0.0.1')}/")


async def test_no_answer_in_time_is_a_read_timeout_and_the_connection_is_not_reused(server: LiveServer) -> None:
    transport = Http11Transport()
    async with httpx.AsyncClient(
        base_url=server.url, transport=transport, timeout=httpx.Timeout(0.2, connect=2)
    ) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/slow")
        assert all(not pool.idle for pool, _ in transport.pools.values())
        assert (await client.get("/echo/after")).json()["path"] == "/echo/after"


async def raw_server(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> tuple[asyncio.Server, str]:
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    return srv, f"http://127.0.0.1:{port}"


async def test_a_connection_closed_before_the_answer_is_a_protocol_error() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    srv, url = await raw_server(hang_up)
    try:
        async with httpx.AsyncClient(transport=Http11Transport(), timeout=2) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post(url + "/v1/payment_intents", json={"amount": 1})
    finally:
        srv.close()
        await srv.wait_closed()


async def test_garbage_instead_of_http_is_a_protocol_error_and_gzip_is_decoded() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        writer.close()

    async def zipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        payload = gzip.compress(b'{"ok": true}')
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
            b"content-length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
        )
        await writer.drain()
        writer.close()

    bad, bad_url = await raw_server(garbage)
    good, good_url = await raw_server(zipped)
    try:
        async with httpx.AsyncClient(transport=Http11Transport(), timeout=2) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(bad_url + "/")
            response = await client.get(good_url + "/")
            assert response.json() == {"ok": True}
    finally:
        for srv in (bad, good):
            srv.close()
            await srv.wait_closed()


async def test_only_http_and_https() -> None:
    async with httpx.AsyncClient(transport=Http11Transport(), timeout=2) as client:
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("ftp://127.0.0.1/file")


def _self_signed(tmp_path) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A certificate for 127.0.0.1 signed by itself, and its key (PEM files)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "provider.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_file), str(key_file)


async def test_https_verifies_the_certificate(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Real providers are https: a certificate the client trusts works, any other is a connect error."""
    import ssl

    cert, key = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        body = json.dumps({"host": head.split(b"host: ")[1].split(b"\r\n")[0].decode()}).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_context)
    url = f"https://127.0.0.1:{srv.sockets[0].getsockname()[1]}/v1/payment_intents"
    try:
        trusting = Http11Transport(ssl_context=ssl.create_default_context(cafile=cert))
        async with httpx.AsyncClient(transport=trusting, timeout=5) as client:
            response = await client.get(url)
            assert response.status_code == 200 and response.json()["host"] == url.split("/")[2]
        async with httpx.AsyncClient(transport=Http11Transport(), timeout=5) as client:
            with pytest.raises(httpx.ConnectError):  # not in the system's trust store
                await client.get(url)
    finally:
        srv.close()
        await srv.wait_closed()


async def test_a_payments_call_gives_up_within_its_budget() -> None:
    """A payments service that accepts the request and never answers: the caller (holding a booking's
    locks) gets payments_unavailable after its budget, not after several read timeouts and retries."""
    import time

    from shared.clients.payments import PaymentCreate, PaymentsClient
    from shared.errors import ServiceUnavailable
    from shared.http import ServiceClient
    from shared.service_auth import ServiceTokenProvider

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.read()  # never answers; returns when the caller hangs up

    srv, url = await raw_server(silent)

    async def fetch() -> tuple[str, int]:
        return "token", 600

    http = ServiceClient(read_timeout=10.0, retries=2)
    client = PaymentsClient(http, url, ServiceTokenProvider(fetch), budget_s=0.5)
    data = PaymentCreate(amount_vnd=10_000, purpose="parking", reference="r1", payer_sub="p1", description="x")
    began = time.monotonic()
    try:
        with pytest.raises(ServiceUnavailable) as info:
            await client.create(data, idempotency_key="k1")
        assert info.value.code == "payments_unavailable"
        assert time.monotonic() - began < 5  # one read timeout alone would be 10 s
    finally:
        await http.aclose()
        srv.close()
        await srv.wait_closed()


async def test_in_flight_requests_per_origin_are_capped() -> None:
    """A provider sees at most max_connections at once; a request that finds no slot in time fails
    with PoolTimeout before anything is sent."""
    open_now = peak = 0

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                await asyncio.sleep(0.2)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            open_now -= 1
            writer.close()

    srv, url = await raw_server(slow)
    try:
        async with httpx.AsyncClient(transport=Http11Transport(max_connections=2), timeout=5) as client:
            answers = await asyncio.gather(*[client.get(url + f"/{n}") for n in range(6)])
            assert [a.text for a in answers] == ["ok"] * 6 and peak == 2
        tight = httpx.Timeout(5, pool=0.05)
        async with httpx.AsyncClient(transport=Http11Transport(max_connections=1), timeout=tight) as client:
            results = await asyncio.gather(client.get(url + "/a"), client.get(url + "/b"), return_exceptions=True)
            assert sorted(type(r).__name__ for r in results) == ["PoolTimeout", "Response"]
    finally:
        srv.close()
        await srv.wait_closed()
