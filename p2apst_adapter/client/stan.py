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
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._last = 0

    def next(self) -> str:
        self._last = max(self._last + 1, int(self._clock() * 1000))
        return f"{self._last % _MODULUS:012d}"
