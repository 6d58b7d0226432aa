"""The AP2T batch from the store: contents, byte-identical re-export, late data as
corrections, delivery over real HTTP to the receiver simulator, the 24 h watch."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from operator_data.ap2t_source import Ap2tJob, StoreAp2tHistory, daily_records, day_bounds
from operator_data.store import Store, schema
from operator_data.store.reporting_schema import ap2t_batches
from p2apst_adapter.ap2t.delivery import DirectoryDrop, HttpUpload
from p2apst_adapter.ap2t.receiver import Ap2tReceiver
from p2apst_adapter.ap2t.records import DailyRecord
from tests.ap2t_support import serve
from tests.operator_data.reporting_seed import customer_id, insert_meters, insert_rows, meter_number

pytestmark = pytest.mark.timeout(60)

DAY = date(2026, 3, 2)
START, END = day_bounds(DAY)  # 1 Mar 17:00 UTC .. 2 Mar 17:00 UTC


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def reading(
    n: int, at: datetime, total: str, credit: str, received: datetime | None = None
) -> dict[str, object]:
    return {
        "meter_number": meter_number(n),
        "meter_time": at,
        "received_at": received or at + timedelta(seconds=30),
        "total_kwh": total,
        "credit_kwh": credit,
    }


def message(n: int, key: str, direction: str, state: str, at: datetime) -> dict[str, object]:
    return {
        "id": f"01M{key:>23}".replace(" ", "0"),
        "direction": direction,
        "flow": "meter_to_hub" if direction == "in" else "hub_to_meter",
        "meter_number": meter_number(n),
        "state": state,
        "state_at": at,
        "retries": 0,
        "idempotency_key": key,
        "created_at": at,
    }


async def seed(store: Store) -> None:
    async with store.begin() as conn:
        await insert_meters(conn, range(3), datetime(2026, 1, 1, tzinfo=UTC))
        await insert_rows(
            conn,
            schema.telemetry_readings,
            [
                reading(0, START - timedelta(hours=2), "100.5", "50"),  # previous day's last
                reading(0, START - timedelta(hours=5), "90", "60"),
                reading(0, START + timedelta(hours=3), "104", "47"),
                reading(0, START + timedelta(hours=20), "107.25", "43.25"),  # the day's last
                reading(0, END + timedelta(minutes=1), "108", "42"),  # next day
                reading(1, START + timedelta(hours=8), "5", "1.5"),  # no previous day
            ],
        )
        await insert_rows(
            conn,
            schema.alarms,
            [
                {
                    "meter_number": meter_number(0),
                    "code": c,
                    "severity": "low",
                    "received_at": START + timedelta(hours=h),
                }
                for c, h in (("tamper", 9), ("low-credit", 4), ("next-day", 25))
            ],
        )
        await insert_rows(
            conn,
            schema.messages,
            [
                message(0, "a", "in", "processed", START + timedelta(hours=20, seconds=40)),
                message(0, "b", "out", "delivered", START + timedelta(hours=1)),
                message(0, "c", "out", "failed", START + timedelta(hours=2)),
                message(0, "d", "in", "processed", END + timedelta(hours=1)),  # next day
                message(2, "e", "in", "processed", START - timedelta(days=3)),  # old contact
            ],
        )


async def records(store: Store, cut: datetime) -> list[DailyRecord]:
    return [r async for r in daily_records(store, DAY, cut=cut, chunk_size=2)]


async def test_records_of_a_day(store: Store) -> None:
    await seed(store)
    got = await records(store, datetime(2026, 3, 5, tzinfo=UTC))
    assert [r.meter_number for r in got] == [meter_number(n) for n in range(3)]
    first, second, third = got
    assert first.customer_id == customer_id(0)
    assert first.last_reading_at == START + timedelta(hours=20)
    assert first.last_reading_kwh == Decimal("107.25")
    assert first.consumption_kwh == Decimal("6.75")
    assert first.remaining_credit_kwh == Decimal("43.25")
    assert first.alarms == ("low-credit", "tamper")
    assert (first.sms_in, first.sms_out, first.sms_failed) == (1, 2, 1)
    assert first.last_contact_at == START + timedelta(hours=20, seconds=40)
    assert second.consumption_kwh is None and second.last_reading_kwh == Decimal(5)
    assert second.last_contact_at == START + timedelta(hours=8, seconds=30)
    assert third.last_reading_at is None and third.last_contact_at == START - timedelta(days=3)
    assert third.sms_in == 0 and third.alarms == ()


async def test_reexport_gives_the_identical_file(store: Store, tmp_path: Path) -> None:
    await seed(store)
    clock = Clock(END + timedelta(hours=1))
    job = Ap2tJob(store, tmp_path / "out", clock=clock, chunk_size=2)
    first = await job.export(DAY)
    content = first.csv_path.read_bytes()
    manifest = (tmp_path / "out" / "ap2t-20260302.manifest.json").read_bytes()
    assert first.manifest.record_count == 3 and first.manifest.corrections == 0
    # Data arriving after the cut does not change the day's batch.
    async with store.begin() as conn:
        await insert_rows(
            conn,
            schema.telemetry_readings,
            [
                reading(
                    2,
                    START + timedelta(hours=23),
                    "9",
                    "9",
                    received=clock.now + timedelta(minutes=5),
                )
            ],
        )
    clock.now += timedelta(hours=2)
    again = await job.export(DAY)
    assert again.generated_at == first.generated_at
    assert again.csv_path.read_bytes() == content
    assert (tmp_path / "out" / "ap2t-20260302.manifest.json").read_bytes() == manifest


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


async def test_late_readings_are_corrections_in_the_next_batch(
    store: Store, tmp_path: Path
) -> None:
    await seed(store)
    clock = Clock(END + timedelta(hours=1))
    job = Ap2tJob(store, tmp_path, clock=clock)
    await job.export(DAY)
    late = clock.now + timedelta(hours=3)
    async with store.begin() as conn:
        await insert_rows(
            conn,
            schema.telemetry_readings,
            [reading(2, START + timedelta(hours=23), "12.5", "3", received=late)],
        )
    clock.now = END + timedelta(days=1, hours=1)
    batch = await job.export(DAY + timedelta(days=1))
    assert (batch.manifest.record_count, batch.manifest.corrections) == (4, 1)
    got = rows(batch.csv_path)
    assert [r["correction_of"] for r in got] == ["", "", "", "2026-03-02"]
    fix = got[-1]
    assert (fix["date"], fix["meter_number"], fix["last_reading_kwh"]) == (
        "2026-03-02",
        meter_number(2),
        "12.500",
    )
    assert fix["remaining_credit_kwh"] == "3.000"
    # The day after: the correction is not repeated.
    clock.now += timedelta(days=1)
    third = await job.export(DAY + timedelta(days=2))
    assert third.manifest.corrections == 0


async def test_delivery_over_http_records_the_acknowledgement(store: Store, tmp_path: Path) -> None:
    await seed(store)
    receiver = Ap2tReceiver(token="s3cret", fail_next=1)
    clock = Clock(END + timedelta(hours=1))
    async with serve(receiver.app()) as base:
        job = Ap2tJob(store, tmp_path, HttpUpload(f"{base}/ap2t/batches", "s3cret"), clock=clock)
        ack = await job.deliver(DAY, first_delay=0.0)
    assert receiver.uploads == 2  # one 503, then accepted
    received = receiver.batches["2026-03-02"]
    assert ack.receipt == received.receipt
    assert received.content == (tmp_path / "ap2t-20260302.csv").read_bytes()
    async with store.read() as conn:
        row = (await conn.execute(select(ap2t_batches))).one()
    assert (row.day, row.receipt, row.acknowledged_at) == (DAY, received.receipt, clock.now)
    assert row.sha256 == received.manifest.sha256 and row.delivery.startswith("http:")
    # The helpdesk's AP2T page reads the same record.
    (shown,) = await StoreAp2tHistory(store).batches(10)
    assert (shown.day, shown.state, shown.detail) == ("2026-03-02", "acknowledged", ack.receipt)
    assert shown.records == row.record_count


async def test_directory_drop(store: Store, tmp_path: Path) -> None:
    await seed(store)
    job = Ap2tJob(store, tmp_path / "out", DirectoryDrop(tmp_path / "drop"), clock=Clock(END))
    ack = await job.run(DAY)
    assert ack is not None and ack.receipt == "dropped:ap2t-20260302.csv"
    assert (tmp_path / "drop" / "ap2t-20260302.csv").read_bytes() == (
        tmp_path / "out" / "ap2t-20260302.csv"
    ).read_bytes()


async def test_overdue(store: Store, tmp_path: Path) -> None:
    await seed(store)
    clock = Clock(END + timedelta(hours=1))
    job = Ap2tJob(store, tmp_path, DirectoryDrop(tmp_path / "drop"), clock=clock)
    assert await job.overdue(clock.now)  # never delivered
    await job.deliver(DAY)
    acked = clock.now
    assert not await job.overdue(acked + timedelta(hours=23, minutes=59))
    assert await job.overdue(acked + timedelta(hours=24, seconds=1))
    async with store.read() as conn:
        events = (
            await conn.execute(select(schema.sla_events).order_by(schema.sla_events.c.id))
        ).all()
    assert [(e.metric, e.subject_id, e.met) for e in events] == [
        ("ap2t_batch_interval", None, False),
        ("ap2t_batch_interval", "2026-03-02", False),
    ]
    assert events[1].duration_ms == (24 * 3600 + 1) * 1000


def test_job_from_settings(tmp_path: Path) -> None:
    from operator_data.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match=r"ap2t\.url needs ap2t\.token"):
        load_settings(ap2t={"url": "http://127.0.0.1:9/ap2t/batches"})
    with pytest.raises(SettingsError, match="not both"):
        load_settings(ap2t={"url": "http://x/", "token": "t", "directory": str(tmp_path)})
    store = Store("sqlite+aiosqlite:///:memory:")
    http = Ap2tJob.from_settings(
        store, load_settings(data_dir=tmp_path, ap2t={"url": "http://x/b", "token": "t"})
    )
    assert isinstance(http.delivery, HttpUpload) and http.delivery.token == "t"
    assert http.out_dir == tmp_path / "ap2t"
    drop = Ap2tJob.from_settings(store, load_settings(ap2t={"directory": str(tmp_path)}))
    assert isinstance(drop.delivery, DirectoryDrop)
    assert Ap2tJob.from_settings(store, load_settings()).delivery is None
