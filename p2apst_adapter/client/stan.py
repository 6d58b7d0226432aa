"""System trace audit numbers (bit 11, 12 digits) that a restart does not reuse."""

from __future__ import annotations

import time
from collections.abc import Callable

_MODULUS = 10**12


class StanSource:
    """Milliseconds since the epoch, bumped by one when two are drawn within a millisecond.

    A restarted process starts from the clock again, which is past every STAN the previous
    one drew unless it sustained more than one STAN per millisecond on average; no state
    needs to be persisted. The 12 digits wrap after about 31 years.

    Several processes signed on as one switcher (hub workers) each take a `lane` of
    `lanes`: a STAN is then `ms × lanes + lane`, so two workers never draw the same one,
    even within the same millisecond (the 12 digits then wrap after 31 / `lanes` years).
    """

    def __init__(
        self, clock: Callable[[], float] = time.time, *, lane: int = 0, lanes: int = 1
    ) -> None:
        if not 1 <= lanes <= 1000 or not 0 <= lane < lanes:
            raise ValueError(f"STAN lane {lane} of {lanes}: need 0 <= lane < lanes <= 1000")
        self._clock = clock
        self._lane = lane
        self._lanes = lanes
        self._last = -1

    def next(self) -> str:
        now = int(self._clock() * 1000) * self._lanes + self._lane
        self._last = max(self._last + self._lanes, now)
        return f"{self._last % _MODULUS:012d}"
