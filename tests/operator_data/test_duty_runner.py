"""The duty runner on a manual clock: a failure is retried with back-off and alarms (ERROR
+ helpdesk incident) once after `alarm_after` failures; busy is no failure; a day that
cannot be done before the next run is given up with an alarm; the AP2T deadline duty
alarms when the day is not acknowledged. No sleeps: the test awaits the runner's outcomes
and moves the clock to the retry times they announce."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from operator_data.ap2t_source import Ap2tJob
from operator_data.duties import record
from operator_data.duties.clock import ManualClock
from operator_data.duties.jobs import AP2T_OVERDUE, ap2t_days, ap2t_deadline
from operator_data.duties.runner import DUTY_FAILED, Duty, DutyBusy, DutyOutcome, DutyRunner
from operator_data.duties.schedule import DailySchedule, backoff
from operator_data.settings import load_settings
from operator_data.store import Store, schema
from p2apst_adapter.ap2t.delivery import DirectoryDrop
from tests.operator_data.test_ap2t_source import DAY, seed

pytestmark = [pytest.mark.timeout(60), pytest.mark.parametrize("backend", ["sqlite"])]

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # 19:00 WIB on DAY
SCHEDULE = DailySchedule(time(0, 30))
SLOT = SCHEDULE.next_after(START)  # 00:30 WIB on DAY + 1, covering DAY


class Flaky:
    """Fails (or is busy) the first `times` calls, then succeeds."""

    def __init__(self, times: int, error: Exception) -> None:
        self.times, self.error, self.calls = times, error, 0

    async def __call__(self, day: date, now: datetime) -> record.Summary:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return {"calls": self.calls}


def attempt_no(number: int) -> Callable[[DutyOutcome], bool]:
    return lambda outcome: outcome.attempt == number


async def incidents(store: Store) -> list[tuple[str, str]]:
    h = schema.helpdesk_items
    async with store.read() as conn:
        rows = await conn.execute(select(h.c.category, h.c.subject).order_by(h.c.id))
        return [(r.category, r.subject) for r in rows]


def runner(store: Store, clock: ManualClock, action: Flaky, **options: float) -> DutyRunner:
    conf: dict[str, float] = {"retry_first_s": 60, "retry_max_s": 600, "alarm_after": 3}
    conf.update(options)
    return DutyRunner(
        store,
        [Duty("flaky", SCHEDULE, action)],
        clock=clock,
        worker_id="w1",
        retry_first_s=conf["retry_first_s"],
        retry_max_s=conf["retry_max_s"],
        alarm_after=int(conf["alarm_after"]),
    )


async def test_a_failure_is_retried_with_backoff_and_alarms_once(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(START)
    action = Flaky(4, OSError("AP2T unreachable"))
    async with runner(store, clock, action) as duties:
        assert action.calls == 0  # nothing before its time
        clock.set(SLOT)
        waits = []
        for attempt in range(1, 5):
            failed = await duties.wait_until(attempt_no(attempt))
            assert failed.status == "failed" and failed.detail == "OSError: AP2T unreachable"
            assert failed.retry_at is not None
            waits.append((failed.retry_at - failed.at).total_seconds())
            clock.set(failed.retry_at)
        done = await duties.wait_for("flaky", DAY)
    assert done.status == "done" and done.attempt == 5 and action.calls == 5
    assert waits == [backoff(n, 60, 600) for n in range(1, 5)] == [60, 120, 240, 480]
    # One alarm, after the third failure in a row, not one per failure.
    assert await incidents(store) == [
        (DUTY_FAILED, f"Scheduled duty flaky for {DAY} failed 3 times: OSError: AP2T unreachable")
    ]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        f"scheduled duty flaky for {DAY} failed 3 time(s) on worker w1: OSError: AP2T unreachable"
    ]
    assert await record.done_count(store, "flaky", DAY) == 1


async def test_busy_is_no_failure_and_raises_no_alarm(store: Store) -> None:
    clock = ManualClock(START)
    action = Flaky(2, DutyBusy("another node is purging"))
    async with runner(store, clock, action, alarm_after=1) as duties:
        clock.set(SLOT)
        for attempt in (1, 2):
            busy = await duties.wait_until(attempt_no(attempt))
            assert busy.status == "busy" and busy.retry_at == busy.at + timedelta(seconds=60)
            clock.set(busy.retry_at)
        done = await duties.wait_for("flaky", DAY)
    assert done.status == "done" and await incidents(store) == []


async def test_a_day_not_done_before_the_next_run_is_given_up_with_an_alarm(
    store: Store,
) -> None:
    clock = ManualClock(START)
    action = Flaky(2, RuntimeError("disk full"))
    # Retries 12 h, then 24 h apart: the second retry would be after the next run.
    async with runner(
        store, clock, action, retry_first_s=12 * 3600, retry_max_s=86_400, alarm_after=5
    ) as duties:
        clock.set(SLOT)
        first = await duties.wait_until(lambda o: o.attempt == 1)
        assert first.retry_at is not None
        clock.set(first.retry_at)
        given_up = await duties.wait_for("flaky", DAY)
        assert given_up.status == "gave_up" and action.calls == 2
        assert await incidents(store) == [
            (DUTY_FAILED, f"Scheduled duty flaky for {DAY} failed 2 times: RuntimeError: disk full")
        ]
        # The next day's run is its own, and succeeds.
        clock.set(SLOT + timedelta(days=1))
        nxt = await duties.wait_for("flaky", DAY + timedelta(days=1))
    assert nxt.status == "done"
    assert await record.done_count(store, "flaky", DAY) == 0
    assert await record.done_count(store, "flaky", DAY + timedelta(days=1)) == 1


async def test_a_recorded_day_is_not_run_again(store: Store) -> None:
    clock = ManualClock(SLOT)
    action = Flaky(0, RuntimeError("never"))
    duties = runner(store, clock, action)
    assert (await duties.attempt(duties.duties[0], DAY)).status == "done"
    assert (await duties.attempt(duties.duties[0], DAY)).status == "already_done"
    assert action.calls == 1


async def test_the_ap2t_deadline_alarms_when_the_day_is_not_acknowledged(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await seed(store)
    settings = load_settings(data_dir=tmp_path)
    deadline = DailySchedule(time(6, 0)).slot_on(DAY + timedelta(days=1))
    clock = ManualClock(deadline)
    check = ap2t_deadline(settings, store, clock)
    late = await check(DAY, clock.now())
    assert late["acknowledged"] is False and late["late"] is True
    subject = f"AP2T batch for {DAY} not acknowledged by 06:00 WIB"
    assert await incidents(store) == [(AP2T_OVERDUE, subject)]
    assert any(r.levelno == logging.ERROR and subject in r.getMessage() for r in caplog.records)
    # Delivered (to a drop directory) and acknowledged: the next check is quiet.
    job = Ap2tJob(store, tmp_path / "ap2t", DirectoryDrop(tmp_path / "drop"), clock=clock.now)
    await job.deliver(DAY)
    quiet = await check(DAY, clock.now())
    assert quiet == {"acknowledged": True, "late": False}
    assert len(await incidents(store)) == 1


async def test_the_ap2t_run_also_delivers_days_left_behind(store: Store, tmp_path: Path) -> None:
    await seed(store)
    clock = ManualClock(DailySchedule(time(0, 30)).slot_on(DAY + timedelta(days=1)))
    await Ap2tJob(store, tmp_path, None, clock=clock.now).export(DAY)  # exported, not acked
    later = DAY + timedelta(days=3)
    assert await ap2t_days(store, later, lookback=7) == [
        DAY,  # its revision is pending
        DAY + timedelta(days=1),  # no batch: missed
        DAY + timedelta(days=2),
        later,
    ]
    assert await ap2t_days(store, later, lookback=1) == [DAY + timedelta(days=2), later]
