"""Group commit for a durable gateway file: concurrent writes share one transaction.

A write is a function of the sqlite3 connection (its statements, on the connection's
thread). `write()` queues it and returns its result only once the transaction holding it
has committed — with synchronous=FULL, once it is on disk. One writer task takes everything
queued (up to `max_batch`) and runs it in one call on the connection's thread:

    BEGIN IMMEDIATE
      SAVEPOINT write; <write 1>; RELEASE write      (ROLLBACK TO write if it raised)
      SAVEPOINT write; <write 2>; RELEASE write
      ...
    COMMIT                                            (one fsync for the whole batch)

While a batch is being committed the next one queues up, so the busier the file, the more
writes each fsync carries; a lone write still goes at once (nothing waits to fill a batch).

- A write that raises is undone by its savepoint and its caller alone gets the error; the
  others in the batch are committed (a duplicate key, a trigger refusing one row).
- A batch whose transaction fails (COMMIT refused, disk full or an I/O error that makes
  SQLite roll everything back) fails every caller of that batch, each with its own
  `BatchFailed`, and nothing else: the next batch starts afresh.
- `close()` commits everything queued before it returns; a write queued after it raises.
  If the writer is cancelled (the loop shutting down), every caller still waiting gets an
  error: no future is left pending, and no write is ever reported durable before its commit.

A caller cancelled while it waits does not take its write back: once queued it is applied
(as a statement already handed to the connection's thread would be).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar, cast

from gateway.durable_file import DurableSqlite

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Writes in one transaction at most: bounds how long one commit holds the connection's
#: thread (reads wait behind it) and how much one failed batch takes down.
MAX_BATCH = 512


class BatchFailed(sqlite3.OperationalError):
    """The transaction this write was part of did not commit (see `__cause__`); the write
    is not durable and may be made again."""


class WriterClosed(RuntimeError):
    """The file takes no more writes (it is closing or closed)."""


@dataclass(slots=True)
class _Queued:
    write: Callable[[sqlite3.Connection], object]
    future: asyncio.Future[object]


@dataclass(frozen=True, slots=True)
class _Raised:
    error: Exception


class GroupCommit:
    """The writer of one `DurableSqlite`: `start()` once it is open, `close()` before it
    closes; `await write(fn)` from any task."""

    def __init__(self, file: DurableSqlite, *, max_batch: int = MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.max_batch = max_batch
        #: Transactions committed, and writes they carried (for tests and benchmarks).
        self.commits = 0
        self.committed_writes = 0
        self.failed_batches = 0
        self._file = file
        self._queue: list[_Queued] = []
        self._in_flight: list[_Queued] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError(f"the {self._file.NAME}'s writer is already running")
        self._closing = False
        self._task = asyncio.create_task(self._writer(), name=f"{self._file.NAME}-writer")
        self._task.add_done_callback(self._ended)

    async def write(self, write: Callable[[sqlite3.Connection], T]) -> T:
        """Queues `write`; its result once its transaction is committed, or its error."""
        if self._closing or self._task is None or self._task.done():
            raise WriterClosed(f"the {self._file.NAME} is closed")
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(write, future))
        self._wake.set()
        return cast(T, await future)

    async def close(self) -> None:
        """Commits what is queued, then stops the writer (cancelling this cancels it: the
        writes still queued then fail)."""
        self._closing = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            await task

    # -- the writer ---------------------------------------------------------------------------

    async def _writer(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            self._in_flight = batch  # until its callers have their answers
            try:
                outcomes = await self._file.run(partial(_apply, [q.write for q in batch]))
            except asyncio.CancelledError:
                raise  # `_ended` fails the batch still in flight and whatever is queued
            except Exception as error:
                self.failed_batches += 1
                log.error(
                    "%s: a transaction of %d write(s) failed: %r",
                    self._file.NAME,
                    len(batch),
                    error,
                )
                for queued in batch:
                    failure = BatchFailed(
                        f"the {self._file.NAME}'s transaction failed ({error}); "
                        "this write is not durable"
                    )
                    failure.__cause__ = error
                    _reject(queued.future, failure)
            else:
                self.commits += 1
                self.committed_writes += len(batch)
                for queued, outcome in zip(batch, outcomes, strict=True):
                    if isinstance(outcome, _Raised):
                        _reject(queued.future, outcome.error)
                    elif not queued.future.done():  # done: its caller was cancelled
                        queued.future.set_result(outcome)
            self._in_flight = []

    def _ended(self, task: asyncio.Task[None]) -> None:
        """Whatever ended the writer (a normal close, a cancel, a bug), nobody may be left
        waiting for it."""
        self._closing = True
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: the writer failed", self._file.NAME, exc_info=task.exception())
        for queued in self._in_flight:
            _reject(
                queued.future,
                BatchFailed(
                    f"the {self._file.NAME}'s writer stopped during a commit; "
                    "this write may or may not be durable"
                ),
            )
        for queued in self._queue:
            _reject(queued.future, WriterClosed(f"the {self._file.NAME} closed first"))
        self._in_flight, self._queue = [], []


def _reject(future: asyncio.Future[object], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def _apply(
    writes: Sequence[Callable[[sqlite3.Connection], object]], connection: sqlite3.Connection
) -> list[object]:
    """One transaction for every write (on the connection's thread); each write's result,
    or `_Raised` for a write that raised and was rolled back to its savepoint."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        outcomes: list[object] = []
        for write in writes:
            connection.execute("SAVEPOINT write")
            try:
                value = write(connection)
            except Exception as error:
                if not connection.in_transaction:
                    # SQLite rolled the whole transaction back (disk full, I/O error, a
                    # trigger's RAISE(ROLLBACK)): the writes before this one are gone too.
                    raise
                connection.execute("ROLLBACK TO write")
                connection.execute("RELEASE write")
                outcomes.append(_Raised(error))
            else:
                connection.execute("RELEASE write")
                outcomes.append(value)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            try:
                connection.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("rollback after a failed transaction failed")
        raise
    return outcomes
