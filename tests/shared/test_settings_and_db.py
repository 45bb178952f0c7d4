"""Production refuses unsafe configuration; timestamps are always timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, MetaData, Table, bindparam, select, text

from services.identity.settings import IdentitySettings
from services.parking.settings import ParkingSettings
from shared.db import READONLY_APPLICATION_NAME, Database, UTCDateTime, asyncpg_dsn
from shared.migrations import alembic_config
from shared.settings import ConfigError, PlatformSettings, Profile

STRONG = "x" * 48


def prod(**kw: object) -> PlatformSettings:
    return PlatformSettings(profile=Profile.prod, redis_url="redis://r:6379/0", dev_endpoints=False, **kw)


def test_dev_profile_accepts_defaults() -> None:
    IdentitySettings().check(PlatformSettings(profile=Profile.dev))


@pytest.mark.parametrize(
    ("settings", "platform", "message"),
    [
        (ParkingSettings(database_url=None), prod(), "SQLite"),
        (
            ParkingSettings(database_url="postgresql+asyncpg://db/p"),
            PlatformSettings(profile=Profile.prod, redis_url=None, dev_endpoints=False),
            "REDIS_URL",
        ),
        (
            ParkingSettings(database_url="postgresql+asyncpg://db/p"),
            PlatformSettings(profile=Profile.prod, redis_url="redis://r", dev_endpoints=True),
            "DEV_ENDPOINTS",
        ),
        (IdentitySettings(database_url="postgresql+asyncpg://db/i"), prod(), "key_encryption_secret"),
        (
            IdentitySettings(database_url="postgresql+asyncpg://db/i", key_encryption_secret="short"),
            prod(),
            "key_encryption_secret",
        ),
    ],
)
def test_prod_refuses_unsafe_configuration(settings, platform, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings.check(platform)


def test_prod_accepts_safe_configuration() -> None:
    secret_names = IdentitySettings().secrets()
    settings = IdentitySettings(database_url="postgresql+asyncpg://db/i", **dict.fromkeys(secret_names, STRONG))
    settings.check(prod())


def test_prod_app_refuses_to_start_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.identity.app import create_app

    monkeypatch.setenv("DNCITY_PROFILE", "prod")
    with pytest.raises(ConfigError):
        create_app()


def test_dev_endpoints_default_off_in_prod() -> None:
    assert PlatformSettings(profile=Profile.prod).dev_endpoints_enabled is False
    assert PlatformSettings(profile=Profile.dev).dev_endpoints_enabled is True


async def test_utc_datetime_round_trip_and_naive_refused(database_urls: dict[str, str]) -> None:
    metadata = MetaData()
    table = Table("tz_probe", metadata, Column("at", UTCDateTime(), primary_key=True))
    db = Database(database_urls["parking"])
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        ict = timezone(timedelta(hours=7))
        async with db.engine.begin() as conn:
            await conn.execute(table.insert().values(at=datetime(2026, 1, 1, 8, 0, tzinfo=ict)))
        async with db.engine.connect() as conn:
            stored = (await conn.execute(select(table.c.at))).scalar_one()
        assert stored == datetime(2026, 1, 1, 1, 0, tzinfo=UTC) and stored.tzinfo is not None
        with pytest.raises(Exception, match="naive"):
            async with db.engine.begin() as conn:
                await conn.execute(table.insert().values(at=datetime(2026, 1, 1, 8, 0)))
    finally:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
        await db.dispose()


def test_every_service_has_one_linear_or_branched_history_reaching_heads() -> None:
    from alembic.script import ScriptDirectory

    from shared.settings import SERVICE_NAMES

    for service in SERVICE_NAMES:
        script = ScriptDirectory.from_config(alembic_config(service, "sqlite+aiosqlite://"))
        revisions = list(script.walk_revisions())
        assert revisions, service
        assert all(r.revision.startswith(service) for r in revisions), service


@pytest.mark.parametrize("service", ["identity", "payments", "parking", "health_booking", "tuition"])
def test_migrations_downgrade_to_base_and_up_again(service: str, tmp_path) -> None:
    from alembic import command

    from shared.migrations import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    upgrade(service, url)
    command.downgrade(alembic_config(service, url), "base")
    upgrade(service, url)


@pytest.mark.parametrize("service", ["identity", "payments", "parking", "health_booking", "tuition"])
async def test_models_match_the_migrated_schema(service: str, database_urls: dict[str, str]) -> None:
    """What the code declares (tables, columns, types, indexes, constraints) is what the migrations built,
    on this run's database (SQLite or PostgreSQL): a model change without its migration fails here."""
    import importlib

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    importlib.import_module(f"services.{service}.app")
    metadata = importlib.import_module(f"services.{service}.db").Base.metadata
    db = Database(database_urls[service])
    try:
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), metadata)
            )
    finally:
        await db.dispose()
    assert diff == []


async def test_fetch_readonly_reads_like_execute_and_survives_a_dropped_connection(
    database_urls: dict[str, str],
) -> None:
    metadata = MetaData()
    table = Table("readonly_probe", metadata, Column("at", UTCDateTime(), primary_key=True))
    statement = select(table.c.at).where(table.c.at >= bindparam("since", type_=UTCDateTime())).order_by(table.c.at)
    db = Database(database_urls["parking"])
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(table.insert(), [{"at": datetime(2026, 1, d, tzinfo=UTC)} for d in (1, 2, 3)])
        ict = timezone(timedelta(hours=7))
        since = datetime(2026, 1, 2, 7, 0, tzinfo=ict)  # = 2 January 00:00 UTC
        rows = await db.fetch_readonly(statement, {"since": since})
        assert [r[0] for r in rows] == [datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC)]
        assert all(r[0].tzinfo is not None for r in rows)
        if db.dialect == "postgresql":
            # The server drops every connection of the read pool (a restart, a failover): the next
            # read opens a fresh one instead of failing.
            async with db.engine.connect() as conn:
                dropped = await conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND application_name = :name"
                    ),
                    {"name": READONLY_APPLICATION_NAME},
                )
                assert dropped.all() == [(True,)]
                await conn.commit()
            assert len(await db.fetch_readonly(statement, {"since": since})) == 2
    finally:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
        await db.dispose()


def test_asyncpg_dsn_keeps_libpq_parameters_and_drops_the_dialects() -> None:
    assert asyncpg_dsn("postgresql+asyncpg://u:p%40ss@db:5432/parking") == "postgresql://u:p%40ss@db:5432/parking"
    assert (
        asyncpg_dsn("postgresql+asyncpg://u@db/parking?ssl=require&prepared_statement_cache_size=0")
        == "postgresql://u@db/parking?sslmode=require"
    )
    assert asyncpg_dsn("postgresql+asyncpg://u@db/p?sslmode=verify-full") == "postgresql://u@db/p?sslmode=verify-full"
