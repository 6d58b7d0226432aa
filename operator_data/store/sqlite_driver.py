"""aiosqlite with one trip to its thread per statement, for SQLAlchemy's aiosqlite dialect.

aiosqlite runs each sqlite3 call in its own thread and hands every call over separately,
and SQLAlchemy's adapter makes four of them per statement (cursor, execute, fetchall,
close). Each hand-over wakes the thread and then the event loop, and on a purchase's ~150
statements those wake-ups, not SQLite, were most of the hub's time (docs/benchmarks.md,
token_e2e). Here a statement is executed and its first rows fetched in one call; creating
and closing a cursor cost none. Larger results (a streamed export) keep their sqlite3
cursor open in the thread and are fetched from it in further calls, as before.

Inline (`connect(..., inline=True)`, the store's default): a statement that cannot wait on
a lock runs in the caller's thread, with no hand-over at all. On a loaded machine each
hand-over costs two thread wake-ups that the OS may schedule late, and with ~10 statements
per unit of work they were the hub's biggest single cost (a fifth of its main thread
under load, docs/benchmarks.md). What may wait stays in the thread, so the event loop never
blocks on another process: BEGIN (IMMEDIATE waits on the busy timeout for the write lock),
COMMIT (fsync with synchronous=FULL, and the WAL checkpoint), ROLLBACK and PRAGMAs. Two
exceptions that cannot wait: a BEGIN IMMEDIATE is first tried inline with the busy timeout
off (taken at once when the lock is free, else handed to the thread to wait), and a read
unit's deferred BEGIN and its COMMIT (no lock, nothing to flush) run inline. In WAL
mode, a statement inside a transaction waits on nothing: readers do not block writers, and a
write transaction already holds the write lock.

Used through `create_async_engine(url, module=dbapi())`: the dialect stays aiosqlite's.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterable, Sequence
from typing import Any, cast

import aiosqlite
from aiosqlite import (
    DatabaseError,
    Error,
    IntegrityError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    sqlite_version,
    sqlite_version_info,
)
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi

__version__ = aiosqlite.__version__

#: Rows fetched together with the statement; more are fetched from the open cursor.
PREFETCH = 512

_Description = tuple[tuple[Any, ...], ...] | None
_Outcome = tuple[_Description, int, int | None, list[Any], sqlite3.Cursor | None]


def _run(connection: sqlite3.Connection, sql: str, parameters: Any, many: bool) -> _Outcome:
    """In aiosqlite's thread: the statement, and its rows up to PREFETCH."""
    raw = connection.cursor()
    try:
        if many:
            raw.executemany(sql, parameters)
        else:
            raw.execute(sql, parameters)
        rows: list[Any] = raw.fetchmany(PREFETCH) if raw.description else []
    except BaseException:
        raw.close()
        raise
    if len(rows) < PREFETCH:
        raw.close()
        return raw.description, raw.rowcount, raw.lastrowid, rows, None
    return raw.description, raw.rowcount, raw.lastrowid, rows, raw


class OneHopCursor:
    """The part of aiosqlite's Cursor that SQLAlchemy's adapter uses."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._rows: list[Any] = []
        self._open: sqlite3.Cursor | None = None  # only while rows are left in it
        self.description: _Description = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    async def __aenter__(self) -> OneHopCursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _start(self, sql: str, parameters: Any, many: bool) -> OneHopCursor:
        await self.close()
        outcome = await self._connection.statement(sql, parameters, many)
        self.description, self.rowcount, self.lastrowid, self._rows, self._open = outcome
        return self

    async def execute(self, sql: str, parameters: Any = ()) -> OneHopCursor:
        return await self._start(sql, () if parameters is None else parameters, False)

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> OneHopCursor:
        return await self._start(sql, parameters, True)

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        if self._open is not None:
            rows += await self._connection.run(_drain, self._open)
            self._open = None
        return rows

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        wanted = self.arraysize if size is None else size
        if len(self._rows) < wanted and self._open is not None:
            more = await self._connection.run(_more, self._open, wanted - len(self._rows))
            if len(more) < wanted - len(self._rows):
                self._open = None  # _more closed it
            self._rows += more
        rows, self._rows = self._rows[:wanted], self._rows[wanted:]
        return rows

    async def fetchone(self) -> Any:
        rows = await self.fetchmany(1)
        return rows[0] if rows else None

    async def close(self) -> None:
        self._rows = []
        if self._open is not None:
            raw, self._open = self._open, None
            await self._connection.run(sqlite3.Cursor.close, raw)

    async def setinputsizes(self, *_: Any) -> None:
        return None

    async def nextset(self) -> None:
        return None


#: Statements that may wait (on a lock, a disk flush or a checkpoint): run in the thread.
_MAY_WAIT = ("BEGIN", "COMMIT", "END", "ROLLBACK", "PRAGMA", "VACUUM", "ATTACH")


def may_wait(sql: str) -> bool:
    """Whether `sql` may block on a lock or the disk (so must not run on the event loop).
    SAVEPOINT and RELEASE do not: the store issues them only inside a transaction it began
    (its connections are in autocommit mode, every transaction opened by BEGIN)."""
    head = sql.lstrip()[:9].upper()
    return head.startswith(_MAY_WAIT)


def _deferred_begin(sql: str) -> bool:
    """A plain (deferred) BEGIN: it takes no lock, so it cannot wait."""
    return sql.strip().upper() in ("BEGIN", "BEGIN DEFERRED", "BEGIN TRANSACTION")


def _immediate_begin(sql: str) -> bool:
    return sql.strip().upper() == "BEGIN IMMEDIATE"


def _is_busy(error: sqlite3.OperationalError) -> bool:
    # SQLITE_BUSY ("database is locked") or SQLITE_LOCKED; sqlite3 names the code on 3.11.
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(error) or "busy" in str(error)


def _reads_only(sql: str) -> bool:
    # SELECT only: a statement beginning WITH may end in an INSERT, UPDATE or DELETE.
    return sql.lstrip()[:6].upper() == "SELECT"


def _drain(raw: sqlite3.Cursor) -> list[Any]:
    try:
        return raw.fetchall()
    finally:
        raw.close()


def _more(raw: sqlite3.Cursor, size: int) -> list[Any]:
    rows = raw.fetchmany(size)
    if len(rows) < size:
        raw.close()
    return rows


class Connection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors are OneHopCursors; `inline`: statements that
    cannot wait run in the caller's thread (see the module)."""

    def __init__(self, connector: Any, iter_chunk_size: int, *, inline: bool = False) -> None:
        super().__init__(connector, iter_chunk_size)
        self.inline = inline
        # In a deferred transaction that has only read so far (the store's read units):
        # its BEGIN took no lock and its COMMIT or ROLLBACK releases a WAL snapshot, with
        # nothing to flush, so neither can wait and both run inline (a read unit was two
        # thread hand-overs, ~0.3 ms of CPU, for one or two inline SELECTs).
        self._reading = False
        self._busy_ms: int | None = None  # the connection's busy timeout, read once

    def cursor(self) -> OneHopCursor:  # type: ignore[override]
        return OneHopCursor(self)

    async def statement(self, sql: str, parameters: Any, many: bool) -> _Outcome:
        if self.inline:
            if self._reading and not _reads_only(sql):
                self._reading = False  # it may write: its COMMIT may flush
            if not may_wait(sql):
                return _run(self._conn, sql, parameters, many)
            if _deferred_begin(sql) and not self._conn.in_transaction:
                outcome = _run(self._conn, sql, parameters, many)
                self._reading = True
                return outcome
            if _immediate_begin(sql) and not self._conn.in_transaction:
                taken = self._begin_if_free(sql)
                if taken is not None:
                    return taken
        return cast(_Outcome, await self._execute(_run, self._conn, sql, parameters, many))  # type: ignore[no-untyped-call]

    def _begin_if_free(self, sql: str) -> _Outcome | None:
        """BEGIN IMMEDIATE inline when the write lock is free this instant (no busy wait:
        the busy timeout is off for the attempt); None when another connection holds it,
        and the caller waits for it in the thread with the usual timeout. Most write
        units find the lock free (one hub writer per database), so they cost no hand-over
        to take it; only the COMMIT, which flushes, still goes to the thread."""
        connection = self._conn
        if self._busy_ms is None:
            self._busy_ms = int(connection.execute("PRAGMA busy_timeout").fetchone()[0])
        connection.execute("PRAGMA busy_timeout=0")
        try:
            return _run(connection, sql, (), False)
        except sqlite3.OperationalError as error:
            if not _is_busy(error):
                raise
            return None
        finally:
            connection.execute(f"PRAGMA busy_timeout={self._busy_ms}")

    async def commit(self) -> None:
        if self.inline and self._reading:
            self._reading = False
            self._conn.commit()
            return
        await super().commit()

    async def rollback(self) -> None:
        # The pool rolls back every connection it gets back; with no transaction open
        # (the unit committed) there is nothing to hand over.
        if self.inline and (self._reading or not self._conn.in_transaction):
            self._reading = False
            if self._conn.in_transaction:
                self._conn.rollback()
            return
        await super().rollback()

    async def run(self, function: Any, *args: Any) -> Any:
        """`function(*args)` (fetching from or closing a cursor: never waits) in the
        connection's thread, or inline."""
        if self.inline:
            return function(*args)
        return await self._execute(function, *args)  # type: ignore[no-untyped-call]


def connect(
    database: str, *, iter_chunk_size: int = 64, inline: bool = False, **kwargs: Any
) -> Connection:
    if inline:
        # Opened in aiosqlite's thread, used from the event loop's too (never at once:
        # each call is awaited before the next).
        kwargs["check_same_thread"] = False

    def connector() -> sqlite3.Connection:
        return cast(sqlite3.Connection, sqlite3.connect(database, **kwargs))

    return Connection(connector, iter_chunk_size, inline=inline)


def dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """The DBAPI module to give SQLAlchemy's aiosqlite dialect (`module=`)."""
    return AsyncAdapt_aiosqlite_dbapi(sys.modules[__name__], sqlite3)


__all__: Sequence[str] = [
    "DatabaseError",
    "Error",
    "IntegrityError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "connect",
    "dbapi",
    "sqlite_version",
    "sqlite_version_info",
]
