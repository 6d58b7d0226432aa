"""Issue 18's "done when" for the scheduled duties: two hub workers sharing one PostgreSQL
database, on one manual clock moved through two WIB days. Both days' AP2T batches reach
the AP2T receiver simulator over HTTP, and the purge (like every duty) runs once per day
in the cluster (`run_once` + the day's record), not once per worker. No sleeps: the clock
is set to each duty's time and the test awaits the duty's completion on the workers."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from operator_data.crypto import MasterKey
from operator_data.duties import record
from operator_data.duties.clock import ManualClock
from operator_data.duties.jobs import (
    AP2T_DEADLINE,
    AP2T_DELIVER,
    COMPLAINTS_REPORT,
    RETENTION_PURGE,
    SLA_REPORT,
    SMS_COSTS,
)
from operator_data.duties.runner import DutyOutcome, DutyRunner
from operator_data.hub.service import running_hub
from operator_data.settings import Settings, load_settings
from operator_data.store import Store, schema
from operator_data.store.reporting_schema import ap2t_batches
from p2apst_adapter.ap2t.receiver import Ap2tReceiver
from tests.ap2t_support import serve
from tests.operator_data.test_ap2t_source import DAY, seed

pytestmark = [pytest.mark.timeout(120), pytest.mark.parametrize("backend", ["postgresql"])]

START = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # 12:00 WIB on DAY
DAYS = (DAY, DAY + timedelta(days=1))
TOKEN = "ap2t-test-token"


def worker_settings(
    tmp_path: Path, name: str, database_url: str, mosquitto_url: str, topic: str, ap2t_url: str
) -> Settings:
    broker = urlsplit(mosquitto_url)
    return load_settings(
        data_dir=tmp_path / name,  # each worker on its own machine
        database={"url": database_url},
        security={"master_key": MASTER.key.hex()},
        mqtt={"host": broker.hostname, "port": broker.port, "topic_root": topic},
        ap2t={"url": ap2t_url, "token": TOKEN},
    )


MASTER = MasterKey(secrets.token_bytes(32))


def about(duty: str, day: date) -> Callable[[DutyOutcome], bool]:
    return lambda outcome: (outcome.duty, outcome.day) == (duty, day)


async def done_somewhere(runners: list[DutyRunner], duty: str, day: date) -> DutyOutcome:
    """The outcome `done` of `duty` for `day` on whichever worker ran it."""
    waits = [
        asyncio.create_task(
            r.wait_until(lambda o: o.duty == duty and o.day == day and o.status == "done")
        )
        for r in runners
    ]
    try:
        async with asyncio.timeout(60):
            finished, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
    return next(iter(finished)).result()


async def test_two_workers_run_each_duty_once_a_day_for_two_days(
    store: Store, database_url: str, mosquitto_url: str, tmp_path: Path
) -> None:
    await seed(store)  # DAY's meters, readings, alarms and SMS
    clock = ManualClock(START)
    receiver = Ap2tReceiver(TOKEN)
    topic = f"pintar-test-{secrets.token_hex(4)}"
    async with serve(receiver.app()) as base, AsyncExitStack() as stack:
        nodes = [
            await stack.enter_async_context(
                running_hub(
                    worker_settings(
                        tmp_path, name, database_url, mosquitto_url, topic, f"{base}/ap2t/batches"
                    ),
                    worker_id=name,
                    clock=clock,
                )
            )
            for name in ("w1", "w2")
        ]
        runners = [n.duties for n in nodes if n.duties is not None]
        assert len(runners) == 2
        schedules = {d.name: d.schedule for d in runners[0].duties}
        assert set(schedules) == {AP2T_DELIVER, AP2T_DEADLINE, RETENTION_PURGE, SLA_REPORT,
                                  SMS_COSTS, COMPLAINTS_REPORT}  # fmt: skip
        ran: dict[tuple[str, date], str] = {}
        for day in DAYS:
            # Each duty's time on the day after `day`, in time order.
            for name, slot in sorted(
                ((n, s.slot_on(day + timedelta(days=1))) for n, s in schedules.items()),
                key=lambda item: item[1],
            ):
                clock.set(slot)
                outcome = await done_somewhere(runners, name, day)
                ran[(name, day)] = outcome.worker
                # The other worker tried too: it found the lock held or the day recorded.
                other = next(r for r in runners if r.worker_id != outcome.worker)
                async with asyncio.timeout(60):
                    tried = await other.wait_until(about(name, day))
                assert tried.status in ("busy", "already_done"), tried
        history = [o for r in runners for o in r.history]

    # Both days delivered to AP2T over HTTP, once each, and recorded as acknowledged.
    assert sorted(receiver.batches) == [d.isoformat() for d in DAYS]
    assert receiver.uploads == 2
    async with store.read() as conn:
        rows = (await conn.execute(select(ap2t_batches).order_by(ap2t_batches.c.day))).all()
    assert [(r.day, r.revision) for r in rows] == [(DAYS[0], 1), (DAYS[1], 1)]
    assert [r.receipt for r in rows] == [receiver.batches[d.isoformat()].receipt for d in DAYS]
    assert all(r.acknowledged_at is not None for r in rows)
    # Day 1's batch carries DAY's 3 meters.
    assert receiver.batches[DAY.isoformat()].manifest.record_count == 3

    # Every duty, the purge included, ran once per day in the cluster, not once per worker.
    for day in DAYS:
        for name in schedules:
            runs = [o for o in history if (o.duty, o.day, o.status) == (name, day, "done")]
            assert len(runs) == 1, (name, day, runs)
            assert await record.done_count(store, name, day) == 1
            others = {o.status for o in history if (o.duty, o.day) == (name, day)} - {"done"}
            assert others <= {"busy", "already_done", "gave_up"}, (name, day, others)
    # No failure, no alarm: the deadline was met on both days.
    assert not [o for o in history if o.status == "failed"]
    async with store.read() as conn:
        assert (await conn.execute(select(schema.helpdesk_items))).first() is None

    # The day files are where the worker that ran the duty keeps them.
    for day in DAYS:
        stem = f"{day:%Y%m%d}"
        sla_dir = tmp_path / ran[(SLA_REPORT, day)] / "reports" / "sla"
        assert (sla_dir / f"sla-{stem}.json").is_file() and (sla_dir / f"sla-{stem}.csv").is_file()
        costs_dir = tmp_path / ran[(SMS_COSTS, day)] / "sms-costs"
        assert (costs_dir / f"sms-costs-{stem}.manifest.json").is_file()
        reports = tmp_path / ran[(COMPLAINTS_REPORT, day)] / "reports" / "complaints"
        monthly = json.loads((reports / f"complaints-{day:%Y%m}.json").read_text())
        assert monthly["month"] == f"{day:%Y-%m}" and "disruption" in monthly
