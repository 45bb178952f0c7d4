"""The scratch platform environment a benchmark runs in: a temporary var/ dir, Redis (given or the
embedded server) and, with --pg, one throw-away PostgreSQL database per service, dropped afterwards."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds so far of a process and all its descendants (Linux /proc): granian and
    uvicorn run their workers as children. Per-request CPU depends less on what else the machine runs
    than wall-clock throughput does."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    total, frontier = 0.0, {pid}
    while frontier:
        total += sum(stats[p][1] for p in frontier if p in stats)
        frontier = {child for child, (parent, _) in stats.items() if parent in frontier}
    return total


async def _admin(pg_url: str, statements: list[str]) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(f"{pg_url}/postgres", isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        for statement in statements:
            await conn.execute(text(statement))
    await engine.dispose()


@contextmanager
def bench_environment(prefix: str, services: Sequence[str], *, pg: str | None, redis: str | None) -> Iterator[None]:
    var_dir = tempfile.mkdtemp(prefix=f"{prefix}-")
    os.environ.update({"DNCITY_VAR_DIR": var_dir, "DNCITY_PROFILE": "dev", "DNCITY_LOG_LEVEL": "WARNING"})
    embedded = None
    if redis:
        os.environ["DNCITY_REDIS_URL"] = redis
    else:
        from dncity import embedded_redis

        embedded = embedded_redis.start()
        os.environ["DNCITY_REDIS_URL"] = embedded.url
    names = {service: f"{prefix.replace('-', '_')}_{os.getpid()}_{service}" for service in services} if pg else {}
    if pg:
        asyncio.run(_admin(pg, [f'CREATE DATABASE "{n}"' for n in names.values()]))
        for service, name in names.items():
            os.environ[f"DNCITY_{service.upper()}_DATABASE_URL"] = f"{pg}/{name}"
    try:
        yield
    finally:
        if pg:
            asyncio.run(_admin(pg, [f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in names.values()]))
        if embedded:
            embedded.stop()
