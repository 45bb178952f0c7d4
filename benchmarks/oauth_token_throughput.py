"""Da Nang ID throughput on one core: client-credentials grants/s and password sign-ins/s.

The identity app runs under granian (default; ``--server uvicorn`` for uvicorn with uvloop + httptools)
in a subprocess pinned with ``taskset`` to CPU 0, with its own SQLite database; this process drives it
from CPU 1. Client-credentials requests
go over keep-alive connections with a minimal HTTP/1.1 client (so the driver is not the bottleneck);
sign-ins are the real browser flow: GET /oauth2/authorize → GET the sign-in page → POST the form
(Argon2id verification with the accounts module's parameters).

    .venv/bin/python benchmarks/oauth_token_throughput.py [--seconds 8] [--connections 32] [--server uvicorn]

Besides requests per wall-clock second it prints requests per CPU-second of the server process tree,
which stays meaningful when other work shares the machine, and the CPU cost of Authlib's core per grant
inline versus in a worker thread (why the adapter runs the core inline).

Goals (issue 4): >= 2,500 client-credentials grants/s and >= 30 sign-ins/s per core.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
from bench_env import tree_cpu_s  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "Benchmark-password-2026"
PHONE = "+84905000111"
REDIRECT = "https://bench.example.vn/callback"


def setup(env: dict[str, str]) -> tuple[str, str]:
    """Migrate a fresh identity database and register a client and a person."""
    os.environ.update(env)
    from dncity.cli import database_url
    from services.identity.accounts.models import Account
    from services.identity.accounts.passwords import hash_password
    from services.identity.clients.schemas import ClientCreate
    from services.identity.clients.service import create_client
    from shared.db import Database
    from shared.migrations import upgrade

    url = database_url("identity")
    upgrade("identity", url)

    async def seed() -> tuple[str, str]:
        db = Database(url)
        async with db.sessionmaker() as session, session.begin():
            agency = await create_client(
                session,
                ClientCreate(
                    client_id="bench-agency",
                    name="Bench agency",
                    client_type="confidential",
                    grant_types=["client_credentials"],
                    scopes=["health.schedules.write"],
                ),
            )
            await create_client(
                session,
                ClientCreate(
                    client_id="bench-portal",
                    name="Bench portal",
                    client_type="confidential",
                    grant_types=["authorization_code"],
                    redirect_uris=[REDIRECT],
                    scopes=["openid", "profile"],
                ),
            )
            session.add(
                Account(
                    kind="citizen",
                    status="active",
                    level=1,
                    full_name="Bench Person",
                    phone_e164=PHONE,
                    phone_verified=True,
                    password_hash=await hash_password(PASSWORD),
                )
            )
        await db.dispose()
        assert agency.client_secret
        return agency.client_id, agency.client_secret

    return asyncio.run(seed())


def start_server(env: dict[str, str], port: int, server: str) -> subprocess.Popen[bytes]:
    python = str(ROOT / ".venv" / "bin" / "python")
    if server == "granian":
        cmd = [
            python,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--runtime-threads",
            "1",
            "--loop",
            "uvloop",
            "--log-level",
            "warning",
            "services.identity.app:create_app",
        ]
    else:
        cmd = [
            python,
            "-m",
            "uvicorn",
            "services.identity.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    process = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("identity did not start")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    match = re.search(rb"(?i)content-length:\s*(\d+)", head)
    body = await reader.readexactly(int(match.group(1))) if match else b""
    return status, body


async def client_credentials(
    port: int, client_id: str, secret: str, seconds: float, connections: int
) -> tuple[int, int, float]:
    body = b"grant_type=client_credentials"
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    request = (
        f"POST /oauth2/token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {basic}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    ok = failed = 0
    stop_at = 0.0
    started = asyncio.Event()

    async def worker() -> None:
        nonlocal ok, failed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await started.wait()
        while time.monotonic() < stop_at:
            writer.write(request)
            status, payload = await _read_response(reader)
            if status == 200 and payload.startswith(b'{"'):
                ok += 1
            else:
                failed += 1
        writer.close()

    tasks = [asyncio.create_task(worker()) for _ in range(connections)]
    await asyncio.sleep(0.2)
    begin = time.monotonic()
    stop_at = begin + seconds
    started.set()
    await asyncio.gather(*tasks)
    return ok, failed, time.monotonic() - begin


async def sign_ins(port: int, seconds: float, concurrency: int) -> tuple[int, int, float]:
    base = f"http://127.0.0.1:{port}"
    params = urlencode(
        {
            "response_type": "code",
            "client_id": "bench-portal",
            "redirect_uri": REDIRECT,
            "scope": "openid profile",
            "state": "s",
            "prompt": "login",
        }
    )
    ok = failed = 0
    stop_at = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal ok, failed
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            while time.monotonic() < stop_at:
                client.cookies.clear()
                start = await client.get(f"/oauth2/authorize?{params}")
                location = start.headers.get("location", "")
                page = await client.get(location)
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
                rid = re.search(r'name="rid" value="([^"]+)"', page.text)
                if not csrf or not rid:
                    failed += 1
                    continue
                done = await client.post(
                    "/oauth2/signin",
                    data={"rid": rid.group(1), "csrf_token": csrf.group(1), "login": PHONE, "password": PASSWORD},
                )
                if done.status_code == 303:
                    ok += 1
                else:
                    failed += 1

    begin = time.monotonic()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return ok, failed, time.monotonic() - begin


def adapter_costs(client_id: str, secret: str) -> dict[str, float]:
    """CPU microseconds per client-credentials grant in Authlib's core: inline on the event loop (what
    the adapter does, all data gathered beforehand) versus handed to a worker thread."""
    from starlette.datastructures import Headers

    from services.identity.app import create_app
    from services.identity.oauth.adapter import CoreRequest
    from services.identity.oauth.runtime import new_exchange

    async def measure() -> dict[str, float]:
        app = create_app()
        async with app.router.lifespan_context(app):
            rt = app.state.oauth
            async with app.state.db.sessionmaker() as session:
                view = await rt.clients.get(session, client_id)
            basic = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()

            def grant() -> None:
                core = CoreRequest(
                    "POST",
                    rt.issuer + "/oauth2/token",
                    Headers({"authorization": basic}),
                    [],
                    [("grant_type", "client_credentials")],
                )
                ex = new_exchange()
                ex.clients[client_id] = view
                with ex:
                    assert rt.provider.create_token_response(core).status == 200

            for _ in range(200):
                grant()
            n = 2000
            begin = time.process_time()
            for _ in range(n):
                grant()
            inline = (time.process_time() - begin) / n * 1e6
            begin = time.process_time()
            for _ in range(n):
                await asyncio.to_thread(grant)
            threaded = (time.process_time() - begin) / n * 1e6
            return {"inline_us": round(inline, 1), "worker_thread_us": round(threaded, 1)}

    return asyncio.run(measure())


def argon2_rates() -> dict[str, float]:
    """Single-core verifications/s at the configured parameters and at OWASP's minimum (m=19 MiB, t=2, p=1)."""
    from argon2 import PasswordHasher

    from services.identity.accounts import passwords

    rates: dict[str, float] = {}
    configured = passwords._hasher
    owasp = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
    for name, hasher in (("configured", configured), ("owasp_minimum", owasp)):
        stored = hasher.hash(PASSWORD)
        begin, n = time.perf_counter(), 0
        while time.perf_counter() - begin < 2:
            hasher.verify(stored, PASSWORD)
            n += 1
        rates[name] = n / (time.perf_counter() - begin)
        rates[f"{name}_params"] = f"t={hasher.time_cost} m={hasher.memory_cost // 1024}MiB p={hasher.parallelism}"
    return rates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--signin-concurrency", type=int, default=4)
    parser.add_argument("--server", choices=["uvicorn", "granian"], default="granian")
    args = parser.parse_args()

    from dncity import embedded_redis

    tmp = Path(tempfile.mkdtemp(prefix="dncity-bench-"))
    redis = None
    redis_url = os.environ.get("DNCITY_REDIS_URL")
    if not redis_url:
        redis = embedded_redis.start()
        redis_url = redis.url
    port = embedded_redis.free_port()
    env = {
        "DNCITY_VAR_DIR": str(tmp),
        "DNCITY_IDENTITY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'identity.db'}",
        "DNCITY_REDIS_URL": redis_url,
        "DNCITY_LOG_LEVEL": "WARNING",
        "DNCITY_PROFILE": "dev",
        "DNCITY_EVENT_POLL_INTERVAL_S": "1.0",
    }
    client_id, secret = setup(env)
    server = start_server(env, port, args.server)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the driver stays off the server's core
    try:
        asyncio.run(client_credentials(port, client_id, secret, 1.0, args.connections))  # warm-up
        cpu0 = tree_cpu_s(server.pid)
        ok, failed, elapsed = asyncio.run(client_credentials(port, client_id, secret, args.seconds, args.connections))
        cc_cpu = tree_cpu_s(server.pid) - cpu0
        cc_rate = ok / elapsed
        cpu0 = tree_cpu_s(server.pid)
        s_ok, s_failed, s_elapsed = asyncio.run(sign_ins(port, args.seconds, args.signin_concurrency))
        signin_cpu = tree_cpu_s(server.pid) - cpu0
        signin_rate = s_ok / s_elapsed
        load = os.getloadavg()[0]
        costs = adapter_costs(client_id, secret)
        rates = argon2_rates()
    finally:
        server.terminate()
        server.wait(10)
        if redis is not None:
            redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "server": f"{args.server} (uvloop), 1 process pinned to CPU 0, SQLite",
        "load_average_1m_during_run": round(load, 2),
        "client_credentials_grants_per_s": round(cc_rate, 1),
        "client_credentials_grants_per_server_cpu_second": round(ok / cc_cpu, 1) if cc_cpu else None,
        "client_credentials": {
            "ok": ok,
            "failed": failed,
            "seconds": round(elapsed, 2),
            "connections": args.connections,
            "goal_per_s": 2500,
        },
        "password_sign_ins_per_s": round(signin_rate, 1),
        "password_sign_ins_per_server_cpu_second": round(s_ok / signin_cpu, 1) if signin_cpu else None,
        "sign_ins": {
            "ok": s_ok,
            "failed": s_failed,
            "seconds": round(s_elapsed, 2),
            "concurrency": args.signin_concurrency,
            "goal_per_s": 30,
        },
        "authlib_core_cpu_per_cc_grant": costs,
        "argon2id_verifications_per_s_one_core": {
            k: (round(v, 1) if isinstance(v, float) else v) for k, v in rates.items()
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
