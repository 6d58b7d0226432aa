"""Retention purge: deletes what is older than the configured retention, never sooner than
the legal minimums (settings.RetentionPolicy refuses anything below them).

- usage records (5/2021 art. 222(m)): messages with their states, outbox and cost-ledger
  rows, telemetry readings and alarms older than now - usage_records_months;
- customer data (art. 168): phones and PIN hashes, and the name, of customers inactive
  since before now - customer_data_months_after_inactive;
- SLA measurements (art. 222(m)): sla_events and ap2t_batches of financial years (=
  calendar years, WIB) before this year - sla_financial_years_after, i.e. kept through the
  next financial year;
- complaints (QoS art. 4(6)): resolved/closed helpdesk items closed before
  now - complaint_months (open items are never purged).

Before the message log goes, the SLA measurements built on it are written to sla_events
(`purge(..., sla_targets=...)`), so they survive for the SLA retention.
Transactions, the registry of meters and the audit log are not in the table and are kept.
A customer row that a meter or a transaction still references is anonymised rather than
deleted. Deletion runs in bounded batches, each its own database transaction, so a purge
of millions of rows never holds long locks; `run_once` keeps it to one node at a time.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Column, ColumnElement, Table, and_, delete, exists, func, or_, select, update

from operator_data.settings import RetentionPolicy, SlaTargets
from operator_data.sla.events import record_events
from operator_data.store import Store, schema
from operator_data.store.locks import run_once
from operator_data.store.reporting_schema import ap2t_batches

log = logging.getLogger(__name__)

WIB = ZoneInfo("Asia/Jakarta")
LOCK_NAME = "retention.purge"
ANONYMISED_NAME = "[dihapus]"  # what a purged customer's name becomes


def months_before(now: datetime, months: int) -> datetime:
    """The same wall-clock instant `months` calendar months earlier (day clamped to the
    month's end, so 31 May - 3 months = 28/29 Feb)."""
    year, month0 = divmod(now.year * 12 + now.month - 1 - months, 12)
    last_day = calendar.monthrange(year, month0 + 1)[1]
    return now.replace(year=year, month=month0 + 1, day=min(now.day, last_day))


@dataclass(frozen=True, slots=True)
class Cutoffs:
    usage_records: datetime
    inactive_customers: datetime
    sla: datetime
    complaints: datetime

    @classmethod
    def compute(cls, policy: RetentionPolicy, now: datetime) -> Cutoffs:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        # Financial year = calendar year (Indonesia); years are WIB years.
        year = now.astimezone(WIB).year - policy.sla_financial_years_after
        sla = datetime.combine(datetime(year, 1, 1).date(), time(0), tzinfo=WIB).astimezone(UTC)
        return cls(
            usage_records=months_before(now, policy.usage_records_months),
            inactive_customers=months_before(now, policy.customer_data_months_after_inactive),
            sla=sla,
            complaints=months_before(now, policy.complaint_months),
        )


@dataclass(frozen=True, slots=True)
class Target:
    """One purgeable table: its key, which rows are expired, and rows that reference it."""

    name: str
    table: Table
    key: Column[Any]
    expired: Callable[[Cutoffs], ColumnElement[bool]]
    dependents: tuple[tuple[str, Column[Any]], ...] = ()


_m, _h = schema.messages, schema.helpdesk_items
TARGETS: tuple[Target, ...] = (
    Target(
        "messages",
        _m,
        _m.c.id,
        lambda c: _m.c.created_at < c.usage_records,
        (
            ("message_states", schema.message_states.c.message_id),
            ("outbox", schema.outbox.c.message_id),
            ("cost_ledger", schema.cost_ledger.c.message_id),
        ),
    ),
    Target(
        "telemetry_readings",
        schema.telemetry_readings,
        schema.telemetry_readings.c.id,
        lambda c: schema.telemetry_readings.c.received_at < c.usage_records,
    ),
    Target(
        "alarms",
        schema.alarms,
        schema.alarms.c.id,
        lambda c: schema.alarms.c.received_at < c.usage_records,
    ),
    Target(
        "helpdesk_items",
        _h,
        _h.c.id,
        # Open items are never purged, however old.
        lambda c: and_(
            _h.c.state.in_(("resolved", "closed")),
            func.coalesce(_h.c.closed_at, _h.c.resolved_at) < c.complaints,
        ),
    ),
    Target(
        "sla_events",
        schema.sla_events,
        schema.sla_events.c.id,
        lambda c: schema.sla_events.c.started_at < c.sla,
    ),
    Target(
        "ap2t_batches",
        ap2t_batches,
        ap2t_batches.c.day,
        lambda c: ap2t_batches.c.generated_at < c.sla,
    ),
)


@dataclass(frozen=True, slots=True)
class PurgeResult:
    ran: bool  # False: another node holds the lock; nothing was done
    dry_run: bool
    cutoffs: Cutoffs
    counts: dict[str, int] = field(default_factory=dict)  # rows deleted (or, dry: would be)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ran": self.ran,
            "dry_run": self.dry_run,
            "cutoffs": {
                name: getattr(self.cutoffs, name).isoformat()
                for name in ("usage_records", "inactive_customers", "sla", "complaints")
            },
            "counts": dict(self.counts),
        }


async def _count(store: Store, target: Target, cut: Cutoffs, counts: dict[str, int]) -> None:
    expired = select(target.key).where(target.expired(cut))
    async with store.read() as conn:
        counts[target.name] = counts.get(target.name, 0) + int(
            await conn.scalar(select(func.count()).where(target.key.in_(expired))) or 0
        )
        for name, column in target.dependents:
            n = await conn.scalar(select(func.count()).where(column.in_(expired)))
            counts[name] = counts.get(name, 0) + int(n or 0)


async def _delete(
    store: Store, target: Target, cut: Cutoffs, batch_size: int, counts: dict[str, int]
) -> None:
    for name in (target.name, *(name for name, _ in target.dependents)):
        counts.setdefault(name, 0)
    while True:
        async with store.begin() as conn:
            keys = list(
                await conn.scalars(
                    select(target.key)
                    .where(target.expired(cut))
                    .order_by(target.key)
                    .limit(batch_size)
                )
            )
            if not keys:
                return
            for name, column in target.dependents:
                gone = await conn.execute(delete(column.table).where(column.in_(keys)))
                counts[name] = counts.get(name, 0) + gone.rowcount
            gone = await conn.execute(delete(target.table).where(target.key.in_(keys)))
            counts[target.name] = counts.get(target.name, 0) + gone.rowcount
        if len(keys) < batch_size:
            return


def _inactive(cut: Cutoffs) -> ColumnElement[bool]:
    c = schema.customers
    return and_(c.c.status == "inactive", c.c.inactive_since < cut.inactive_customers)


def _referenced() -> ColumnElement[bool]:
    c = schema.customers
    return or_(
        exists().where(schema.meters.c.customer_id == c.c.customer_id),
        exists().where(schema.transactions.c.customer_id == c.c.customer_id),
    )


async def _customers(
    store: Store,
    cut: Cutoffs,
    batch_size: int,
    dry_run: bool,
    now: datetime,
    counts: dict[str, int],
) -> None:
    c, phones = schema.customers, schema.customer_phones
    expired_ids = select(c.c.customer_id).where(_inactive(cut))
    if dry_run:
        async with store.read() as conn:
            counts["customer_phones"] = int(
                await conn.scalar(select(func.count()).where(phones.c.customer_id.in_(expired_ids)))
                or 0
            )
            counts["customers"] = int(
                await conn.scalar(select(func.count()).where(_inactive(cut), ~_referenced())) or 0
            )
            counts["customers_anonymised"] = int(
                await conn.scalar(
                    select(func.count()).where(
                        _inactive(cut), _referenced(), c.c.name != ANONYMISED_NAME
                    )
                )
                or 0
            )
        return
    for name in ("customer_phones", "customers", "customers_anonymised"):
        counts.setdefault(name, 0)
    while True:
        async with store.begin() as conn:
            ids = list(
                await conn.scalars(
                    select(c.c.customer_id)
                    .where(
                        _inactive(cut),
                        or_(
                            c.c.name != ANONYMISED_NAME,
                            ~_referenced(),
                            exists().where(phones.c.customer_id == c.c.customer_id),
                        ),
                    )
                    .order_by(c.c.customer_id)
                    .limit(batch_size)
                )
            )
            if not ids:
                return
            gone = await conn.execute(delete(phones).where(phones.c.customer_id.in_(ids)))
            counts["customer_phones"] += gone.rowcount
            gone = await conn.execute(delete(c).where(c.c.customer_id.in_(ids), ~_referenced()))
            counts["customers"] += gone.rowcount
            kept = await conn.execute(
                update(c)
                .where(c.c.customer_id.in_(ids), c.c.name != ANONYMISED_NAME)
                .values(name=ANONYMISED_NAME, updated_at=now)
            )
            counts["customers_anonymised"] += kept.rowcount
        if len(ids) < batch_size:
            return


async def _keep_sla(store: Store, targets: SlaTargets, cut: Cutoffs, now: datetime) -> int:
    """Record the SLA measurements whose message histories the purge will delete."""
    async with store.read() as conn:
        oldest = await conn.scalar(
            select(func.min(_m.c.created_at)).where(_m.c.created_at < cut.usage_records)
        )
    if oldest is None:
        return 0
    # A token is issued shortly before its SMS is created; a day of margin covers it.
    return await record_events(
        store, targets, oldest - timedelta(days=1), cut.usage_records, as_of=now
    )


async def purge(
    store: Store,
    policy: RetentionPolicy,
    *,
    now: datetime,
    dry_run: bool = False,
    batch_size: int = 1000,
    sla_targets: SlaTargets | None = None,
) -> PurgeResult:
    """Delete expired rows (or only count them, `dry_run`); skip if another node is purging.

    With `sla_targets`, the SLA measurements of what is about to go are first written to
    sla_events (which are kept through the next financial year)."""
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    cut = Cutoffs.compute(policy, now)
    async with run_once(store, LOCK_NAME) as acquired:
        if not acquired:
            log.info("retention purge skipped: another node holds the lock")
            return PurgeResult(ran=False, dry_run=dry_run, cutoffs=cut)
        counts: dict[str, int] = {}
        if sla_targets is not None and not dry_run:
            counts["sla_events_recorded"] = await _keep_sla(store, sla_targets, cut, now)
        for target in TARGETS:
            if dry_run:
                await _count(store, target, cut, counts)
            else:
                await _delete(store, target, cut, batch_size, counts)
        await _customers(store, cut, batch_size, dry_run, now, counts)
        log.info("retention purge%s: %s", " (dry run)" if dry_run else "", counts)
        return PurgeResult(ran=True, dry_run=dry_run, cutoffs=cut, counts=counts)
