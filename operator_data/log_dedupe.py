"""Repeated identical errors logged once with a count, not once per occurrence.

A supervisor loop that retries a broken database logs the same traceback on every try (a
full disk gave 269 in 40 s). `RepeatFilter` on a logger lets the first record of a
streak through with its traceback, swallows the same error (same logger, message template,
exception type and first line) for `window_s`, and then says "same error ×N in the last
60 s" once, without a traceback. A streak ends when the error has not been seen for a
window; the next occurrence is a first one again, traceback included.

    dedupe = RepeatFilter(); logging.getLogger("operator_data.hub").addFilter(dedupe)
    ...; dedupe.flush()  # now and then: counts of windows that ended quietly
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

_Key = tuple[str, str, str, str]


@dataclass(slots=True)
class _Streak:
    window_start: float
    last_seen: float
    repeats: int  # swallowed since window_start
    record: logging.LogRecord  # the latest, for the summary line


def _key(record: logging.LogRecord) -> _Key | None:
    if not record.exc_info or record.exc_info[1] is None:
        return None
    error = record.exc_info[1]
    lines = str(error).splitlines()
    return (record.name, str(record.msg), type(error).__qualname__, lines[0] if lines else "")


class RepeatFilter(logging.Filter):
    """See the module. `clock`: seconds, monotonic (a test passes its own)."""

    def __init__(self, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, not {window_s!r}")
        self.window_s = window_s
        self._clock = clock
        self._streaks: dict[_Key, _Streak] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = _key(record)
        if key is None:
            return True  # summaries and records without an error pass as they are
        now = self._clock()
        streak = self._streaks.get(key)
        if streak is None or now - streak.last_seen >= self.window_s:
            if streak is not None and streak.repeats:
                self._emit_count(streak)  # the last streak's count, before the new one
            self._streaks[key] = _Streak(now, now, 0, record)
            return True  # a first occurrence: with its traceback
        streak.last_seen = now
        streak.record = record
        if now - streak.window_start < self.window_s:
            streak.repeats += 1
            return False
        # The window is over: this occurrence carries the count, without a traceback.
        self._summarise(record, streak.repeats + 1)
        streak.window_start, streak.repeats = now, 0
        return True

    def _summarise(self, record: logging.LogRecord, count: int) -> None:
        record.msg = f"{record.getMessage()} (same error ×{count} in the last {self.window_s:g} s)"
        record.args = ()
        record.exc_info = None
        record.exc_text = None

    def _emit_count(self, streak: _Streak) -> None:
        summary = copy.copy(streak.record)
        self._summarise(summary, streak.repeats)
        streak.repeats = 0
        logging.getLogger(summary.name).handle(summary)  # passes: it carries no error

    def flush(self) -> int:
        """Log the count of every window that ended with repeats swallowed and no
        occurrence since; forget streaks quiet for a window. Returns the lines logged."""
        now = self._clock()
        logged = 0
        for key, streak in list(self._streaks.items()):
            if now - streak.window_start < self.window_s:
                continue
            if streak.repeats:
                self._emit_count(streak)
                streak.window_start = now
                logged += 1
            elif now - streak.last_seen >= self.window_s:
                del self._streaks[key]
        return logged
