"""Payments created per second, end to end against the sandbox provider.

Three processes like ``make run``: identity (JWKS for token checks), the sandbox provider and the
payments service, each under uvicorn (uvloop + httptools) with its own database; this process drives
``POST /v1/payments`` over keep-alive connections with a minimal HTTP/1.1 client (so the driver costs
little CPU), each request with its own Idempotency-Key and a real service token. A payment counts
when the payments service answered 201 with ``requires_action`` and the provider's wallet URL — i.e.
after our database stored it and the provider created its intent.

    .venv/bin/python benchmarks/payments_create_throughput.py [--seconds 10] [--connections 32]
        [--pg postgresql+asyncpg://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379/4] [--pin]
        [--workers 2]

Goal (issue 5): >= 500 payments/s on this machine. As deployed on a 2-core host (PostgreSQL, payments
with two workers as compose.yaml sets ``DNCITY_PAYMENTS_WORKERS``):

    .venv/bin/python benchmarks/payments_create_throughput.py --workers 2 \
        --pg postgresql+asyncpg://postgres@127.0.0.1:5432 --redis redis://127.0.0.1:6379/4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from bench_env import tree_cpu_s  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    from dncity.embedded_redis import free_port as pick

    return pick("127.0.0.1")


def start(factory: str, port: int, env: dict[str, str], cpu: str | None, workers: int = 1) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        factory,
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
    if workers > 1:
        cmd += ["--workers", str(workers)]
    if cpu and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpu, *cmd]
    process = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env})
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{factory} did not start")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    match = re.search(rb"(?i)content-length:\s*(\d+)", head)
    body = await reader.readexactly(int(match.group(1))) if match else b""
    return status, body


async def drive(port: int, token: str, seconds: float, connections: int) -> dict[str, Any]:
    ok = failed = 0
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    stop_at = 0.0
    started = asyncio.Event()
    counter = iter(range(10**9))

    async def worker(n: int) -> None:
        nonlocal ok, failed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await started.wait()
        while time.monotonic() < stop_at:
            i = next(counter)
            body = json.dumps(
                {
                    "amount_vnd": 10_000 + i % 1000,
                    "purpose": "parking",
                    "reference": f"bench-{i}",
                    "payer_sub": f"citizen-{i % 500}",
                    "description": "Phí gửi xe",
                }
            ).encode()
            request = (
                f"POST /v1/payments HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                f"Idempotency-Key: bench-{n}-{i}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            begin = time.perf_counter()
            writer.write(request)
            status, payload = await _read_response(reader)
            latencies.append(time.perf_counter() - begin)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 201 and b'"requires_action"' in payload and b"/wallet/pi_" in payload:
                ok += 1
            else:
                failed += 1
        writer.close()

    tasks = [asyncio.create_task(worker(n)) for n in range(connections)]
    await asyncio.sleep(0.3)
    begin = time.monotonic()
    stop_at = begin + seconds
    started.set()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - begin
    latencies.sort()
    return {
        "payments_created": ok,
        "failed": failed,
        "seconds": round(elapsed, 2),
        "payments_per_s": round(ok / elapsed, 1),
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else 0.0,
        "latency_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1) if latencies else 0.0,
        "statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--workers", type=int, default=1, help="payments server processes (uvicorn --workers); PostgreSQL only"
    )
    parser.add_argument("--pg", help="PostgreSQL server URL for the payments database (default: SQLite file)")
    parser.add_argument("--redis", help="Redis URL (default: an embedded server)")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin payments to core 0 and identity, the sandbox and this driver to core 1 (taskset)",
    )
    args = parser.parse_args()

    from dncity import embedded_redis

    tmp = Path(tempfile.mkdtemp(prefix="dncity-paybench-"))
    redis = None if args.redis else embedded_redis.start()
    env = {
        "DNCITY_VAR_DIR": str(tmp),
        "DNCITY_PROFILE": "dev",
        "DNCITY_LOG_LEVEL": "WARNING",
        "DNCITY_REDIS_URL": args.redis or redis.url,  # type: ignore[union-attr]
        "DNCITY_SANDBOX_DATABASE": str(tmp / "sandbox_provider.db"),
        "DNCITY_PAYMENTS_RECONCILER_ENABLED": "false",
    }
    ports = {name: free_port() for name in ("identity", "payments", "sandbox_provider")}
    for name, port in ports.items():
        env[f"DNCITY_{name.upper()}_URL"] = f"http://127.0.0.1:{port}"
    pg_database = None
    if args.pg:
        pg_database = f"dncity_paybench_{os.getpid()}"
        env["DNCITY_PAYMENTS_DATABASE_URL"] = f"{args.pg}/{pg_database}"
    os.environ.update(env)

    from dncity.cli import database_url
    from shared.migrations import upgrade

    if args.pg:
        _pg(args.pg, f'CREATE DATABASE "{pg_database}"')
    upgrade("identity", database_url("identity"))
    upgrade("payments", database_url("payments"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        # Unpinned, the OS spreads payments, the sandbox and this driver over the machine's cores. With
        # --pin the payments process (the one measured) gets core 0 to itself, everything else core 1.
        other, main_cpu = ("1", "0") if args.pin else (None, None)
        if args.pin and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {1})
        processes.append(start("services.identity.app:create_app", ports["identity"], env, other))
        processes.append(start("services.payments.sandbox.app:create_app", ports["sandbox_provider"], env, other))
        processes.append(start("services.payments.app:create_app", ports["payments"], env, main_cpu, args.workers))
        from tests.helpers.tokens import TokenFactory

        factory = asyncio.run(TokenFactory.load())
        factory.ttl_s = 3600
        token = factory.client("bench-service", ["payments.write"])
        names = ["identity", "sandbox_provider", "payments"]
        before = {n: tree_cpu_s(p.pid) for n, p in zip(names, processes, strict=True)}
        driver_before = sum(os.times()[:2])
        result = asyncio.run(drive(ports["payments"], token, args.seconds, args.connections))
        created = max(1, int(result["payments_created"]))
        # CPU per payment is what the machine's load does not distort: max rate ~ cores / total CPU.
        cpu = {n: tree_cpu_s(p.pid) - before[n] for n, p in zip(names, processes, strict=True)}
        cpu["driver"] = sum(os.times()[:2]) - driver_before
        result["cpu_ms_per_payment"] = {n: round(v * 1000 / created, 2) for n, v in cpu.items()}
        total = sum(v for n, v in cpu.items() if n != "driver") * 1000 / created
        result["server_cpu_ms_per_payment"] = round(total, 2)
        result["cpu_bound_ceiling_per_s_on_2_cores"] = round(2000 / total, 1) if total else 0.0
        result["load_average_1m"] = os.getloadavg()[0]
        result.update(
            {
                "connections": args.connections,
                "database": "postgresql" if args.pg else "sqlite",
                "pinned": args.pin,
                "payments_workers": args.workers,
                "goal_per_s": 500,
            }
        )
        print(json.dumps(result, indent=2))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if redis is not None:
            redis.stop()
        if pg_database:
            _pg(args.pg, f'DROP DATABASE IF EXISTS "{pg_database}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)


def _pg(server: str, statement: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> None:
        engine = create_async_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(statement))
        await engine.dispose()

    asyncio.run(run())


if __name__ == "__main__":
    main()
