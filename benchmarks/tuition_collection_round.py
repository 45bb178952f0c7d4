"""Tuition: a school's whole collection round, in process against a real database.

Imports N students by CSV (one batch, all-or-nothing), defines fee items, generates one invoice per
student, then measures the guardian's ``GET /v1/tuition/me/invoices?status=open``, the school's
collection report (JSON and CSV) and one reminder sweep over every invoice. Finally it starts the real
payments service and sandbox provider and fires 20 concurrent payments at the same two invoices,
checking that exactly one is taken. Identity runs on a loopback port for JWKS.

    .venv/bin/python benchmarks/tuition_collection_round.py [--students 2000] [--views 200]
        [--pg postgresql+asyncpg://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379/8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from bench_env import bench_environment  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(args: argparse.Namespace) -> None:
    import httpx

    from dncity.cli import database_url, service_settings
    from dncity.embedded_redis import free_port
    from services.identity.app import create_app as identity_app
    from services.payments.app import create_app as payments_app
    from services.payments.sandbox.app import create_app as sandbox_app
    from services.payments.sandbox.settings import SandboxSettings
    from services.payments.settings import PaymentsSettings
    from services.tuition.app import create_app
    from services.tuition.reminders.service import send_reminders
    from shared.migrations import upgrade
    from shared.service_auth import ServiceTokenProvider
    from shared.settings import PlatformSettings
    from tests.helpers.asgi import running
    from tests.helpers.live import LiveServer
    from tests.helpers.tokens import TokenFactory

    for name in ("identity", "payments", "tuition"):
        await asyncio.to_thread(upgrade, name, database_url(name))
    identity = LiveServer(identity_app()).start()
    os.environ["DNCITY_IDENTITY_URL"] = identity.url
    payments_port, sandbox_port = free_port(), free_port()
    payments_url, sandbox_url = f"http://127.0.0.1:{payments_port}", f"http://127.0.0.1:{sandbox_port}"
    platform = PlatformSettings()
    sandbox = LiveServer(
        sandbox_app(
            SandboxSettings(
                database=":memory:", public_url=sandbox_url, webhook_url=payments_url + "/v1/payments/webhooks/sandbox"
            ),
            platform,
        ),
        port=sandbox_port,
    ).start()
    payments = LiveServer(
        payments_app(PaymentsSettings(provider_url=sandbox_url, reconciler_enabled=False), platform), port=payments_port
    ).start()
    try:
        tokens = await TokenFactory.load()

        async def service_token() -> tuple[str, int]:
            return tokens.client("svc-tuition", ["payments.write"]), 600

        settings = service_settings("tuition").model_copy(update={"reminder_interval_s": 0})
        app = create_app(
            settings,
            PlatformSettings(payments_url=payments_url),  # type: ignore[arg-type]
            payment_tokens=ServiceTokenProvider(service_token),
        )
        school = tokens.bearer(tokens.client("demo-school", ["tuition.students.write", "tuition.invoices.write"]))
        async with running(app) as client:
            n = args.students
            rows = "\n".join(
                f"B{i:06d},{48_214_000_000 + i:012d},Học sinh {i},2013-01-{1 + i % 28:02d},"
                f"{6 + i % 4},{6 + i % 4}A{i % 5}"
                for i in range(n)
            )
            body = "student_code,personal_id,full_name,date_of_birth,grade,class_name\n" + rows + "\n"
            start = time.perf_counter()
            r = await client.post(
                "/v1/tuition/students/import", content=body.encode(), headers={**school, "Content-Type": "text/csv"}
            )
            assert r.status_code == 200 and r.json()["created"] == n, r.text[:300]
            print(f"import: {n} students by CSV in {time.perf_counter() - start:.2f}s")
            for grade in range(6, 10):
                for code, kind, amount in (("HP", "tuition", 4_500_000), ("BT", "meals", 1_800_000)):
                    r = await client.post(
                        "/v1/tuition/fee-items",
                        headers=school,
                        json={
                            "code": f"{code}{grade}",
                            "name": f"{code} {grade}",
                            "kind": kind,
                            "grade": str(grade),
                            "term": "T1",
                            "amount_vnd": amount,
                        },
                    )
                    assert r.status_code == 201, r.text
            rnd = (
                await client.post(
                    "/v1/tuition/rounds",
                    headers=school,
                    json={
                        "code": "R1",
                        "name": "Round 1",
                        "term": "T1",
                        "due_dates": [(date.today() + timedelta(days=2)).isoformat()],
                    },
                )
            ).json()
            start = time.perf_counter()
            r = await client.post(f"/v1/tuition/rounds/{rnd['id']}/invoices/generate", headers=school)
            assert r.status_code == 200 and r.json()["created"] == n, r.text[:300]
            print(f"generate: {n} invoices in {time.perf_counter() - start:.2f}s")

            students = []
            cursor = None
            while len(students) < 3:
                page = (
                    await client.get(
                        "/v1/tuition/students",
                        headers=school,
                        params={"limit": 3, **({"cursor": cursor} if cursor else {})},
                    )
                ).json()
                students += page["items"]
                cursor = page["next_cursor"]
            parent = tokens.bearer(tokens.user("bench-parent", ["tuition"]))
            for s in students[:3]:
                code = (await client.post(f"/v1/tuition/students/{s['id']}/link-codes", headers=school)).json()
                assert (
                    await client.post("/v1/tuition/me/students", headers=parent, json={"link_code": code["code"]})
                ).status_code == 201
            lat: list[float] = []
            for _ in range(args.views):
                start = time.perf_counter()
                r = await client.get("/v1/tuition/me/invoices", params={"status": "open"}, headers=parent)
                lat.append(time.perf_counter() - start)
                assert r.status_code == 200 and len(r.json()["items"]) == 3
            print(
                f"guardian open invoices: {args.views} requests, p50 {pct(lat, 0.5):.1f} ms, "
                f"p95 {pct(lat, 0.95):.1f} ms"
            )
            for fmt in ("json", "csv"):
                lat = []
                for _ in range(20):
                    start = time.perf_counter()
                    r = await client.get("/v1/tuition/reports/collections", params={"format": fmt}, headers=school)
                    lat.append(time.perf_counter() - start)
                    assert r.status_code == 200
                print(f"report ({fmt}, {n} invoices): p50 {pct(lat, 0.5):.1f} ms, p95 {pct(lat, 0.95):.1f} ms")
            start = time.perf_counter()
            sent = await send_reminders(app.state.db, app.state.outbox, settings)  # type: ignore[arg-type]
            again = await send_reminders(app.state.db, app.state.outbox, settings)  # type: ignore[arg-type]
            print(
                f"reminder sweep over {n} invoices: {sent} sent in {time.perf_counter() - start:.2f}s "
                f"(two sweeps; second sent {again})"
            )

            invoices = (await client.get("/v1/tuition/me/invoices", headers=parent)).json()["items"][:2]
            body = {"items": [{"invoice_id": i["id"]} for i in invoices]}
            start = time.perf_counter()
            results = await asyncio.gather(
                *[
                    client.post(
                        "/v1/tuition/me/payments", json=body, headers={**parent, "Idempotency-Key": f"race-{k}"}
                    )
                    for k in range(20)
                ]
            )
            codes = sorted(r.status_code for r in results)
            won = codes.count(201)
            print(
                f"race: 20 concurrent payments of the same 2 invoices -> {won} taken, {codes.count(409)} x 409 "
                f"in {time.perf_counter() - start:.2f}s ({'OK' if won == 1 else 'DOUBLE CHARGE'})"
            )
            async with httpx.AsyncClient(timeout=30) as browser:
                order = next(r.json() for r in results if r.status_code == 201)
                await browser.post(order["payment_url"], data={"decision": "approve"})
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                status = (await client.get(f"/v1/tuition/me/payments/{order['id']}", headers=parent)).json()["status"]
                if status == "succeeded":
                    break
                await asyncio.sleep(0.1)
            print(f"settlement by payment event: order {status}")
    finally:
        payments.stop()
        sandbox.stop()
        identity.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--views", type=int, default=200)
    parser.add_argument("--pg", help="PostgreSQL server URL (scratch databases are created and dropped)")
    parser.add_argument("--redis", help="Redis URL (default: the embedded server)")
    args = parser.parse_args()
    with bench_environment("tuition-bench", ("identity", "payments", "tuition"), pg=args.pg, redis=args.redis):
        asyncio.run(main(args))
