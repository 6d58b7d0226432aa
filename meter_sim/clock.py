"""Simulated time shared by the network, meters and phones: a day runs in milliseconds."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta


class SimClock:
    """A clock that moves only when told. `sleep` advances it and yields once, so code
    written against `asyncio.sleep` (the SMSC's retry loop, a meter's answer delay) runs
    through simulated time without waiting."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated clock needs a timezone-aware start")
        self._now = start
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self._now

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        if moment < self._now:
            raise ValueError(f"time does not run backwards: {moment} < {self._now}")
        self._now = moment

    def advance(self, delta: timedelta) -> datetime:
        self.set(self._now + delta)
        return self._now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if seconds > 0:
            self.advance(timedelta(seconds=seconds))
        await asyncio.sleep(0)
