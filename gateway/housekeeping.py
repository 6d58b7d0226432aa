"""The gateway's durable files forget what they no longer need, on a schedule.

An acked event is deleted and a final outbound SMS blanked at once (gateway/spool.py); what
is left is rows kept for a while on purpose (a final SMS's id, so it is accepted once; the
references a status report is matched by) and the WAL, which still holds pages as they
were before a row was blanked or deleted. Each round deletes the spool's rows older than
the retention and checkpoints every file (TRUNCATE), so no customer's PIN or token stays
in any of them longer than one interval after the hub is done with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from gateway.durable_file import DurableSqlite
from gateway.spool import Spool

log = logging.getLogger(__name__)


class Housekeeper:
    """`async with Housekeeper(...)`: a round at once, then one every `interval` seconds."""

    def __init__(
        self,
        spool: Spool,
        others: Sequence[DurableSqlite],
        *,
        retention: timedelta,
        interval: float,
        clock: Callable[[], datetime],
    ) -> None:
        if interval <= 0:
            raise ValueError("the housekeeping interval must be positive")
        self.spool = spool
        self.others = tuple(others)
        self.retention = retention
        self.interval = interval
        self.clock = clock
        #: Rounds completed (a failed one is logged and not counted), for tests and metrics.
        self.rounds = 0
        self._round_done = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def round(self) -> None:
        await self.spool.purge(self.clock() - self.retention)
        for file in self.others:  # the spool checkpoints in purge()
            if not await file.checkpoint():
                log.info("%s: WAL busy, emptied at the next round", file.NAME)
        self.rounds += 1
        async with self._round_done:
            self._round_done.notify_all()

    async def wait_for_rounds(self, count: int) -> None:
        """Returns once `count` rounds have been completed since the start."""
        async with self._round_done:
            await self._round_done.wait_for(lambda: self.rounds >= count)

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:
                # A busy WAL or a full disk: the data stays as safe as it was; try again.
                log.exception("gateway housekeeping round failed; next in %ss", self.interval)
            await asyncio.sleep(self.interval)

    async def __aenter__(self) -> Housekeeper:
        self._task = asyncio.create_task(self._run(), name="gateway-housekeeping")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
