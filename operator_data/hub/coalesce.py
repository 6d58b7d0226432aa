"""Many callers' writes as one: what is submitted while a batch is being written goes
into the next batch.

Under load, each caller's small write (a purchase journalled, a 2210 recorded, a token
issued) would cost a unit of work of its own: its transaction, its statements, its turn at
the store's write gate. A `Coalescer` hands every item queued meanwhile to one `write`
call instead, which writes them with one multi-row statement per table; idle, a single
item is written at once, with no wait added. A batch whose write fails is written again
one item at a time, so one bad item fails only its own caller.

    journal = Coalescer(write_many, limit=256, name="journal-begin")
    stored = await journal.submit(entry)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger("operator_data.hub.coalesce")

I = TypeVar("I")  # noqa: E741 - an item, as in the module's docstring
R = TypeVar("R")


class Coalescer(Generic[I, R]):
    """Batches `submit`ted items for `write`, which returns one result per item, in order.

    The task writing a batch lives only while items are queued. Cancelling a caller does
    not take its item out of a batch being written (writes are idempotent upstream); the
    caller just stops waiting for the result.
    """

    def __init__(
        self,
        write: Callable[[Sequence[I]], Awaitable[Sequence[R]]],
        *,
        limit: int,
        name: str,
    ) -> None:
        if limit < 1:
            raise ValueError("a batch holds at least one item")
        self._write = write
        self._limit = limit
        self._name = name
        self._queue: list[tuple[I, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def submit(self, item: I) -> R:
        """Write `item` with whatever else is queued; its result once committed."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name=self._name)
        return await future

    async def _drain(self) -> None:
        batch: list[tuple[I, asyncio.Future[R]]] = []
        try:
            while self._queue:
                batch = self._queue[: self._limit]
                del self._queue[: len(batch)]
                await self._write_batch(batch)
                batch = []
        except BaseException as error:
            # Cancelled (the loop is closing): nobody waits forever for a write that will
            # not happen.
            for _, future in [*batch, *self._queue]:
                _settle(future, error=error)
            self._queue.clear()
            raise

    async def _write_batch(self, batch: Sequence[tuple[I, asyncio.Future[R]]]) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0][1], error=error)
                return
            log.exception("%s: a batch of %d failed; writing it one by one", self._name, len(batch))
            for item, future in batch:
                try:
                    (result,) = await self._write([item])
                except Exception as alone:
                    _settle(future, error=alone)
                else:
                    _settle(future, result)
            return
        if len(results) != len(batch):
            wrong = RuntimeError(f"{self._name}: {len(results)} results for {len(batch)} items")
            for _, future in batch:
                _settle(future, error=wrong)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)


def _settle(
    future: asyncio.Future[R], result: R | None = None, *, error: BaseException | None = None
) -> None:
    if future.done():
        return  # its caller stopped waiting
    if error is None:
        future.set_result(result)  # type: ignore[arg-type]
    elif isinstance(error, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(error)
