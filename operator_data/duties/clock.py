"""The duty runner's clock: `now()` and `sleep_until(when)`, injected so a test can move
time through days without waiting (ManualClock) while the service uses the system's."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Protocol

# The system clock wakes at least this often to look again: a suspended machine or a
# stepped wall clock then delays a duty by at most this, never by the whole wait.
_MAX_NAP_S = 60.0


class DutyClock(Protocol):
    def now(self) -> datetime: ...

    async def sleep_until(self, when: datetime) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        # A poll on purpose (no event to wait for): the wall clock is looked at again.
        while (left := (when - self.now()).total_seconds()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(left, _MAX_NAP_S))


class ManualClock:
    """A clock that moves only when told (`advance`, `set`); sleepers whose time has come
    are woken in time order."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the clock's start needs a time zone")
        self._now = start
        self._order = itertools.count()
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            await asyncio.sleep(0)  # still a yield point, as a real sleep would be
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._order), waiter))
        await waiter

    def set(self, when: datetime) -> None:
        if when < self._now:
            raise ValueError(f"the clock does not go back ({when} < {self._now})")
        self._now = when
        while self._sleepers and self._sleepers[0][0] <= when:
            _, _, waiter = heapq.heappop(self._sleepers)
            if not waiter.done():
                waiter.set_result(None)

    def advance(self, **delta: float) -> datetime:
        """`clock.advance(hours=1)`; returns the new time."""
        self.set(self._now + timedelta(**delta))
        return self._now
