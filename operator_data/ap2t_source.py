"""The daily AP2T batch from the hub's database, and the job that exports and delivers it.

`daily_records` streams one `DailyRecord` per meter for a WIB calendar day in meter-number
order, a chunk of meters at a time (keyset pagination), so a million meters never sit in
memory. Each record is built from:
- telemetry_readings: the day's last reading (by the meter's own clock, else arrival time);
  consumption = its cumulative kWh minus the previous day's last reading (None when either
  is missing or the register went backwards, e.g. a replaced meter);
- alarms raised during the day; SMS in/out/failed from the message log; last contact = the
  last SMS from the meter (or reading arrival) before the day ended.

A batch reads only what had arrived by its data cut (`ap2t_batches.generated_at`, the time
of the day's first export), so re-exporting a day gives the identical file. Readings for a
day whose batch was already cut that arrive later are sent in the next batch as correction
rows (`correction_of` = that day): a full recomputed row for each affected meter and day.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.api.providers import Ap2tBatch
from operator_data.settings import Settings
from operator_data.store import Store, schema, utcnow
from operator_data.store.locks import run_once
from operator_data.store.reporting_schema import ap2t_batches
from operator_data.store.states import Direction, MessageState
from p2apst_adapter.ap2t.delivery import (
    Acknowledgement,
    Delivery,
    DirectoryDrop,
    HttpUpload,
    batch_overdue,
    deliver_until_acknowledged,
)
from p2apst_adapter.ap2t.export import Manifest, batch_name, export_batch
from p2apst_adapter.ap2t.records import DailyRecord

log = logging.getLogger(__name__)

WIB = ZoneInfo("Asia/Jakarta")
DEFAULT_CHUNK = 1000
SLA_METRIC = "ap2t_batch_interval"
LOCK_NAME = "ap2t.batch"

_tr, _al, _msg, _m = schema.telemetry_readings, schema.alarms, schema.messages, schema.meters
_READING_AT = func.coalesce(_tr.c.meter_time, _tr.c.received_at)
_ALARM_AT = func.coalesce(_al.c.meter_time, _al.c.received_at)
_FAILED = (MessageState.FAILED.value, MessageState.EXPIRED.value)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[00:00, 24:00) WIB of `day`, in UTC."""
    start = datetime.combine(day, time(0), tzinfo=WIB).astimezone(UTC)
    return start, start + timedelta(days=1)


def wib_day(at: datetime) -> date:
    return at.astimezone(WIB).date()


def _kwh(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


@dataclass(frozen=True, slots=True)
class _Reading:
    at: datetime
    total: Decimal | None
    credit: Decimal | None
    received_at: datetime


async def _last_readings(
    conn: AsyncConnection, meters: Sequence[str], start: datetime, end: datetime, cut: datetime
) -> dict[str, _Reading]:
    ranked = (
        select(
            _tr.c.meter_number,
            _READING_AT.label("at"),
            _tr.c.total_kwh,
            _tr.c.credit_kwh,
            _tr.c.received_at,
            func.row_number()
            .over(partition_by=_tr.c.meter_number, order_by=(_READING_AT.desc(), _tr.c.id.desc()))
            .label("rn"),
        )
        .where(
            _tr.c.meter_number.in_(meters),
            start <= _READING_AT,
            end > _READING_AT,
            _tr.c.received_at <= cut,
        )
        .subquery()
    )
    rows = await conn.execute(select(ranked).where(ranked.c.rn == 1))
    return {
        r.meter_number: _Reading(r.at, _kwh(r.total_kwh), _kwh(r.credit_kwh), r.received_at)
        for r in rows
    }


async def _alarms(
    conn: AsyncConnection, meters: Sequence[str], start: datetime, end: datetime, cut: datetime
) -> dict[str, list[str]]:
    rows = await conn.execute(
        select(_al.c.meter_number, _al.c.code)
        .where(
            _al.c.meter_number.in_(meters),
            start <= _ALARM_AT,
            end > _ALARM_AT,
            _al.c.received_at <= cut,
        )
        .order_by(_al.c.meter_number, _ALARM_AT, _al.c.id)
    )
    found: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        found[r.meter_number].append(r.code)
    return found


async def _sms(
    conn: AsyncConnection, meters: Sequence[str], start: datetime, end: datetime, cut: datetime
) -> dict[str, tuple[int, int, int]]:
    inbound = _msg.c.direction == Direction.IN.value
    outbound = _msg.c.direction == Direction.OUT.value
    rows = await conn.execute(
        select(
            _msg.c.meter_number,
            func.sum(case((inbound, 1), else_=0)).label("sms_in"),
            func.sum(case((outbound, 1), else_=0)).label("sms_out"),
            func.sum(case((and_(outbound, _msg.c.state.in_(_FAILED)), 1), else_=0)).label(
                "sms_failed"
            ),
        )
        .where(
            _msg.c.meter_number.in_(meters),
            _msg.c.created_at >= start,
            _msg.c.created_at < end,
            _msg.c.created_at <= cut,
        )
        .group_by(_msg.c.meter_number)
    )
    return {r.meter_number: (int(r.sms_in), int(r.sms_out), int(r.sms_failed)) for r in rows}


async def _last_contact(
    conn: AsyncConnection, meters: Sequence[str], end: datetime, cut: datetime
) -> dict[str, datetime]:
    rows = await conn.execute(
        select(_msg.c.meter_number, func.max(_msg.c.created_at).label("at"))
        .where(
            _msg.c.meter_number.in_(meters),
            _msg.c.direction == Direction.IN.value,
            _msg.c.created_at < end,
            _msg.c.created_at <= cut,
        )
        .group_by(_msg.c.meter_number)
    )
    return {r.meter_number: r.at for r in rows}


async def _records_for(
    conn: AsyncConnection,
    day: date,
    meters: Sequence[tuple[str, str]],
    cut: datetime,
    correction_of: date | None,
) -> list[DailyRecord]:
    """The records of `meters` ((meter, customer) in meter order) for `day`, as of `cut`."""
    numbers = [meter for meter, _ in meters]
    start, end = day_bounds(day)
    last = await _last_readings(conn, numbers, start, end, cut)
    previous = await _last_readings(conn, numbers, start - timedelta(days=1), start, cut)
    alarms = await _alarms(conn, numbers, start, end, cut)
    sms = await _sms(conn, numbers, start, end, cut)
    contact = await _last_contact(conn, numbers, end, cut)
    records = []
    for meter, customer in meters:
        reading = last.get(meter)
        before = previous.get(meter)
        consumption = None
        if reading and before and reading.total is not None and before.total is not None:
            consumption = reading.total - before.total
            if consumption < 0:
                consumption = None
        heard = [t for t in (contact.get(meter), reading and reading.received_at) if t]
        sms_in, sms_out, sms_failed = sms.get(meter, (0, 0, 0))
        records.append(
            DailyRecord(
                day=day,
                meter_number=meter,
                customer_id=customer,
                last_reading_at=reading.at if reading else None,
                last_reading_kwh=reading.total if reading else None,
                consumption_kwh=consumption,
                remaining_credit_kwh=reading.credit if reading else None,
                alarms=tuple(alarms.get(meter, ())),
                sms_in=sms_in,
                sms_out=sms_out,
                sms_failed=sms_failed,
                last_contact_at=max(heard) if heard else None,
                correction_of=correction_of,
            )
        )
    return records


async def daily_records(
    store: Store, day: date, *, cut: datetime, chunk_size: int = DEFAULT_CHUNK
) -> AsyncIterator[DailyRecord]:
    """Every meter's record for `day` (WIB) as of `cut`, in meter-number order."""
    start, end = day_bounds(day)
    after = ""
    while True:
        async with store.read() as conn:
            chunk = [
                (r.meter_number, r.customer_id)
                for r in await conn.execute(
                    select(_m.c.meter_number, _m.c.customer_id)
                    .where(
                        _m.c.meter_number > after,
                        _m.c.created_at < end,
                        _m.c.created_at <= cut,
                        # A meter removed before the day began has nothing to report.
                        or_(_m.c.state != "removed", _m.c.state_at >= start),
                    )
                    .order_by(_m.c.meter_number)
                    .limit(chunk_size)
                )
            ]
            if not chunk:
                return
            records = await _records_for(conn, day, chunk, cut, None)
        for record in records:
            yield record
        if len(chunk) < chunk_size:
            return
        after = chunk[-1][0]


async def correction_records(
    store: Store,
    day: date,
    *,
    since: datetime,
    cut: datetime,
    chunk_size: int = DEFAULT_CHUNK,
) -> AsyncIterator[DailyRecord]:
    """Rows correcting earlier, already-cut days: readings of a day before `day` that
    arrived in (since, cut] after that day's own cut. Ordered by (day, meter)."""
    start, _ = day_bounds(day)
    async with store.read() as conn:
        cuts = {
            r.day: r.generated_at
            for r in await conn.execute(
                select(ap2t_batches.c.day, ap2t_batches.c.generated_at).where(
                    ap2t_batches.c.day < day
                )
            )
        }
        late = await conn.stream(
            select(_tr.c.meter_number, _READING_AT.label("at"), _tr.c.received_at)
            .where(_tr.c.received_at > since, _tr.c.received_at <= cut, start > _READING_AT)
            .order_by(_tr.c.meter_number)
        )
        # Only the affected (day, meter) pairs are held: late data is the exception.
        affected: dict[date, set[str]] = defaultdict(set)
        async for r in late:
            reading_day = wib_day(r.at)
            day_cut = cuts.get(reading_day)
            if day_cut is not None and r.received_at > day_cut:
                affected[reading_day].add(r.meter_number)
    for corrected in sorted(affected):
        numbers = sorted(affected[corrected])
        for index in range(0, len(numbers), chunk_size):
            part = numbers[index : index + chunk_size]
            async with store.read() as conn:
                owners = dict(
                    (
                        await conn.execute(
                            select(_m.c.meter_number, _m.c.customer_id).where(
                                _m.c.meter_number.in_(part)
                            )
                        )
                    ).all()
                )
                known = [(meter, owners[meter]) for meter in part if meter in owners]
                records = await _records_for(conn, corrected, known, cut, corrected)
            for record in records:
                yield record


async def batch_records(
    store: Store,
    day: date,
    *,
    cut: datetime,
    since: datetime | None,
    chunk_size: int = DEFAULT_CHUNK,
) -> AsyncIterator[DailyRecord]:
    """The whole batch in export order: the day's rows, then corrections (if `since`)."""
    async for record in daily_records(store, day, cut=cut, chunk_size=chunk_size):
        yield record
    if since is not None:
        async for record in correction_records(
            store, day, since=since, cut=cut, chunk_size=chunk_size
        ):
            yield record


@dataclass(frozen=True, slots=True)
class ExportedBatch:
    csv_path: Path
    manifest: Manifest
    generated_at: datetime


def describe(delivery: Delivery) -> str:
    if isinstance(delivery, HttpUpload):
        return f"http:{delivery.url}"
    if isinstance(delivery, DirectoryDrop):
        return f"dir:{delivery.directory}"
    return type(delivery).__name__


@dataclass(slots=True)
class Ap2tJob:
    """Exports a day's batch, delivers it until acknowledged, and watches the 24 h SLA."""

    store: Store
    out_dir: Path
    delivery: Delivery | None = None
    clock: Callable[[], datetime] = utcnow
    chunk_size: int = DEFAULT_CHUNK
    interval: timedelta = field(default=timedelta(hours=24))

    @classmethod
    def from_settings(
        cls, store: Store, settings: Settings, clock: Callable[[], datetime] = utcnow
    ) -> Ap2tJob:
        conf = settings.ap2t
        out_dir = conf.out_dir if conf.out_dir.is_absolute() else settings.data_dir / conf.out_dir
        delivery: Delivery | None = None
        if conf.url is not None and conf.token is not None:
            delivery = HttpUpload(conf.url, conf.token.get_secret_value())
        elif conf.directory is not None:
            delivery = DirectoryDrop(conf.directory)
        return cls(
            store,
            out_dir,
            delivery,
            clock,
            interval=timedelta(hours=settings.sla.ap2t_batch_interval_h),
        )

    async def meter_count(self, day: date) -> int:
        """How many regular rows the day's batch will have (for a progress bar)."""
        _, end = day_bounds(day)
        async with self.store.read() as conn:
            return int(
                await conn.scalar(select(func.count()).select_from(_m).where(_m.c.created_at < end))
                or 0
            )

    async def export(
        self, day: date, progress: Callable[[int], None] | None = None
    ) -> ExportedBatch:
        """Write `ap2t-YYYYMMDD.csv` + manifest; the first export fixes the data cut."""
        async with self.store.read() as conn:
            known = (
                await conn.execute(select(ap2t_batches).where(ap2t_batches.c.day == day))
            ).first()
            since = await conn.scalar(
                select(func.max(ap2t_batches.c.generated_at)).where(ap2t_batches.c.day < day)
            )
        cut = known.generated_at if known is not None else self.clock()
        manifest = await export_batch(
            day,
            batch_records(self.store, day, cut=cut, since=since, chunk_size=self.chunk_size),
            self.out_dir,
            progress,
        )
        values: dict[str, Any] = {
            "file": manifest.file,
            "sha256": manifest.sha256,
            "record_count": manifest.record_count,
            "corrections": manifest.corrections,
        }
        async with self.store.begin() as conn:
            if known is None:
                await conn.execute(insert(ap2t_batches).values(day=day, generated_at=cut, **values))
            elif known.sha256 != manifest.sha256:
                # The data behind the cut changed (e.g. purged): what AP2T acknowledged
                # is no longer this file.
                log.warning("AP2T batch %s changed on re-export (was %s)", day, known.sha256)
                await conn.execute(
                    update(ap2t_batches)
                    .where(ap2t_batches.c.day == day)
                    .values(acknowledged_at=None, receipt=None, delivery=None, **values)
                )
        return ExportedBatch(self.out_dir / manifest.file, manifest, cut)

    async def deliver(
        self, day: date, *, attempts: int = 10, first_delay: float = 1.0
    ) -> Acknowledgement:
        """Export (idempotent) and hand the batch to AP2T until it is acknowledged."""
        if self.delivery is None:
            raise ValueError("no AP2T delivery configured: set ap2t.url + token or ap2t.directory")
        batch = await self.export(day)
        ack = await deliver_until_acknowledged(
            self.delivery,
            batch.csv_path,
            batch.manifest,
            attempts=attempts,
            first_delay=first_delay,
        )
        async with self.store.begin() as conn:
            await conn.execute(
                update(ap2t_batches)
                .where(ap2t_batches.c.day == day, ap2t_batches.c.sha256 == ack.sha256)
                .values(
                    acknowledged_at=self.clock(),
                    receipt=ack.receipt,
                    delivery=describe(self.delivery)[:256],
                )
            )
        log.info("AP2T batch %s acknowledged: %s", batch_name(day), ack.receipt)
        return ack

    async def run(self, day: date) -> Acknowledgement | None:
        """`deliver` on one node of the cluster at a time; None when another node has it."""
        async with run_once(self.store, LOCK_NAME) as acquired:
            if not acquired:
                log.info("AP2T batch %s: another node is on it", day)
                return None
            return await self.deliver(day)

    async def overdue(self, now: datetime) -> bool:
        """True (and an sla_events row plus a warning) when AP2T's last acknowledged batch
        is older than the interval (at most 24 h, PLN 0066 art. 4(2))."""
        async with self.store.read() as conn:
            last = (
                await conn.execute(
                    select(ap2t_batches.c.day, ap2t_batches.c.acknowledged_at)
                    .where(ap2t_batches.c.acknowledged_at.is_not(None))
                    .order_by(ap2t_batches.c.acknowledged_at.desc())
                    .limit(1)
                )
            ).first()
        last_at: datetime | None = None if last is None else last.acknowledged_at
        late = batch_overdue(last_at, now) or (
            last_at is not None and now - last_at > self.interval
        )
        if not late:
            return False
        age_ms = None if last_at is None else round((now - last_at).total_seconds() * 1000)
        async with self.store.begin() as conn:
            await conn.execute(
                insert(schema.sla_events).values(
                    metric=SLA_METRIC,
                    subject_type="ap2t_batch",
                    subject_id=None if last is None else last.day.isoformat(),
                    started_at=last_at or now,
                    ended_at=None,
                    duration_ms=age_ms,
                    target_ms=round(self.interval.total_seconds() * 1000),
                    met=False,
                    recorded_at=now,
                )
            )
        log.warning(
            "AP2T batch overdue: last acknowledged %s",
            "never" if last_at is None else last_at.isoformat(),
        )
        return True


@dataclass(slots=True)
class StoreAp2tHistory:
    """The helpdesk's AP2T page: the batches recorded in `ap2t_batches`, newest first."""

    store: Store

    async def batches(self, limit: int) -> Sequence[Ap2tBatch]:
        b = ap2t_batches
        async with self.store.read() as conn:
            rows = await conn.execute(select(b).order_by(b.c.day.desc()).limit(limit))
            return [
                Ap2tBatch(
                    batch_id=str(row.file),
                    day=row.day.isoformat(),
                    records=int(row.record_count),
                    state="acknowledged" if row.acknowledged_at is not None else "exported",
                    sent_at=row.generated_at,
                    acknowledged_at=row.acknowledged_at,
                    detail=row.receipt,
                )
                for row in rows
            ]
