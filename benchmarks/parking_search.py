"""Parking on PostgreSQL: search throughput and latency with 500 lots, and reservations under contention.

    DNCITY_BENCH_PG_URL=postgresql+asyncpg://postgres@127.0.0.1:5432 .venv/bin/python benchmarks/parking_search.py

Creates a throw-away database, migrates it with the real migrations, seeds 500 lots (20 numbered car
spaces and a 200-place motorbike pool each, a third of them half booked), then drives the real app
in-process (httpx ASGI transport, one event loop, so app and client share one core):

- search: GET /v1/parking/lots around random points of Da Nang for ``--seconds``; requests/s, p50, p99;
- contention: 100 concurrent POST /v1/parking/reservations for the last 10 spaces, for one chosen
  space and for the last 30 pool places (free rate, so the figures are parking's own path without the
  payments round trip); checks exactly the free number succeed and the rest get 409; p50, p99.

Tokens are real ES256 JWTs verified by the app (a local key stands in for identity's JWKS).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.parking.app import create_app
from services.parking.lots import service as lots
from services.parking.lots.schemas import LotCreate, PoolCreate, RateIn, SpaceCreate, SpacesCreate
from services.parking.reservations.models import Occupancy, Reservation
from services.parking.settings import ParkingSettings
from shared.auth import JWKSCache, TokenVerifier
from shared.db import Database
from shared.migrations import upgrade
from shared.settings import PlatformSettings

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
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "client_id": client_id, "scope": scopes,
                  "iat": now, "exp": now + 3600, "jti": uuid.uuid4().hex, "acr": "urn:dncity:loa:1"}
        return jwt.encode(claims, self.private, algorithm="ES256", headers={"kid": "bench", "typ": "at+jwt"})

    def verifier(self) -> TokenVerifier:
        async def fetch() -> dict[str, Any]:
            return self.jwks

        return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=JWKSCache(fetch))


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
            lot = await lots.create_lot(session, "bench-operator", LotCreate(
                name=f"Lot {i}", address=f"{i} Đường Bạch Đằng", lat=LAT0 + rng.uniform(-SPAN / 2, SPAN / 2),
                lon=LON0 + rng.uniform(-SPAN / 2, SPAN / 2)))
            spaces = await lots.add_spaces(session, lot, SpacesCreate(spaces=[
                SpaceCreate(label=f"S{j:02d}", accessible=j < 2) for j in range(20)]))
            await lots.add_pool(session, lot, PoolCreate(vehicle_type="motorbike", capacity=200))
            await lots.put_rate(session, lot, "car", car)
            await lots.put_rate(session, lot, "motorbike", bike)
            if i % 3 == 0:  # half of this lot's spaces booked for the searched window
                for space in spaces[:10]:
                    r = Reservation(lot_id=lot.id, user_sub=f"u{i}", client_id="bench", vehicle_type="car",
                                    plate_number="43A-123.45", plate_normalized="43A12345", space_id=space.id,
                                    start_at=start, end_at=end, status="confirmed", amount_vnd=30_000)
                    session.add(r)
                    await session.flush()
                    session.add(Occupancy(reservation_id=r.id, lot_id=lot.id, space_id=space.id, kind="booking",
                                          start_at=start, end_at=end, status="booked"))
    await db.dispose()


async def bench_search(client: httpx.AsyncClient, seconds: float, concurrency: int) -> dict[str, float]:
    start, end = window()
    rng = random.Random(1)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            params = {"lat": LAT0 + rng.uniform(-0.03, 0.03), "lon": LON0 + rng.uniform(-0.03, 0.03),
                      "radius_m": 1500, "vehicle_type": "car", "start_at": start.isoformat(),
                      "end_at": end.isoformat(), "limit": 20}
            t0 = time.perf_counter()
            response = await client.get("/v1/parking/lots", params=params)
            latencies.append(time.perf_counter() - t0)
            statuses[response.status_code] += 1

    began, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu0
    assert set(statuses) == {200}, statuses
    # Requests per CPU-second of this process (app and client together): what one free core would
    # sustain, independent of other load on the machine (PostgreSQL's own CPU is not counted).
    return {"requests": len(latencies), "rps": len(latencies) / elapsed, "p50_ms": pct(latencies, 0.5),
            "p99_ms": pct(latencies, 0.99), "mean_ms": statistics.mean(latencies) * 1000,
            "per_cpu_s": len(latencies) / cpu if cpu else 0.0}


async def contend(client: httpx.AsyncClient, keys: Keys, lot_id: str, vehicle: str, n: int,
                  space_id: str | None = None) -> dict[str, Any]:
    start, end = window()
    start, end = start + timedelta(days=1), end + timedelta(days=1)

    async def one(i: int) -> tuple[int, float]:
        headers = {"Authorization": "Bearer " + keys.token(f"c{i}-{uuid.uuid4().hex[:6]}", "dncity-mobile", "parking"),
                   "Idempotency-Key": uuid.uuid4().hex}
        body = {"lot_id": lot_id, "vehicle_type": vehicle, "plate_number": f"43A-{i:03d}.45",
                "start_at": start.isoformat(), "end_at": end.isoformat()}
        if space_id:
            body["space_id"] = space_id
        t0 = time.perf_counter()
        response = await client.post("/v1/parking/reservations", json=body, headers=headers)
        return response.status_code, time.perf_counter() - t0

    began = time.perf_counter()
    results = await asyncio.gather(*[one(i) for i in range(n)])
    elapsed = time.perf_counter() - began
    latencies = [t for _, t in results]
    return {"statuses": dict(Counter(s for s, _ in results)), "wall_s": round(elapsed, 3),
            "p50_ms": round(pct(latencies, 0.5), 1), "p99_ms": round(pct(latencies, 0.99), 1)}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lots", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    server = os.environ.get("DNCITY_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432")
    name = f"dncity_bench_parking_{os.getpid()}"
    url = f"{server}/{name}"
    await admin(server, f'CREATE DATABASE "{name}"')
    try:
        await asyncio.to_thread(upgrade, "parking", url)
        t0 = time.perf_counter()
        await seed(url, args.lots)
        print(f"seeded {args.lots} lots (20 spaces + a 200-place pool each) in {time.perf_counter() - t0:.1f} s")
        keys = Keys()
        app = create_app(
            ParkingSettings(database_url=url, db_pool_size=8, expiry_sweep_interval_s=3600),
            PlatformSettings(redis_url=None, public_base_url=ISSUER, log_level="WARNING",
                             payments_url="http://127.0.0.1:9"),
        )
        async with app.router.lifespan_context(app):
            app.state.verifier = keys.verifier()
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as client:
                await bench_search(client, 1.0, args.concurrency)  # warm up
                search = await bench_search(client, args.seconds, args.concurrency)
                print(f"search: {search['requests']} requests, {search['rps']:.0f} req/s, "
                      f"p50 {search['p50_ms']:.1f} ms, p99 {search['p99_ms']:.1f} ms, "
                      f"{search['per_cpu_s']:.0f} req per CPU-second of app+client "
                      f"(concurrency {args.concurrency}, radius 1.5 km, 20 per page; load average "
                      f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
                operator = {"Authorization": "Bearer " + keys.token("bench-op", "bench-op", "parking.lots.write")}
                free = {"mode": "per_visit", "day_price_vnd": 0, "night_price_vnd": 0}
                lot = (await client.post("/v1/parking/operator/lots", headers=operator, json={
                    "name": "Contended", "address": "x", "lat": LAT0, "lon": LON0})).json()
                spaces = (await client.post(f"/v1/parking/operator/lots/{lot['id']}/spaces", headers=operator,
                                            json={"spaces": [{"label": f"C{i}"} for i in range(10)]})).json()
                await client.post(f"/v1/parking/operator/lots/{lot['id']}/pools", headers=operator,
                                  json={"vehicle_type": "motorbike", "capacity": 30})
                for vehicle in ("car", "motorbike"):
                    await client.put(f"/v1/parking/operator/lots/{lot['id']}/rates/{vehicle}", headers=operator,
                                     json=free)
                any_space = await contend(client, keys, lot["id"], "car", 100)
                print(f"contention, 100 concurrent for 10 spaces: {any_space}")
                assert any_space["statuses"] == {201: 10, 409: 90}, any_space
                lot2 = (await client.post("/v1/parking/operator/lots", headers=operator, json={
                    "name": "One space", "address": "x", "lat": LAT0, "lon": LON0})).json()
                one = (await client.post(f"/v1/parking/operator/lots/{lot2['id']}/spaces", headers=operator,
                                         json={"spaces": [{"label": "ONLY"}]})).json()
                await client.put(f"/v1/parking/operator/lots/{lot2['id']}/rates/car", headers=operator, json=free)
                chosen = await contend(client, keys, lot2["id"], "car", 100, space_id=one[0]["id"])
                print(f"contention, 100 concurrent for one chosen space: {chosen}")
                assert chosen["statuses"] == {201: 1, 409: 99}, chosen
                pool = await contend(client, keys, lot["id"], "motorbike", 100)
                print(f"contention, 100 concurrent for 30 pool places: {pool}")
                assert pool["statuses"] == {201: 30, 409: 70}, pool
                assert spaces
    finally:
        await admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
