"""The gateway's durable SQLite files (spool, inbound journal, SMPP receipts and parts).

Each is small and slow-moving and holds something that would be lost for good if a power
cut undid a commit (an SMS already deleted from a SIM, an SMSC id already acknowledged), so
all use WAL with synchronous=FULL. Subclasses give their schema and a name for errors.

They also hold customers' SMS (PINs, tokens) for as long as they must, and not a byte
longer: each file and its -wal/-shm are private to the service's user (0600), freed pages
are zeroed (secure_delete), and `checkpoint()` folds the WAL into the file and truncates it,
so text a row held before it was blanked or deleted is in neither file afterwards.

Every SQLite call runs on the connection's own thread (aiosqlite's worker), never on the
event loop; `run` hands that thread a function of several statements in one hop.
"""

from __future__ import annotations

import contextlib
import os
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
        _create_private(self._path)
        self._db = await aiosqlite.connect(self._path, isolation_level=None)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")
        await self._db.execute("PRAGMA busy_timeout=5000")
        # A deleted row's bytes are overwritten with zeros, not left in a free page.
        await self._db.execute("PRAGMA secure_delete=ON")
        await self._db.executescript(self.SCHEMA)
        _make_private(self._path)  # -wal/-shm of a file made before files were 0600
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

    async def checkpoint(self) -> bool:
        """Copies every committed page into the file and empties the WAL (TRUNCATE): what
        was blanked or deleted since the last checkpoint leaves the -wal file too. Runs
        between transactions (calls on the connection's thread run one at a time). False:
        another connection to the file was busy (it waited busy_timeout); try again later."""

        def truncate(db: sqlite3.Connection) -> bool:
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return not busy

        return await self.run(truncate)

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


def _create_private(path: str) -> None:
    """Creates the file 0600 before SQLite does (SQLite would make it 0644 under the usual
    umask; its -wal and -shm then take the file's mode)."""
    if path == ":memory:" or path.startswith("file:"):
        return
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


def _make_private(path: str) -> None:
    if path == ":memory:" or path.startswith("file:"):
        return
    for name in (path, f"{path}-wal", f"{path}-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(name, 0o600)
