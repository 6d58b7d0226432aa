"""Repeated identical errors: the first with its traceback, then one line with a count."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from operator_data.log_dedupe import RepeatFilter


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


@pytest.fixture
def logged(clock: _Clock) -> Iterator[tuple[logging.Logger, RepeatFilter, _Records]]:
    logger = logging.getLogger("tests.log_dedupe")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = _Records()
    dedupe = RepeatFilter(window_s=60, clock=clock)
    logger.addHandler(handler)
    logger.addFilter(dedupe)
    yield logger, dedupe, handler
    logger.removeFilter(dedupe)
    logger.removeHandler(handler)
    logger.propagate = True


def _fail(logger: logging.Logger, text: str = "database or disk is full", n: int = 1) -> None:
    try:
        raise OSError(f"{text}\n[SQL: INSERT ... {n}]")
    except OSError:
        logger.exception("event %s failed (attempt %d)", f"ev{n}", 1)


def test_a_repeating_error_has_one_traceback_then_a_count(
    logged: tuple[logging.Logger, RepeatFilter, _Records], clock: _Clock
) -> None:
    logger, _, handler = logged
    for n in range(268):  # message arguments and SQL differ, the error does not
        _fail(logger, n=n)
        clock.now += 0.2
    assert len(handler.records) == 1 and handler.records[0].exc_info is not None
    clock.now += 10  # the window (60 s from the first) is over
    _fail(logger, n=999)
    assert len(handler.records) == 2
    summary = handler.records[1]
    assert summary.exc_info is None
    # 269 in all: the first with its traceback, the 268 since then in one line.
    assert summary.getMessage() == (
        "event ev999 failed (attempt 1) (same error ×268 in the last 60 s)"
    )


def test_flush_reports_a_window_that_ended_quietly(
    logged: tuple[logging.Logger, RepeatFilter, _Records], clock: _Clock
) -> None:
    logger, dedupe, handler = logged
    for n in range(4):
        _fail(logger, n=n)
    assert dedupe.flush() == 0  # the window is still open
    clock.now += 61
    assert dedupe.flush() == 1
    assert "same error ×3 in the last 60 s" in handler.records[-1].getMessage()
    assert handler.records[-1].exc_info is None
    clock.now += 61
    assert dedupe.flush() == 0  # nothing new: the streak is forgotten
    _fail(logger)
    assert handler.records[-1].exc_info is not None  # a new streak: traceback again


def test_a_streak_that_went_quiet_reports_its_count_before_the_next(
    logged: tuple[logging.Logger, RepeatFilter, _Records], clock: _Clock
) -> None:
    logger, _, handler = logged
    for n in range(3):
        _fail(logger, n=n)
    clock.now += 120  # quiet for two windows, no flush in between
    _fail(logger, n=7)
    assert [r.exc_info is not None for r in handler.records] == [True, False, True]
    assert "same error ×2 in the last 60 s" in handler.records[1].getMessage()


def test_different_errors_and_plain_records_pass(
    logged: tuple[logging.Logger, RepeatFilter, _Records],
) -> None:
    logger, _, handler = logged
    _fail(logger, "database or disk is full")
    _fail(logger, "database is locked")
    logger.error("no exception here")
    logger.error("no exception here")
    assert [r.exc_info is not None for r in handler.records] == [True, True, False, False]


def test_a_bad_window_is_refused() -> None:
    with pytest.raises(ValueError, match="window_s must be > 0"):
        RepeatFilter(window_s=0)
