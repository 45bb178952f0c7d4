"""Async SQLAlchemy 2: engines, the request-is-the-transaction session and common column types.

The same code runs on PostgreSQL (production, CI) and SQLite files (embedded profile). On SQLite every
transaction starts with ``BEGIN IMMEDIATE`` so that concurrent writers queue on the database lock
instead of failing half-way with "database is locked" — the database still decides conflicts.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import JSON, DateTime, MetaData, String, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.sql.base import Executable
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    """A fresh MetaData with the platform's constraint naming convention (one per service)."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite keeps no zone; we restore it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; the platform stores only timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSON that is JSONB on PostgreSQL.
JSONType = JSON().with_variant(JSONB(), "postgresql")
IdType = String(32)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int | None = None, echo: bool = False) -> AsyncEngine:
    # A database error's message carries the statement's parameters (names, ID numbers, phones) into the
    # unhandled-error log; hide them unless SQL echo was asked for (a local debugging aid).
    hide = not echo
    if is_sqlite(url):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30}, hide_parameters=hide)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size * 2 if max_overflow is None else max_overflow,
        pool_pre_ping=True,
        hide_parameters=hide,
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, issue BEGIN (see the "begin" hook below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# What a connection the server dropped (restart, failover, pg_terminate_backend) raises on its next use:
# a FATAL notice that arrived while it sat idle in the pool surfaces as a protocol-state error.
_DROPPED = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
)

# Query parameters of a SQLAlchemy asyncpg URL that are the dialect's, not libpq's: asyncpg would send
# them to the server as settings (and fail on connect).
_DIALECT_PARAMS = frozenset({"prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback"})


def asyncpg_dsn(url: str) -> str:
    """The libpq-style DSN asyncpg takes for a ``postgresql+asyncpg://`` URL: the dialect's own query
    parameters dropped, its ``ssl=`` spelled as libpq's ``sslmode=``."""
    parsed = make_url(url)
    query = {k: v for k, v in parsed.query.items() if k not in _DIALECT_PARAMS}
    if "ssl" in query and "sslmode" not in query:
        query["sslmode"] = query.pop("ssl")
    return parsed.set(drivername="postgresql", query=query).render_as_string(hide_password=False)


# How fetch_readonly's connections name themselves to the server (pg_stat_activity.application_name).
READONLY_APPLICATION_NAME = "dncity-readonly"


class Database:
    """One service's engine and session factory; owned by the app's lifespan."""

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int | None = None, echo: bool = False) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow, echo=echo)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._pool_size = pool_size
        self._reads: Any = None  # asyncpg pool of fetch_readonly, opened on first use (PostgreSQL)
        self._compiled: dict[int, tuple[str, list[tuple[str, Any, Any]]]] = {}

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def fetch_readonly(self, statement: Executable, params: dict[str, Any]) -> Sequence[Any]:
        """The rows of one read-only statement on a hot path, each indexable by position.

        On PostgreSQL the statement (a module-level SQLAlchemy Core select, compiled once) runs in
        autocommit straight on a small asyncpg pool of its own: no ORM session, no pre-ping round trip,
        no reset query on release. That path costs a third of an ordinary session's CPU. A connection
        found dead (a restarted server) is replaced and the read retried once, which is safe only
        because the statement writes nothing. Columns come back as the driver decodes them (select
        text, numbers and timestamptz; not JSON or custom types). On SQLite it is an ordinary execute.
        """
        if self.dialect != "postgresql":
            async with self.engine.connect() as conn:
                return (await conn.execute(statement, params)).all()
        sql, binds = self._compile(statement)
        args = []
        for name, default, process in binds:
            value = params.get(name, default)
            args.append(process(value) if process else value)
        for attempt in (1, 2):
            pool = self._reads or await self._open_reads()
            try:
                rows: Sequence[Any] = await pool.fetch(sql, *args)
                return rows
            except _DROPPED:
                if attempt == 2:
                    raise
                await pool.expire_connections()
        raise AssertionError("unreachable")

    def _compile(self, statement: Executable) -> tuple[str, list[tuple[str, Any, Any]]]:
        found = self._compiled.get(id(statement))
        if found is None:
            compiled = statement.compile(dialect=self.engine.dialect)  # type: ignore[attr-defined]
            # (name, the statement's own value for it (a literal), the type's bind processor)
            binds = [
                (
                    name,
                    compiled.binds[name].value,
                    compiled.binds[name].type._cached_bind_processor(self.engine.dialect),
                )
                for name in compiled.positiontup or []
            ]
            found = self._compiled[id(statement)] = (str(compiled), binds)
        return found

    async def _open_reads(self) -> Any:
        async def no_reset(_conn: Any) -> None:
            # Autocommit reads leave no session state (no transaction, SET, LISTEN or advisory lock).
            return None

        self._reads = await asyncpg.create_pool(
            asyncpg_dsn(self.url),
            min_size=1,
            max_size=self._pool_size,
            reset=no_reset,
            server_settings={"application_name": READONLY_APPLICATION_NAME},
        )
        return self._reads

    async def dispose(self) -> None:
        if self._reads is not None:
            await self._reads.close()
            self._reads = None
        await self.engine.dispose()


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request is the transaction: commit when the endpoint returns, roll back on any error.

    Declared with ``scope="function"`` so the commit happens before the response is sent: a client
    never sees a success for something that was not stored.
    """
    db: Database = request.app.state.db
    async with db.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


SessionDep = Annotated[AsyncSession, Depends(_request_session, scope="function")]
