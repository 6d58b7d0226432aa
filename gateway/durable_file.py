"""The gateway's durable SQLite files (spool, inbound journal, SMPP receipts and parts).

Each is small and slow-moving and holds something that would be lost for good if a power
cut undid a commit (an SMS already deleted from a SIM, an SMSC id already acknowledged), so
all use WAL with synchronous=FULL. Subclasses give their schema and a name for errors.

Every SQLite call runs on the connection's own thread (aiosqlite's worker), never on the
event loop; `run` hands that thread a function of several statements in one hop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self, TypeVar, cast

import aiosqlite

T = TypeVar("T")


class DurableSqlite:
    SCHEMA: ClassVar[str] = ""
    NAME: ClassVar[str] = "database"

    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._db: aiosqlite.Connection | None = None

    async def __aenter__(self) -> Self:
        self._db = await aiosqlite.connect(self._path, isolation_level=None)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")
        await self._db.execute("PRAGMA busy_timeout=5000")
        await self._db.executescript(self.SCHEMA)
        await self._opened()
        return self

    async def _opened(self) -> None:
        """Runs once the schema is in place (recovery work of a subclass)."""

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError(f"the {self.NAME} is not open")
        return self._db

    async def run(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """`function(connection)` on the connection's thread, in one hop: a batch of
        statements costs one round trip to that thread instead of one per statement."""
        db = self.db

        def call() -> T:
            # aiosqlite has no public "run this on the connection's thread"; its queue of
            # calls (`_execute`) is what every public method uses (the hub's SQLite driver
            # relies on it in the same way).
            return function(db._conn)

        return cast(T, await db._execute(call))  # type: ignore[no-untyped-call]
