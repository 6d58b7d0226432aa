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
of the day's first export), so re-exporting a day gives the identical file; if the data
behind the cut changed anyway, the re-export is a correction revision of the day (its own
row, file and delivery state) and the acknowledged original stays on record. Readings for a
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
from p2apst_adapter.ap2t.export import Manifest, batch_name, stage_batch
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
    generated_at: datetime  # the day's data cut
    created: bool = False  # this export wrote a new row (the day's first, or a revision)
    acknowledged_at: datetime | None = None
    receipt: str | None = None

    @property
    def revision(self) -> int:
        return self.manifest.revision


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One row of `ap2t_batches`: a day's revision and its delivery state."""

    day: date
    revision: int
    supersedes: int | None
    file: str
    sha256: str
    record_count: int
    corrections: int
    generated_at: datetime
    exported_at: datetime | None
    acknowledged_at: datetime | None
    receipt: str | None
    delivery: str | None

    @property
    def state(self) -> str:
        return "acknowledged" if self.acknowledged_at is not None else "pending"

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "revision": self.revision,
            "supersedes": self.supersedes,
            "file": self.file,
            "state": self.state,
            "record_count": self.record_count,
            "corrections": self.corrections,
            "sha256": self.sha256,
            "generated_at": self.generated_at,
            "exported_at": self.exported_at,
            "acknowledged_at": self.acknowledged_at,
            "receipt": self.receipt,
            "delivery": self.delivery,
        }


def _batch_record(row: Any) -> BatchRecord:
    return BatchRecord(
        day=row.day,
        revision=int(row.revision),
        supersedes=row.supersedes,
        file=str(row.file),
        sha256=str(row.sha256),
        record_count=int(row.record_count),
        corrections=int(row.corrections),
        generated_at=row.generated_at,
        exported_at=row.exported_at,
        acknowledged_at=row.acknowledged_at,
        receipt=row.receipt,
        delivery=row.delivery,
    )


async def batch_history(
    store: Store,
    *,
    since: date | None = None,
    until: date | None = None,
    pending_only: bool = False,
    limit: int = 100,
) -> list[BatchRecord]:
    """The recorded batches, newest day first and, within a day, newest revision first."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    b = ap2t_batches
    query = select(b).order_by(b.c.day.desc(), b.c.revision.desc()).limit(limit)
    if since is not None:
        query = query.where(b.c.day >= since)
    if until is not None:
        query = query.where(b.c.day < until)
    if pending_only:
        query = query.where(b.c.acknowledged_at.is_(None))
    async with store.read() as conn:
        return [_batch_record(row) for row in await conn.execute(query)]


async def last_acknowledged(store: Store) -> BatchRecord | None:
    """The batch (any revision) AP2T acknowledged last."""
    b = ap2t_batches
    async with store.read() as conn:
        row = (
            await conn.execute(
                select(b)
                .where(b.c.acknowledged_at.is_not(None))
                .order_by(b.c.acknowledged_at.desc(), b.c.day.desc(), b.c.revision.desc())
                .limit(1)
            )
        ).first()
    return None if row is None else _batch_record(row)


def _first_acknowledgements() -> Any:
    """Per day, when AP2T first had its data (the first acknowledged revision): what the
    daily duty is measured by. A correction acknowledged later is no new day's data."""
    b = ap2t_batches
    return (
        select(b.c.day, func.min(b.c.acknowledged_at).label("acknowledged_at"))
        .where(b.c.acknowledged_at.is_not(None))
        .group_by(b.c.day)
        .subquery()
    )


async def last_daily_acknowledgement(store: Store) -> tuple[date, datetime] | None:
    """The latest day AP2T has, and when it first had it (`_first_acknowledgements`): what
    `Ap2tJob.overdue` and the `pintar_ap2t_*` metrics measure. A read only; `ap2t_batches`
    holds one row per day and revision."""
    first = _first_acknowledgements()
    async with store.read() as conn:
        last = (
            await conn.execute(
                select(first.c.day, first.c.acknowledged_at)
                .order_by(first.c.acknowledged_at.desc())
                .limit(1)
            )
        ).first()
    return None if last is None else (last.day, last.acknowledged_at)


def ap2t_late(last_at: datetime | None, now: datetime, interval: timedelta) -> bool:
    """AP2T has had no new day acknowledged for longer than `interval`, or for over 24 h
    whatever the interval (PLN 0066 art. 4(2), `batch_overdue`); none ever is late too."""
    return batch_overdue(last_at, now) or (last_at is not None and now - last_at > interval)


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
        """Write the day's batch + manifest; the first export fixes the data cut.

        Unchanged content is a no-op: the latest revision stays as it is, delivery state
        included (its file is rewritten byte for byte). Changed content (the data behind
        the cut changed: a purge, a meter moved to another customer) is a correction: a
        new revision with its own file and delivery state; the earlier ones stay on record.
        """
        b = ap2t_batches
        async with self.store.read() as conn:
            latest = (
                await conn.execute(
                    select(b).where(b.c.day == day).order_by(b.c.revision.desc()).limit(1)
                )
            ).first()
            since = await conn.scalar(select(func.max(b.c.generated_at)).where(b.c.day < day))
        cut = latest.generated_at if latest is not None else self.clock()
        staged = await stage_batch(
            day,
            batch_records(self.store, day, cut=cut, since=since, chunk_size=self.chunk_size),
            self.out_dir,
            progress,
        )
        try:
            if latest is not None and latest.sha256 == staged.sha256:
                manifest = staged.publish(int(latest.revision), latest.supersedes)
                return ExportedBatch(
                    self.out_dir / manifest.file,
                    manifest,
                    cut,
                    acknowledged_at=latest.acknowledged_at,
                    receipt=latest.receipt,
                )
            revision = 1 if latest is None else int(latest.revision) + 1
            supersedes = None if latest is None else int(latest.revision)
            async with self.store.begin() as conn:
                # The row first, in the same transaction as the files' publication: if the
                # revision is taken (another node exported the day at the same moment) the
                # insert fails and the files stay unpublished.
                await conn.execute(
                    insert(b).values(
                        day=day,
                        revision=revision,
                        supersedes=supersedes,
                        generated_at=cut,
                        exported_at=cut if latest is None else self.clock(),
                        file=f"{batch_name(day, revision)}.csv",
                        sha256=staged.sha256,
                        record_count=staged.record_count,
                        corrections=staged.corrections,
                    )
                )
                manifest = staged.publish(revision, supersedes)
        except BaseException:
            staged.discard()
            raise
        if latest is not None:
            log.warning(
                "AP2T batch %s changed since revision %d (%s): correction revision %d (%s)",
                day,
                latest.revision,
                latest.sha256,
                revision,
                manifest.sha256,
            )
        return ExportedBatch(self.out_dir / manifest.file, manifest, cut, created=True)

    async def deliver(
        self, day: date, *, attempts: int = 10, first_delay: float = 1.0
    ) -> Acknowledgement:
        """Export (idempotent) and hand the day's latest revision to AP2T until it is
        acknowledged. A revision already acknowledged is not sent again: its recorded
        acknowledgement is returned, so the first receipt and time are never overwritten."""
        if self.delivery is None:
            raise ValueError("no AP2T delivery configured: set ap2t.url + token or ap2t.directory")
        batch = await self.export(day)
        if batch.acknowledged_at is not None and batch.receipt is not None:
            log.info("AP2T batch %s already acknowledged: %s", batch.manifest.file, batch.receipt)
            return Acknowledgement(batch.manifest.date, batch.manifest.sha256, batch.receipt)
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
                .where(
                    ap2t_batches.c.day == day,
                    ap2t_batches.c.revision == batch.revision,
                    ap2t_batches.c.sha256 == ack.sha256,
                    ap2t_batches.c.acknowledged_at.is_(None),
                )
                .values(
                    acknowledged_at=self.clock(),
                    receipt=ack.receipt,
                    delivery=describe(self.delivery)[:256],
                )
            )
        log.info("AP2T batch %s acknowledged: %s", batch.manifest.file, ack.receipt)
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
        is older than the interval (at most 24 h, PLN 0066 art. 4(2)). A day counts from
        its first acknowledged revision: a correction acknowledged later is no new data."""
        last = await last_daily_acknowledgement(self.store)
        last_at: datetime | None = None if last is None else last[1]
        if not ap2t_late(last_at, now, self.interval):
            return False
        age_ms = None if last_at is None else round((now - last_at).total_seconds() * 1000)
        async with self.store.begin() as conn:
            await conn.execute(
                insert(schema.sla_events).values(
                    metric=SLA_METRIC,
                    subject_type="ap2t_batch",
                    subject_id=None if last is None else last[0].isoformat(),
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
            rows = await conn.execute(
                select(b).order_by(b.c.day.desc(), b.c.revision.desc()).limit(limit)
            )
            # A revision's file name says it (ap2t-YYYYMMDD-r2.csv): the page shows each.
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
