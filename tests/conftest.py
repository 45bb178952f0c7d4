"""Test backends: SQLite files and an embedded Redis by default; PostgreSQL and real Redis when
``DNCITY_TEST_PG_URL`` (server URL, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432) and
``DNCITY_REDIS_URL`` are set — CI runs the suite both ways.

Each service gets its own database, migrated once per session with its real Alembic migrations;
every test starts from empty tables.
"""

from __future__ import annotations

import asyncio
import gc
import os
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import MetaData, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from dncity import embedded_redis
from dncity.cli import service_settings
from shared.db import create_engine
from shared.migrations import upgrade
from shared.redis import create_redis
from shared.settings import SERVICE_NAMES, PlatformSettings
from tests.helpers.asgi import running  # noqa: F401  (re-exported for tests)
from tests.helpers.platform import LivePlatform, live_platform
from tests.helpers.tokens import TokenFactory

# Infrastructure rows that survive between tests (identity's live server holds these keys).
KEEP_TABLES = frozenset({"signing_keys"})

# Apps freeze what is alive after startup out of the cyclic collector's reach (gc.freeze); in this one
# long process that would also pin the abandoned connections truncate_all needs the collector to close.
os.environ.setdefault("DNCITY_GC_FREEZE_AFTER_STARTUP", "false")

PG_URL = os.environ.get("DNCITY_TEST_PG_URL")
REDIS_URL = os.environ.get("DNCITY_REDIS_URL")


def pytest_report_header() -> list[str]:
    return [
        f"dncity databases: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite files'}",
        f"dncity redis: {REDIS_URL or 'embedded fakeredis TCP server'}",
    ]


def _pg_admin_sync(statements: list[str]) -> None:
    async def run() -> None:
        engine = create_async_engine(f"{PG_URL}/postgres", isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
        await engine.dispose()

    asyncio.run(run())


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if REDIS_URL:
        yield REDIS_URL
        return
    server = embedded_redis.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One freshly migrated database per service for the whole session (per run on PostgreSQL, so
    concurrent runs on one server do not collide)."""
    urls: dict[str, str] = {}
    names: dict[str, str] = {}
    if PG_URL:
        names = {s: f"dncity_test_{os.getpid()}_{s}" for s in SERVICE_NAMES}
        _pg_admin_sync(
            [f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in names.values()]
            + [f'CREATE DATABASE "{n}"' for n in names.values()]
        )
        urls = {s: f"{PG_URL}/{n}" for s, n in names.items()}
    else:
        base = tmp_path_factory.mktemp("db")
        urls = {s: f"sqlite+aiosqlite:///{base / (s + '.db')}" for s in SERVICE_NAMES}
    for service, url in urls.items():
        upgrade(service, url)
    yield urls
    if names:
        _pg_admin_sync([f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in names.values()])


@pytest.fixture(scope="session")
def platform_env(
    redis_url: str, database_urls: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Environment variables describing the test platform (for in-process apps and subprocesses)."""
    env = {
        "DNCITY_REDIS_URL": redis_url,
        "DNCITY_VAR_DIR": str(tmp_path_factory.mktemp("var")),
        "DNCITY_PROFILE": "dev",
        "DNCITY_LOG_LEVEL": "WARNING",
        "DNCITY_EVENT_RETRY_BASE_MS": "100",
    }
    for service, url in database_urls.items():
        env[f"DNCITY_{service.upper()}_DATABASE_URL"] = url
    return env


@pytest.fixture(scope="session", autouse=True)
def _apply_env(platform_env: dict[str, str]) -> Iterator[None]:
    """The test platform's environment, plus identity served over real HTTP for JWKS look-ups."""
    from services.identity.app import create_app as identity_app
    from tests.helpers.live import LiveServer, reserve_port

    saved = {k: os.environ.get(k) for k in [*platform_env, "DNCITY_IDENTITY_URL"]}
    os.environ.update(platform_env)
    # The URL is known before the app is built, so identity's own token checks fetch its own JWKS.
    port = reserve_port()
    os.environ["DNCITY_IDENTITY_URL"] = f"http://127.0.0.1:{port}"
    identity = LiveServer(identity_app(), port=port).start()
    yield
    identity.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def platform() -> Iterator[LivePlatform]:
    """Every service and the gateway on real loopback ports (for end-to-end tests through the gateway).

    Module-scoped: while it runs, its consumers join the same consumer groups as apps built by other
    tests, so it must not outlive the end-to-end module that asked for it."""
    with live_platform() as running_platform:
        yield running_platform


@pytest.fixture
async def tokens() -> TokenFactory:
    """Mint access tokens with identity's active signing key."""
    return await TokenFactory.load()


async def truncate_all(url: str, metadata: MetaData) -> None:
    # The platform's own engine settings: on SQLite, wait for the write lock a background task may hold.
    tables = [t.name for t in reversed(metadata.sorted_tables) if t.name not in KEEP_TABLES]
    engine = create_engine(url)
    try:
        for attempt in range(4):
            try:
                async with engine.begin() as conn:
                    if url.startswith("postgresql") and tables:
                        await conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
                    else:
                        for table in tables:
                            await conn.execute(text(f'DELETE FROM "{table}"'))
                return
            except OperationalError as exc:
                # A previous test's server may still be finishing a request that holds SQLite's write
                # lock (e.g. waiting out an HTTP timeout to a stopped dependency): wait for it. A server
                # whose event loop ended while a task it cancelled was inside a transaction leaves that
                # aiosqlite connection (and its lock) to the garbage collector: collect it now.
                if "database is locked" not in str(exc) or attempt == 3:
                    raise
                warnings.warn(f"{url}: write lock held by a finished test's server; collecting garbage", stacklevel=1)
                gc.collect()
    finally:
        await engine.dispose()


@pytest.fixture(autouse=True)
async def _clean_state(database_urls: dict[str, str], redis_url: str) -> AsyncIterator[None]:
    """Every test starts with empty tables and an empty Redis."""
    import importlib

    for service, url in database_urls.items():
        importlib.import_module(f"services.{service}.app")
        metadata = importlib.import_module(f"services.{service}.db").Base.metadata
        await truncate_all(url, metadata)
    redis = create_redis(redis_url)
    await redis.flushdb()
    await redis.aclose()
    yield


@pytest.fixture
def service_app() -> Callable[..., FastAPI]:
    """Build a service app from the test environment: ``service_app("parking")``."""
    import importlib

    def build(name: str, **platform_overrides: Any) -> FastAPI:
        module = importlib.import_module(f"services.{name}.app")
        return module.create_app(service_settings(name), PlatformSettings(**platform_overrides))

    return build


@pytest.fixture
def tmp_var(tmp_path: Path) -> Path:
    return tmp_path
