"""Runs each duty at its time on one worker of the cluster, once per WIB day.

At a duty's time every worker tries it: the one that takes its `run_once` lock (a
PostgreSQL advisory lock) and finds no record of the day (record.py) runs it and records
it; the others find the lock held (busy: they look again after the back-off, and then see
the record) or the record written. A failure is retried with back-off (retry_first_s,
doubled, at most retry_max_s) until the duty's next time comes; after `alarm_after`
failures in a row, or when giving up before that, an alarm is raised once for the day: an
ERROR log line and a helpdesk incident. Every attempt's outcome is kept in `history` and
announced to `wait_for`, so a test awaits a duty's completion instead of sleeping.

A duty's action must be idempotent for its day: if the record cannot be written after the
action succeeded, the retry runs it again (an acknowledged AP2T batch is not sent again, a
purge finds nothing more, a report file is rewritten with the same content).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import Literal, Self

from operator_data.duties import record
from operator_data.duties.clock import DutyClock
from operator_data.duties.schedule import DailySchedule, backoff
from operator_data.store import Store
from operator_data.store.locks import run_once

log = logging.getLogger(__name__)

DUTY_FAILED = "duty_failed"  # helpdesk category of the failure alarm
HISTORY = 1000

Status = Literal["done", "already_done", "busy", "failed", "gave_up"]
#: Statuses that end a duty's day on this worker.
FINAL: frozenset[str] = frozenset({"done", "already_done", "gave_up"})

#: (day, now) -> a short JSON-able summary of what was done, recorded with the day.
Action = Callable[[date, datetime], Awaitable[record.Summary]]
#: (duty, day, failures, last error) -> None: log and open a helpdesk item.
Alarm = Callable[[str, date, int, str], Awaitable[None]]


class DutyBusy(Exception):
    """Someone else (another worker, a `pintar` command) is doing this work right now:
    look again after the back-off. Not a failure, never an alarm."""


@dataclass(frozen=True, slots=True)
class Duty:
    name: str
    schedule: DailySchedule
    action: Action


@dataclass(frozen=True, slots=True)
class DutyOutcome:
    duty: str
    day: date
    status: Status
    worker: str
    at: datetime
    attempt: int
    detail: str | None = None
    retry_at: datetime | None = None  # busy or failed: when this worker tries again


class StoreAlarm:
    """The failure alarm: an ERROR line and a helpdesk incident (its write failing is
    logged; the ERROR line is already out)."""

    def __init__(self, store: Store, worker_id: str, clock: DutyClock) -> None:
        self._store, self._worker, self._clock = store, worker_id, clock

    async def __call__(self, duty: str, day: date, failures: int, error: str) -> None:
        log.error(
            "scheduled duty %s for %s failed %d time(s) on worker %s: %s",
            duty,
            day,
            failures,
            self._worker,
            error,
        )
        from operator_data.hub.helpdesk import open_incident

        try:
            async with self._store.begin() as conn:
                await open_incident(
                    conn,
                    category=DUTY_FAILED,
                    subject=f"Scheduled duty {duty} for {day} failed {failures} times: {error}",
                    at=self._clock.now(),
                    notes=(
                        f"Worker {self._worker} keeps retrying until the duty's next run. "
                        "See docs/runbook.md, 'What runs when', for the command that does "
                        "the same by hand."
                    ),
                )
        except Exception:
            log.exception("scheduled duty %s: the alarm's helpdesk item was not written", duty)


def _summary(error: BaseException) -> str:
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0][:200] if lines else ''}"


class DutyRunner:
    """`async with DutyRunner(store, duties, clock=..., worker_id=...)`: one task per duty."""

    def __init__(
        self,
        store: Store,
        duties: Sequence[Duty],
        *,
        clock: DutyClock,
        worker_id: str,
        retry_first_s: float = 60.0,
        retry_max_s: float = 3600.0,
        alarm_after: int = 3,
        alarm: Alarm | None = None,
    ) -> None:
        names = [d.name for d in duties]
        if len(set(names)) != len(names):
            raise ValueError(f"duty names must be distinct: {names}")
        if alarm_after < 1:
            raise ValueError(f"alarm_after must be at least 1, got {alarm_after}")
        backoff(1, retry_first_s, retry_max_s)  # the same clear error for a bad pair
        self.store = store
        self.duties = tuple(duties)
        self.clock = clock
        self.worker_id = worker_id
        self.retry_first_s = retry_first_s
        self.retry_max_s = retry_max_s
        self.alarm_after = alarm_after
        self.alarm: Alarm = alarm or StoreAlarm(store, worker_id, clock)
        # The recent outcomes (bounded: a worker runs for years).
        self.history: deque[DutyOutcome] = deque(maxlen=HISTORY)
        self._changed = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        for duty in self.duties:
            log.info(
                "worker %s: duty %s daily at %s WIB", self.worker_id, duty.name, duty.schedule.at
            )
            # The first time is fixed now, not when the task first runs: the clock may
            # have moved on by then (a test's, or a slow start's).
            first = duty.schedule.next_after(self.clock.now())
            task = asyncio.create_task(self._loop(duty, first), name=f"duty-{duty.name}")
            self._tasks.append(task)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def wait_until(self, wanted: Callable[[DutyOutcome], bool]) -> DutyOutcome:
        """The first recorded outcome `wanted` accepts, once there is one."""

        def found() -> DutyOutcome | None:
            return next((o for o in self.history if wanted(o)), None)

        async with self._changed:
            await self._changed.wait_for(lambda: found() is not None)
        outcome = found()
        assert outcome is not None
        return outcome

    async def wait_for(self, duty: str, day: date) -> DutyOutcome:
        """The outcome that ended `duty`'s `day` on this worker, once there is one."""
        return await self.wait_until(
            lambda o: o.duty == duty and o.day == day and o.status in FINAL
        )

    async def _loop(self, duty: Duty, slot: datetime) -> None:
        # From the next time after the start on: a time missed while no worker ran is not
        # caught up here (the AP2T duty itself delivers days left behind; docs/runbook.md).
        while True:
            await self.clock.sleep_until(slot)
            try:
                await self.run_slot(duty, slot)
            except Exception:  # the loop must outlive a bug in one run: the next day runs
                log.exception("duty %s: the run at %s broke off", duty.name, slot.isoformat())
            # The next time after this one, not after now: a late clock runs it at once.
            slot = duty.schedule.next_after(slot)

    async def _note(self, outcome: DutyOutcome) -> DutyOutcome:
        self.history.append(outcome)
        async with self._changed:
            self._changed.notify_all()
        return outcome

    def _outcome(
        self, duty: Duty, day: date, status: Status, attempt: int, detail: str | None = None
    ) -> DutyOutcome:
        return DutyOutcome(
            duty.name, day, status, self.worker_id, self.clock.now(), attempt, detail
        )

    async def attempt(self, duty: Duty, day: date, attempt: int = 1) -> DutyOutcome:
        """One try: the lock, the day's record, the action, the record. Raises what the
        action raised (but DutyBusy, which is the outcome `busy`)."""
        async with run_once(self.store, f"duty.{duty.name}") as mine:
            if not mine:
                return self._outcome(duty, day, "busy", attempt, "another worker holds it")
            if await record.is_done(self.store, duty.name, day):
                return self._outcome(duty, day, "already_done", attempt)
            try:
                summary = await duty.action(day, self.clock.now())
            except DutyBusy as busy:
                return self._outcome(duty, day, "busy", attempt, str(busy))
            await record.mark_done(
                self.store,
                duty.name,
                day,
                worker=self.worker_id,
                at=self.clock.now(),
                summary=summary,
            )
            log.info("duty %s for %s done on worker %s: %s", duty.name, day, self.worker_id,
                     dict(summary))  # fmt: skip
            return self._outcome(duty, day, "done", attempt, None)

    async def run_slot(self, duty: Duty, slot: datetime) -> DutyOutcome:
        """The duty's run at `slot` for its day, retried until it is done or the duty's
        next time comes (then the alarm, if not raised yet, and `gave_up`)."""
        day = DailySchedule.covered_day(slot)
        give_up_at = duty.schedule.next_after(slot)
        failures = 0
        alarmed = False
        last_error = ""
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome = await self.attempt(duty, day, attempt)
            except Exception as error:
                failures += 1
                last_error = _summary(error)
                log.warning("duty %s for %s failed (%d in a row) on worker %s: %s",
                            duty.name, day, failures, self.worker_id, last_error,
                            exc_info=error)  # fmt: skip
                outcome = self._outcome(duty, day, "failed", attempt, last_error)
            if outcome.status in FINAL:
                return await self._note(outcome)
            # The retry time is fixed before the outcome is announced: whoever moves the
            # clock on hearing it cannot move it under this computation.
            retry_at = outcome.at + timedelta(
                seconds=backoff(max(failures, 1), self.retry_first_s, self.retry_max_s)
            )
            await self._note(replace(outcome, retry_at=retry_at))
            if outcome.status == "failed" and failures >= self.alarm_after and not alarmed:
                alarmed = await self._raise_alarm(duty, day, failures, last_error)
            if retry_at >= give_up_at:
                if failures == 0:  # only ever busy: the worker holding it finishes it
                    detail = "left to the worker that holds it"
                    log.info("duty %s for %s %s (worker %s)", duty.name, day, detail,
                             self.worker_id)  # fmt: skip
                    return await self._note(self._outcome(duty, day, "gave_up", attempt, detail))
                if not alarmed:
                    await self._raise_alarm(duty, day, failures, last_error)
                detail = f"not done before its next run at {give_up_at.isoformat()}"
                log.error("duty %s for %s given up on worker %s: %s",
                          duty.name, day, self.worker_id, detail)  # fmt: skip
                return await self._note(self._outcome(duty, day, "gave_up", attempt, detail))
            await self.clock.sleep_until(retry_at)

    async def _raise_alarm(self, duty: Duty, day: date, failures: int, error: str) -> bool:
        try:
            await self.alarm(duty.name, day, failures, error)
        except Exception:
            log.exception("duty %s: raising the alarm failed", duty.name)
        return True
