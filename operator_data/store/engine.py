"""`Store`: owns the async engine for SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from operator_data.store import sqlite_driver

if TYPE_CHECKING:
    from operator_data.settings import Settings

_IMMEDIATE = "pintar_sqlite_immediate"


class StoreError(RuntimeError):
    """The store is misconfigured or used outside its lifetime."""


class Store:
    """The database: `async with Store(url) as store:` then `store.begin()` per unit of work.

    One code path for both dialects. On SQLite every connection runs in WAL mode with
    synchronous=FULL (durable commits; `synchronous="normal"` trades that for speed), a
    busy timeout and foreign keys on; write transactions start with
    BEGIN IMMEDIATE so that two writers queue on the busy timeout instead of failing
    when a read lock would have to be upgraded.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        echo: bool = False,
        busy_timeout_ms: int = 10_000,
        pool_size: int = 10,
        synchronous: str = "full",
    ) -> None:
        if synchronous not in ("full", "normal"):
            raise StoreError(f"synchronous must be full or normal, not {synchronous!r}")
        self._synchronous = synchronous.upper()
        self._url = make_url(url)
        if self._url.get_backend_name() not in ("sqlite", "postgresql"):
            raise StoreError(
                f"database URL {self._url!r}: only sqlite and postgresql are supported"
            )
        if self._url.get_backend_name() == "sqlite" and self._url.drivername != "sqlite+aiosqlite":
            self._url = self._url.set(drivername="sqlite+aiosqlite")
        if self._url.get_backend_name() == "postgresql" and self._url.drivername != (
            "postgresql+asyncpg"
        ):
            self._url = self._url.set(drivername="postgresql+asyncpg")
        self._echo = echo
        self._busy_timeout_ms = busy_timeout_ms
        self._pool_size = pool_size
        self._engine: AsyncEngine | None = None
        self._write_gate = asyncio.Lock()
        self._writer: asyncio.Task[Any] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls(
            settings.database.effective_url(settings.data_dir),
            echo=settings.database.echo,
            busy_timeout_ms=settings.database.busy_timeout_ms,
            pool_size=settings.database.pool_size,
            synchronous=settings.database.sqlite_synchronous,
        )

    @property
    def url(self) -> URL:
        return self._url

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self._url.get_backend_name()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise StoreError("the store is not open: use `async with Store(...)`")
        return self._engine

    async def __aenter__(self) -> Self:
        kwargs: dict[str, Any] = {"echo": self._echo}
        if self.dialect == "sqlite":
            database = self._url.database
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            if self._url.get_driver_name() == "aiosqlite":
                kwargs["module"] = sqlite_driver.dbapi()  # one thread trip per statement
        else:
            kwargs["pool_size"] = self._pool_size
            kwargs["pool_pre_ping"] = True
        self._engine = create_async_engine(self._url, **kwargs)
        if self.dialect == "sqlite":
            self._configure_sqlite(self._engine)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    def _configure_sqlite(self, engine: AsyncEngine) -> None:
        busy = int(self._busy_timeout_ms)
        synchronous = self._synchronous

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take over transaction control from the sqlite3 module (its implicit BEGIN
            # is deferred and cannot be made IMMEDIATE); see the "begin" hook below.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute(f"PRAGMA busy_timeout={busy}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Connection) -> None:
            immediate = connection.get_execution_options().get(_IMMEDIATE, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction: committed on normal exit, rolled back on error."""
        async with self._writer_turn(), self.engine.connect() as connection:
            if self.dialect == "sqlite":
                await connection.execution_options(**{_IMMEDIATE: True})
            async with connection.begin():
                yield connection

    @asynccontextmanager
    async def _writer_turn(self) -> AsyncIterator[None]:
        """SQLite has one writer: in this process, writers queue here, in order, instead of
        spinning on the file lock, where a burst of them (and a busy event loop keeping the
        holder from finishing) would run out the busy timeout. Other processes still meet
        the file lock and its timeout. A task already holding its turn does not queue again.
        """
        if self.dialect != "sqlite" or self._writer is asyncio.current_task():
            yield
            return
        async with self._write_gate:
            self._writer = asyncio.current_task()
            try:
                yield
            finally:
                self._writer = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only unit of work (a deferred transaction, never blocking writers)."""
        async with self.engine.connect() as connection, connection.begin():
            yield connection

    async def migrate(self, revision: str = "heads") -> None:
        """Bring the schema up to `revision` with the shipped Alembic migrations."""
        from operator_data.migrations.runner import upgrade

        await upgrade(self.engine, revision)

    async def current_revision(self) -> str | None:
        from operator_data.migrations.runner import current_revision

        return await current_revision(self.engine)
