"""Parking on PostgreSQL: search throughput and latency with 500 lots, and reservations under contention.

    DNCITY_BENCH_PG_URL=postgresql+asyncpg://postgres@127.0.0.1:5432 .venv/bin/python benchmarks/parking_search.py

Measures the app as it runs in production, not in the load generator's process:

- creates a throw-away database, migrates it with the real migrations and seeds 500 lots through the
  service code (20 numbered car spaces and a 200-place motorbike pool each, a third of them half booked);
- serves the real app with granian (one worker) pinned to core 0 (``taskset -c 0``);
- drives it from core 1: wrk for search (GET /v1/parking/lots around random points of Da Nang, at
  ``--connections`` connections (16 and 64) and at one connection), and this process (pinned to core 1) for the
  contention test: 100 concurrent POST /v1/parking/reservations for the last 10 spaces, for one chosen
  space and for the last 30 pool places (free rate, so the figures are parking's own path without the
  payments round trip); checks exactly the free number succeed and the rest get 409; p50, p99.

PostgreSQL itself runs wherever the OS puts it (both cores), so it competes with the app for core 0.
Tokens are real ES256 JWTs verified by the app (a local key stands in for identity's JWKS; the server
process gets the public JWKS in an environment variable, see ``bench_app``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.parking.app import create_app
from services.parking.lots import service as lots
from services.parking.lots.schemas import LotCreate, PoolCreate, RateIn, SpaceCreate, SpacesCreate
from services.parking.reservations.models import Occupancy, Reservation
from services.parking.settings import ParkingSettings
from shared.auth import CachingVerifier, JWKSCache, TokenVerifier
from shared.db import Database
from shared.http11 import Http11Transport
from shared.migrations import upgrade
from shared.settings import PlatformSettings

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
# Da Nang's centre and a ~12 km box around it.
LAT0, LON0, SPAN = 16.05, 108.20, 0.11
ISSUER, AUDIENCE = "http://bench.invalid", "urn:dncity:api"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class Keys:
    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwks = {"keys": [{**jwk, "kid": "bench", "use": "sig", "alg": "ES256"}]}

    def token(self, sub: str, client_id: str, scopes: str) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "client_id": client_id,
            "scope": scopes,
            "iat": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
            "acr": "urn:dncity:loa:1",
        }
        return jwt.encode(claims, self.private, algorithm="ES256", headers={"kid": "bench", "typ": "at+jwt"})


def bench_app() -> FastAPI:
    """The server side (granian --factory): the real parking app on the bench database, with the bench JWKS."""
    jwks = json.loads(os.environ["DNCITY_BENCH_JWKS"])
    app = create_app(
        ParkingSettings(
            database_url=os.environ["DNCITY_BENCH_DB_URL"],
            db_pool_size=int(os.environ.get("DNCITY_BENCH_DB_POOL", "10")),
            expiry_sweep_interval_s=3600,
        ),
        PlatformSettings(
            redis_url=None, public_base_url=ISSUER, log_level="WARNING", payments_url="http://127.0.0.1:9"
        ),
    )
    inner = app.router.lifespan_context

    async def fetch() -> dict[str, Any]:
        return jwks

    @contextlib.asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        async with inner(a):
            # As in shared/app.py: the verifier behind the service's cache of verified tokens.
            a.state.verifier = CachingVerifier(TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=JWKSCache(fetch)))
            yield

    app.router.lifespan_context = lifespan
    return app


async def admin(server: str, sql: str) -> None:
    engine = create_async_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


def window() -> tuple[datetime, datetime]:
    day = (datetime.now(UTC).astimezone(LOCAL) + timedelta(days=1)).date()
    start = datetime(day.year, day.month, day.day, 9, tzinfo=LOCAL)
    return start, start + timedelta(hours=2)


async def seed(url: str, n_lots: int) -> None:
    rng = random.Random(7)
    db = Database(url)
    start, end = window()
    car = RateIn(mode="per_visit", day_price_vnd=30_000, night_price_vnd=50_000)
    bike = RateIn(mode="per_visit", day_price_vnd=5_000, night_price_vnd=10_000)
    async with db.sessionmaker() as session, session.begin():
        for i in range(n_lots):
            lot = await lots.create_lot(
                session,
                "bench-operator",
                LotCreate(
                    name=f"Lot {i}",
                    address=f"{i} Đường Bạch Đằng",
                    lat=LAT0 + rng.uniform(-SPAN / 2, SPAN / 2),
                    lon=LON0 + rng.uniform(-SPAN / 2, SPAN / 2),
                ),
            )
            spaces = await lots.add_spaces(
                session, lot, SpacesCreate(spaces=[SpaceCreate(label=f"S{j:02d}", accessible=j < 2) for j in range(20)])
            )
            await lots.add_pool(session, lot, PoolCreate(vehicle_type="motorbike", capacity=200))
            await lots.put_rate(session, lot, "car", car)
            await lots.put_rate(session, lot, "motorbike", bike)
            if i % 3 == 0:  # half of this lot's spaces booked for the searched window
                for space in spaces[:10]:
                    r = Reservation(
                        lot_id=lot.id,
                        user_sub=f"u{i}",
                        client_id="bench",
                        vehicle_type="car",
                        plate_number="43A-123.45",
                        plate_normalized="43A12345",
                        space_id=space.id,
                        start_at=start,
                        end_at=end,
                        status="confirmed",
                        amount_vnd=30_000,
                    )
                    session.add(r)
                    await session.flush()
                    session.add(
                        Occupancy(
                            reservation_id=r.id,
                            lot_id=lot.id,
                            space_id=space.id,
                            kind="booking",
                            start_at=start,
                            end_at=end,
                            status="booked",
                        )
                    )
    # Planner statistics, as a database in service has them (autovacuum would get there a bit later).
    async with db.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()
    await db.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(url: str, keys: Keys, pool: int, *, workers: int = 1, cores: str | None = "0") -> Any:
    port = free_port()
    env = {
        **os.environ,
        "DNCITY_BENCH_DB_URL": url,
        "DNCITY_BENCH_JWKS": json.dumps(keys.jwks),
        "DNCITY_BENCH_DB_POOL": str(pool),
        "PYTHONPATH": str(ROOT),
    }
    cmd = [
        str(ROOT / ".venv/bin/granian"),
        "--interface",
        "asgi",
        "--factory",
        "benchmarks.parking_search:bench_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if cores is not None:
        cmd = ["taskset", "-c", cores, *cmd]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError("server exited")
            time.sleep(0.1)
        else:
            raise RuntimeError("server did not start")
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


WRK_SCRIPT = """
math.randomseed(%(seed)d)
request = function()
  local lat = %(lat0)f + (math.random() - 0.5) * 0.06
  local lon = %(lon0)f + (math.random() - 0.5) * 0.06
  return wrk.format("GET", string.format(
    "/v1/parking/lots?lat=%%.6f&lon=%%.6f&radius_m=1500&vehicle_type=car&start_at=%(start)s&end_at=%(end)s&limit=20",
    lat, lon))
end
"""


def wrk(base: str, connections: int, seconds: float) -> dict[str, Any]:
    start, end = window()
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    script = WRK_SCRIPT % {
        "seed": random.randrange(1 << 30),
        "lat0": LAT0,
        "lon0": LON0,
        "start": start.astimezone(UTC).strftime(fmt),
        "end": end.astimezone(UTC).strftime(fmt),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            [
                "taskset",
                "-c",
                "1",
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "--latency",
                "--timeout",
                "10s",
                "-s",
                f.name,
                base,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        os.unlink(f.name)

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    assert not errors and not socket_errors, out
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
    }


async def contend(
    client: httpx.AsyncClient,
    keys: Keys,
    pid: int,
    lot_id: str,
    vehicle: str,
    n: int,
    space_id: str | None = None,
    day: int = 1,
) -> dict[str, Any]:
    start, end = window()
    start, end = start + timedelta(days=day), end + timedelta(days=day)
    # Tokens are signed before the clock starts: the client's own signing is not the server's latency.
    requests = []
    for i in range(n):
        headers = {
            "Authorization": "Bearer " + keys.token(f"c{i}-{uuid.uuid4().hex[:6]}", "dncity-mobile", "parking"),
            "Idempotency-Key": uuid.uuid4().hex,
        }
        body = {
            "lot_id": lot_id,
            "vehicle_type": vehicle,
            "plate_number": f"43A-{i:03d}.45",
            "start_at": start.isoformat(),
            "end_at": end.isoformat(),
        }
        if space_id:
            body["space_id"] = space_id
        requests.append((headers, body))

    async def one(headers: dict[str, str], body: dict[str, Any]) -> tuple[int, float]:
        t0 = time.perf_counter()
        response = await client.post("/v1/parking/reservations", json=body, headers=headers)
        return response.status_code, time.perf_counter() - t0

    from bench_env import tree_cpu_s  # only when run as a script (granian imports this module for bench_app)

    began, cpu0 = time.perf_counter(), tree_cpu_s(pid)
    results = await asyncio.gather(*[one(h, b) for h, b in requests])
    elapsed, cpu = time.perf_counter() - began, tree_cpu_s(pid) - cpu0
    latencies = [t for _, t in results]
    return {
        "statuses": dict(Counter(s for s, _ in results)),
        "wall_s": round(elapsed, 3),
        "p50_ms": round(pct(latencies, 0.5), 1),
        "p99_ms": round(pct(latencies, 0.99), 1),
        "server_cpu_ms_per_request": round(cpu / n * 1000, 2),
    }


async def contention(base: str, pid: int, keys: Keys) -> None:
    operator = {"Authorization": "Bearer " + keys.token("bench-op", "bench-op", "parking.lots.write")}
    free = {"mode": "per_visit", "day_price_vnd": 0, "night_price_vnd": 0}
    # The driver's HTTP client is the platform's own HTTP/1.1 transport (shared/http11.py): httpx's
    # default pool (httpcore) spent about a second of the driver's time on each burst of 100 requests
    # over kept-alive connections (measured: 100 concurrent GET /healthz, 0.99 s with httpcore, 14 ms
    # with this), which the figures used to include as if it were the server's latency.
    transport = Http11Transport(max_connections=200, max_idle=200, max_idle_s=60)
    async with httpx.AsyncClient(base_url=base, timeout=60, transport=transport) as client:
        lot = (
            await client.post(
                "/v1/parking/operator/lots",
                headers=operator,
                json={"name": "Contended", "address": "x", "lat": LAT0, "lon": LON0},
            )
        ).json()
        spaces = (
            await client.post(
                f"/v1/parking/operator/lots/{lot['id']}/spaces",
                headers=operator,
                json={"spaces": [{"label": f"C{i}"} for i in range(10)]},
            )
        ).json()
        assert len(spaces) == 10, spaces
        await client.post(
            f"/v1/parking/operator/lots/{lot['id']}/pools",
            headers=operator,
            json={"vehicle_type": "motorbike", "capacity": 30},
        )
        for vehicle in ("car", "motorbike"):
            await client.put(f"/v1/parking/operator/lots/{lot['id']}/rates/{vehicle}", headers=operator, json=free)
        lot2 = (
            await client.post(
                "/v1/parking/operator/lots",
                headers=operator,
                json={"name": "One space", "address": "x", "lat": LAT0, "lon": LON0},
            )
        ).json()
        one = (
            await client.post(
                f"/v1/parking/operator/lots/{lot2['id']}/spaces", headers=operator, json={"spaces": [{"label": "ONLY"}]}
            )
        ).json()
        await client.put(f"/v1/parking/operator/lots/{lot2['id']}/rates/car", headers=operator, json=free)
        # Warm every worker's connection pool and code paths with the same burst on another day (a
        # running service is warm; a cold one opens its database connections during the first burst).
        for vehicle in ("car", "motorbike"):
            await contend(client, keys, pid, lot["id"], vehicle, 100, day=2)

        any_space = await contend(client, keys, pid, lot["id"], "car", 100)
        print(f"contention, 100 concurrent for 10 spaces: {any_space}")
        assert any_space["statuses"] == {201: 10, 409: 90}, any_space
        chosen = await contend(client, keys, pid, lot2["id"], "car", 100, space_id=one[0]["id"])
        print(f"contention, 100 concurrent for one chosen space: {chosen}")
        assert chosen["statuses"] == {201: 1, 409: 99}, chosen
        pool = await contend(client, keys, pid, lot["id"], "motorbike", 100)
        print(f"contention, 100 concurrent for 30 pool places: {pool}")
        assert pool["statuses"] == {201: 30, 409: 70}, pool


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lots", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--connections", default="16,64", help="wrk connection counts, comma-separated (16: the goal's load)"
    )
    parser.add_argument("--db-pool", type=int, default=10)
    parser.add_argument("--keep-db", help="reuse (and keep) this seeded database name")
    parser.add_argument("--only", choices=("search", "contention"), help="run one part only")
    parser.add_argument("--contention-workers", type=int, default=1, help="server workers for the contention part")
    args = parser.parse_args()
    # The load generator (this process and wrk) stays on core 1; the server gets core 0.
    os.sched_setaffinity(0, {1})
    server_url = os.environ.get("DNCITY_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432")
    name = args.keep_db or f"dncity_bench_parking_{os.getpid()}"
    url = f"{server_url}/{name}"
    try:
        if not args.keep_db or not asyncio.run(exists(server_url, name)):
            asyncio.run(admin(server_url, f'CREATE DATABASE "{name}"'))
            upgrade("parking", url)
            t0 = time.perf_counter()
            asyncio.run(seed(url, args.lots))
            print(f"seeded {args.lots} lots (20 spaces + a 200-place pool each) in {time.perf_counter() - t0:.1f} s")
        keys = Keys()
        if args.only != "contention":
            with server(url, keys, args.db_pool) as (base, pid):
                search(base, pid, args)
        if args.only != "search":
            # One worker on core 0 by default, like search; --contention-workers N runs N unpinned.
            workers = args.contention_workers
            with server(url, keys, args.db_pool, workers=workers, cores="0" if workers == 1 else None) as (base, pid):
                print(
                    f"(contention: granian {workers} worker(s), {'on core 0' if workers == 1 else 'unpinned'}; "
                    f"this driver on core 1)"
                )
                asyncio.run(contention(base, pid, keys))
    finally:
        if not args.keep_db:
            asyncio.run(admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def search(base: str, pid: int, args: argparse.Namespace) -> None:
    from bench_env import tree_cpu_s  # only when run as a script (granian imports this module for bench_app)

    counts = [int(c) for c in str(args.connections).split(",")]
    wrk(base, counts[0], 2)  # warm up
    for connections in counts:
        cpu0 = tree_cpu_s(pid)
        many = wrk(base, connections, args.seconds)
        cpu_ms = (tree_cpu_s(pid) - cpu0) / many["requests"] * 1000
        # Server CPU per request: what the core could sustain if the app had it to itself (on a shared
        # machine the wall-clock req/s also depends on what else runs on core 0, PostgreSQL included).
        # wrk keeps every connection busy (closed loop): past saturation, more connections only queue,
        # and latency grows with them (p50 ~ connections / throughput).
        print(
            f"search, {connections} connections: {many['requests']} requests, {many['rps']:.0f} req/s, "
            f"p50 {many['p50_ms']:.1f} ms, p99 {many['p99_ms']:.1f} ms; server CPU {cpu_ms:.2f} ms/request "
            f"(= {1000 / cpu_ms:.0f} req per CPU-second)"
        )
    single = wrk(base, 1, min(args.seconds, 5))
    print(
        f"search, 1 connection: {single['rps']:.0f} req/s, p50 {single['p50_ms']:.1f} ms, p99 {single['p99_ms']:.1f} ms"
    )
    print(
        f"(server: granian 1 worker on core 0; wrk on core 1; radius 1.5 km, 20 per page; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )


async def exists(server_url: str, name: str) -> bool:
    engine = create_async_engine(f"{server_url}/postgres")
    async with engine.connect() as conn:
        found = (await conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})).first()
    await engine.dispose()
    return found is not None


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
