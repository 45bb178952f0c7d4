"""Health booking: slot-search latency and booking throughput, in process against a real database.

Sets up a facility with 20 practitioners and 30 days of 15-minute slots (about 21,600 slots), then
measures ``GET /v1/health/slots`` (specialty + language filters, first page) and ``POST
/v1/health/appointments`` (distinct slots, 20 in flight), and finally fires 50 concurrent bookings at
one slot of capacity 5 and checks that exactly 5 win. Identity runs on a loopback port for JWKS.

    .venv/bin/python benchmarks/health_booking_slots.py [--searches 200] [--bookings 300]
        [--pg postgresql+asyncpg://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379/7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from bench_env import bench_environment  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(args: argparse.Namespace) -> None:
    from dncity.cli import database_url, service_settings
    from services.health_booking.app import create_app
    from services.identity.app import create_app as identity_app
    from shared.migrations import upgrade
    from shared.service_auth import ServiceTokenProvider
    from shared.settings import PlatformSettings
    from tests.helpers.asgi import running
    from tests.helpers.live import LiveServer
    from tests.helpers.tokens import TokenFactory

    for name in ("identity", "health_booking"):
        await asyncio.to_thread(upgrade, name, database_url(name))
    identity = LiveServer(identity_app()).start()
    os.environ["DNCITY_IDENTITY_URL"] = identity.url
    try:
        tokens = await TokenFactory.load()

        async def no_payments() -> tuple[str, int]:
            return tokens.client("svc-health_booking", ["payments.write"]), 600

        app = create_app(
            service_settings("health_booking"),
            PlatformSettings(),  # type: ignore[arg-type]
            service_tokens=ServiceTokenProvider(no_payments),
            background=False,
        )
        agency = tokens.bearer(tokens.client("demo-hospital", ["health.schedules.write"]))
        async with running(app) as client:
            t0 = time.perf_counter()
            fac = (
                await client.post(
                    "/v1/health/agency/facilities",
                    headers=agency,
                    json={
                        "name": "Bench hospital",
                        "kind": "hospital",
                        "address": "1 Bench St",
                        "lat": 16.07,
                        "lon": 108.22,
                        "prepayment_required": False,
                        "max_days_ahead": 30,
                        "max_per_patient_per_day": 20,
                        "min_notice_minutes": 0,
                    },
                )
            ).json()
            today = app.state.clock().date().isoformat()
            for i in range(20):
                specialty = ("pediatrics", "cardiology", "dermatology", "general")[i % 4]
                doc = (
                    await client.post(
                        f"/v1/health/agency/facilities/{fac['id']}/practitioners",
                        headers=agency,
                        json={
                            "name": f"Doctor {i}",
                            "specialties": [specialty],
                            "languages": ["vi", "en"] if i % 2 else ["vi"],
                        },
                    )
                ).json()
                r = await client.post(
                    f"/v1/health/agency/facilities/{fac['id']}/schedules",
                    headers=agency,
                    json={
                        "practitioner_id": doc["id"],
                        "specialty": specialty,
                        "weekdays": list(range(7)),
                        "start_time": "08:00",
                        "end_time": "17:00",
                        "slot_minutes": 15,
                        "fee_vnd": 0,
                        "valid_from": today,
                    },
                )
                assert r.status_code == 201, r.text
            print(f"setup: 20 schedules derived in {time.perf_counter() - t0:.1f}s")

            user = tokens.bearer(tokens.user("bench-user", ["health"]))
            latencies: list[float] = []
            for n in range(args.searches):
                params = {"specialty": ("general", "cardiology")[n % 2], "language": "en", "limit": 20}
                start = time.perf_counter()
                r = await client.get("/v1/health/slots", params=params, headers=user)
                latencies.append(time.perf_counter() - start)
                assert r.status_code == 200 and r.json()["items"]
            print(
                f"slot search: {args.searches} requests, p50 {pct(latencies, 0.5):.1f} ms, "
                f"p95 {pct(latencies, 0.95):.1f} ms"
            )

            targets: list[dict] = []
            cursor: str | None = None
            while len(targets) < args.bookings:
                page = (
                    await client.get(
                        "/v1/health/slots",
                        params={"limit": 200, **({"cursor": cursor} if cursor else {})},
                        headers=user,
                    )
                ).json()
                targets += page["items"]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            targets = targets[: args.bookings]
            queue: asyncio.Queue[tuple[dict, dict[str, str]]] = asyncio.Queue()
            for s in targets:  # tokens minted before the clock starts: the driver should cost little
                queue.put_nowait(
                    (s, {**tokens.bearer(tokens.user(f"bench-{s['id']}", ["health"])), "Idempotency-Key": s["id"]})
                )
            book_lat: list[float] = []
            ok = 0

            async def worker(w: int) -> None:
                nonlocal ok
                while not queue.empty():
                    slot, headers = queue.get_nowait()
                    start = time.perf_counter()
                    r = await client.post("/v1/health/appointments", json={"slot_id": slot["id"]}, headers=headers)
                    book_lat.append(time.perf_counter() - start)
                    ok += r.status_code == 201

            start = time.perf_counter()
            await asyncio.gather(*[worker(w) for w in range(20)])
            elapsed = time.perf_counter() - start
            print(
                f"bookings: {ok}/{len(targets)} booked, {ok / elapsed:.0f}/s with 20 in flight, "
                f"p50 {pct(book_lat, 0.5):.1f} ms, p95 {pct(book_lat, 0.95):.1f} ms"
            )

            r = await client.post(
                f"/v1/health/agency/facilities/{fac['id']}/schedules",
                headers=agency,
                json={
                    "service_name": "Vaccination",
                    "specialty": "vaccination",
                    "weekdays": list(range(7)),
                    "start_time": "08:00",
                    "end_time": "09:00",
                    "slot_minutes": 60,
                    "capacity": 5,
                    "fee_vnd": 0,
                    "valid_from": today,
                },
            )
            slot = (
                await client.get("/v1/health/slots", params={"specialty": "vaccination", "limit": 1}, headers=user)
            ).json()["items"][0]
            responses = await asyncio.gather(
                *[
                    client.post(
                        "/v1/health/appointments",
                        json={"slot_id": slot["id"]},
                        headers={**tokens.bearer(tokens.user(f"race-{i}", ["health"])), "Idempotency-Key": f"race-{i}"},
                    )
                    for i in range(50)
                ]
            )
            won = sum(r.status_code == 201 for r in responses)
            print(
                f"race: 50 concurrent bookings on a capacity-5 slot -> {won} booked "
                f"({'OK' if won == 5 else 'CAPACITY EXCEEDED'})"
            )
            print(f"median booking latency {statistics.median(book_lat) * 1000:.1f} ms")
    finally:
        identity.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--bookings", type=int, default=300)
    parser.add_argument("--pg", help="PostgreSQL server URL (a scratch database is created and dropped)")
    parser.add_argument("--redis", help="Redis URL (default: the embedded server)")
    args = parser.parse_args()
    with bench_environment("hb-bench", ("identity", "health_booking"), pg=args.pg, redis=args.redis):
        asyncio.run(main(args))
