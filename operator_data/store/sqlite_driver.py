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
COMMIT (fsync with synchronous=FULL, and the WAL checkpoint), ROLLBACK and PRAGMAs. In WAL
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

    def cursor(self) -> OneHopCursor:  # type: ignore[override]
        return OneHopCursor(self)

    async def statement(self, sql: str, parameters: Any, many: bool) -> _Outcome:
        if self.inline and not may_wait(sql):
            return _run(self._conn, sql, parameters, many)
        return cast(_Outcome, await self._execute(_run, self._conn, sql, parameters, many))  # type: ignore[no-untyped-call]

    async def rollback(self) -> None:
        # The pool rolls back every connection it gets back; with no transaction open
        # (the unit committed) there is nothing to hand over.
        if self.inline and not self._conn.in_transaction:
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
