"""`Store`: owns the async engine for SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from operator_data.store import sqlite_driver
from operator_data.store.errors import (
    GroupCommitFailed,
    StoreError,
    StoreTimeout,
    is_broken_connection,
    is_store_failure,
    statement_kind,
    timeout_limit,
)
from operator_data.store.file_modes import make_private

if TYPE_CHECKING:
    from operator_data.settings import Settings

_IMMEDIATE = "pintar_sqlite_immediate"


__all__ = ["GroupCommitFailed", "Store", "StoreError", "StoreHealth", "StoreTimeout"]


@dataclass(slots=True)
class StoreHealth:
    """How this process's store calls have been going (store_health.py reads it for the
    alarm, /readyz and the metrics). Times are time.monotonic()."""

    consecutive_failures: int = 0
    failures: int = 0  # calls that failed, ever (the watch looks at how many since its last look)
    timeouts: int = 0  # of which ended in a StoreTimeout
    last_error: str | None = None
    last_failure_at: float | None = None
    last_success_at: float | None = None
    #: The last write probe: how long it took (None: none yet, or it did not finish).
    probe_seconds: float | None = None
    probe_ok: bool | None = None
    #: What the hub's store watch found wrong at its last look (None: nothing).
    alarm: str | None = None

    @property
    def up(self) -> bool:
        return self.consecutive_failures == 0 and self.probe_ok is not False and not self.alarm

    def succeeded(self) -> None:
        self.consecutive_failures = 0
        self.last_success_at = time.monotonic()

    def failed(self, error: BaseException) -> None:
        self.consecutive_failures += 1
        self.failures += 1
        if isinstance(error, StoreTimeout):
            self.timeouts += 1
        self.last_error = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
        self.last_failure_at = time.monotonic()


#: At most this many units of work share one SQLite transaction (one fsync).
GROUP_LIMIT = 64


@dataclass(slots=True)
class _Group:
    """Units of work sharing one SQLite write transaction, committed together."""

    connection: AsyncConnection
    done: asyncio.Future[None]
    size: int = 0
    flusher: asyncio.Task[None] | None = None


class Store:
    """The database: `async with Store(url) as store:` then `store.begin()` per unit of work.

    One code path for both dialects. On SQLite every connection runs in WAL mode with
    synchronous=FULL (durable commits; `synchronous="normal"` trades that for speed), a
    busy timeout and foreign keys on; write transactions start with
    BEGIN IMMEDIATE so that two writers queue on the busy timeout instead of failing
    when a read lock would have to be upgraded.

    SQLite writes **group-commit** (`group_commit=True`, the default): the process's units
    of work take turns on one connection, each in its own SAVEPOINT, and those that queued
    while one ran share its transaction, up to GROUP_LIMIT: one COMMIT and one fsync for
    all of them, where each used to cost its own (the single writer's ceiling). A unit
    still returns only once its transaction has committed; one that fails is rolled back
    to its savepoint alone; a COMMIT that fails fails every unit of its group
    (`GroupCommitFailed`). A unit running alone commits at once, as before.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        echo: bool = False,
        busy_timeout_ms: int = 10_000,
        statement_timeout_ms: int = 30_000,
        lock_timeout_ms: int = 10_000,
        pool_size: int = 10,
        synchronous: str = "full",
        group_commit: bool = True,
        sqlite_inline: bool = True,
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
        if statement_timeout_ms < 0 or lock_timeout_ms < 0:
            raise StoreError("statement and lock timeouts must be >= 0 ms (0: none)")
        self._statement_timeout_ms = statement_timeout_ms
        self._lock_timeout_ms = lock_timeout_ms
        self.health = StoreHealth()
        self._pool_size = pool_size
        self._engine: AsyncEngine | None = None
        self._write_gate = asyncio.Lock()
        self._writer: asyncio.Task[Any] | None = None
        self._group_commit = group_commit
        self._sqlite_inline = sqlite_inline
        self._group: _Group | None = None
        self._queued = 0  # tasks waiting for the write gate

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls(
            settings.database.effective_url(settings.data_dir),
            echo=settings.database.echo,
            busy_timeout_ms=settings.database.busy_timeout_ms,
            statement_timeout_ms=settings.database.statement_timeout_ms,
            lock_timeout_ms=settings.database.lock_timeout_ms,
            pool_size=settings.database.pool_size,
            synchronous=settings.database.sqlite_synchronous,
            sqlite_inline=settings.database.sqlite_inline,
        )

    @property
    def url(self) -> URL:
        return self._url

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self._url.get_backend_name()

    @property
    def busy_timeout_ms(self) -> int:
        return self._busy_timeout_ms

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
                make_private(Path(database))  # and so its -wal and -shm (file_modes.py)
            if self._url.get_driver_name() == "aiosqlite":
                kwargs["module"] = sqlite_driver.dbapi()  # one thread trip per statement
                # ... or none, for what cannot wait (sqlite_driver.py)
                kwargs["connect_args"] = {"inline": self._sqlite_inline}
        else:
            kwargs["pool_size"] = self._pool_size
            kwargs["pool_pre_ping"] = True
            # Every statement on every connection is bounded by the server: a held table
            # lock or a stuck query ends in a StoreTimeout instead of a silent freeze.
            kwargs["connect_args"] = {"server_settings": self._pg_timeouts()}
        self._engine = create_async_engine(self._url, **kwargs)
        if self.dialect == "sqlite":
            self._configure_sqlite(self._engine)
        self._handle_errors(self._engine)
        return self

    def _pg_timeouts(self, *, off: bool = False) -> dict[str, str]:
        return {
            "statement_timeout": "0" if off else str(int(self._statement_timeout_ms)),
            "lock_timeout": "0" if off else str(int(self._lock_timeout_ms)),
        }

    def _handle_errors(self, engine: AsyncEngine) -> None:
        """One place for every call's driver errors: a timeout becomes a StoreTimeout, and
        a connection whose asyncpg protocol broke mid-call (killed backend, cancelled call:
        "another operation is in progress") is invalidated, never pooled again."""
        dialect = self.dialect
        busy = int(self._busy_timeout_ms)

        @event.listens_for(engine.sync_engine, "handle_error")
        def _on_error(context: ExceptionContext) -> BaseException | None:
            original = context.original_exception
            broken = dialect == "postgresql" and is_broken_connection(original)
            if broken and not context.is_disconnect:
                context.is_disconnect = True
                # Only this connection: the pre-ping weeds out any other dead one.
                context.invalidate_pool_on_disconnect = False
            error = context.sqlalchemy_exception
            if not isinstance(error, DBAPIError):
                return None
            limit = timeout_limit(error, dialect, busy)
            if limit is None:
                return None
            return StoreTimeout(statement_kind(context.statement), limit, error)

    @contextlib.contextmanager
    def _watched(self) -> Iterator[None]:
        """Record the unit of work's outcome in `health` (a unit's own errors, such as a
        constraint, are not the store failing)."""
        try:
            yield
        except BaseException as error:
            if is_store_failure(error):
                self.health.failed(error)
            raise
        self.health.succeeded()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._engine is not None:
            group = self._group
            if group is not None and group.flusher is not None:
                await asyncio.gather(group.flusher, return_exceptions=True)
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
        """A read-write transaction: committed on normal exit, rolled back on error. On
        SQLite with group commit, a savepoint in a transaction shared with the units that
        queued meanwhile; either way the caller resumes only once it is committed."""
        with self._watched():
            if (
                self.dialect == "sqlite"
                and self._group_commit
                and self._writer is not asyncio.current_task()
            ):
                async with self._grouped() as connection:
                    yield connection
                return
            async with self._writer_turn(), self.engine.connect() as connection:
                if self.dialect == "sqlite":
                    await connection.execution_options(**{_IMMEDIATE: True})
                async with connection.begin():
                    yield connection

    @asynccontextmanager
    async def _grouped(self) -> AsyncIterator[AsyncConnection]:
        async with self._gate():
            group = self._group
            if group is None:
                group = await self._open_group()
            group.size += 1
            # The first unit of a group needs no savepoint: if it fails, the transaction
            # holds nothing else and is rolled back whole (two statements saved per unit
            # when the store is not busy).
            savepoint = None if group.size == 1 else await group.connection.begin_nested()
            try:
                yield group.connection
            except BaseException as error:
                if savepoint is None:
                    await self._fail(group, error)
                elif await self._undo(group, savepoint, error):
                    with contextlib.suppress(Exception):  # the group's units hear of it
                        await self._end_turn(group)
                raise
            if savepoint is not None:
                try:
                    await savepoint.commit()  # RELEASE: the unit's writes join the group's
                except BaseException as error:
                    await self._fail(group, error)
                    raise
            await self._end_turn(group)
        if not group.done.done():
            await asyncio.shield(group.done)  # committed by the last of the group
        elif group.done.exception() is not None:
            raise GroupCommitFailed(str(group.done.exception())) from group.done.exception()

    @asynccontextmanager
    async def _gate(self) -> AsyncIterator[None]:
        self._queued += 1
        try:
            await self._write_gate.acquire()
        finally:
            self._queued -= 1
        self._writer = asyncio.current_task()
        try:
            yield
        finally:
            self._writer = None
            self._write_gate.release()

    async def _open_group(self) -> _Group:
        connection = await self.engine.connect()
        try:
            await connection.execution_options(**{_IMMEDIATE: True})
            await connection.begin()
        except BaseException:
            await connection.close()
            raise
        group = _Group(connection, asyncio.get_running_loop().create_future())
        # Nobody waits for the future's exception when it fails: that is reported to the
        # units as GroupCommitFailed, so mark it retrieved.
        group.done.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._group = group
        return group

    async def _undo(self, group: _Group, savepoint: Any, error: BaseException) -> bool:
        """Roll the unit back to its savepoint; False if that failed and with it the
        group (the error is raised to the unit, the group's others get theirs)."""
        try:
            await savepoint.rollback()
        except BaseException as failure:
            await self._fail(group, failure)
            return False
        return True

    async def _end_turn(self, group: _Group) -> None:
        """The unit holding the gate is done: leave the transaction open for those queued
        behind it (a flusher queued behind them commits it), or commit now."""
        if self._group is not group:
            return  # failed meanwhile
        if self._queued > 0 and group.size < GROUP_LIMIT:
            if group.flusher is None:
                group.flusher = asyncio.create_task(self._flush(group), name="store-flush")
            return
        await self._commit(group)

    async def _flush(self, group: _Group) -> None:
        async with self._gate():
            if self._group is group:
                with contextlib.suppress(Exception):  # its units hear of a failure
                    await self._commit(group)

    async def _commit(self, group: _Group) -> None:
        self._group = None
        try:
            await group.connection.commit()
        except BaseException as error:
            await self._fail(group, error, current=False)
            raise
        finally:
            await group.connection.close()
        if not group.done.done():
            group.done.set_result(None)

    async def _fail(self, group: _Group, error: BaseException, *, current: bool = True) -> None:
        if current and self._group is not group:
            return
        if self._group is group:
            self._group = None
        try:
            await group.connection.rollback()
        except Exception:  # the connection is broken: closing it is all that is left
            pass
        finally:
            await group.connection.close()
        if not group.done.done():
            group.done.set_exception(
                GroupCommitFailed(f"the group's transaction failed: {error!r}")
            )

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
        async with self._gate():
            yield

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only unit of work (a deferred transaction, never blocking writers)."""
        with self._watched():
            async with self.engine.connect() as connection, connection.begin():
                yield connection

    async def migrate(self, revision: str = "heads") -> None:
        """Bring the schema up to `revision` with the shipped Alembic migrations."""
        from operator_data.migrations.runner import upgrade

        if self.dialect != "postgresql":
            await upgrade(self.engine, revision)
            return
        # A migration may build an index on a big table for longer than any store call
        # is allowed: it runs on a connection of its own, without the timeouts.
        engine = create_async_engine(
            self._url,
            poolclass=NullPool,
            connect_args={"server_settings": self._pg_timeouts(off=True)},
        )
        try:
            await upgrade(engine, revision)
        finally:
            await engine.dispose()

    async def current_revision(self) -> str | None:
        from operator_data.migrations.runner import current_revision

        return await current_revision(self.engine)
