"""The hub's duties: each a thin call into the code its `pintar` command runs.

| duty | does what `pintar ...` does | for |
|---|---|---|
| ap2t.deliver | `ap2t deliver --date D` (and days left behind) | the previous WIB day |
| ap2t.deadline | `ap2t overdue`, plus: is D acknowledged? if not, an alarm | the previous WIB day |
| retention.purge | `retention purge` | now |
| sla.report | `sla report --from D --to D+1` written as JSON + CSV | the previous WIB day |
| sms_costs.export | `sms-costs export --date D` | the previous WIB day |
| complaints.report | `complaints report --month M` written as JSON | D's month, to date |
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import date, datetime, timedelta
from pathlib import Path

from operator_data.ap2t_source import Ap2tJob, batch_history
from operator_data.duties import record
from operator_data.duties.clock import DutyClock
from operator_data.duties.runner import Action, Duty, DutyBusy, DutyRunner
from operator_data.duties.schedule import DailySchedule
from operator_data.retention import purge
from operator_data.settings import Settings
from operator_data.sla import sla_report
from operator_data.sms_costs.export import export_day
from operator_data.store import Store

log = logging.getLogger(__name__)

AP2T_DELIVER = "ap2t.deliver"
AP2T_DEADLINE = "ap2t.deadline"
RETENTION_PURGE = "retention.purge"
SLA_REPORT = "sla.report"
SMS_COSTS = "sms_costs.export"
COMPLAINTS_REPORT = "complaints.report"
AP2T_OVERDUE = "ap2t_overdue"  # helpdesk category of the deadline alarm


def _under(data_dir: Path, path: Path) -> Path:
    return path if path.is_absolute() else data_dir / path


async def ap2t_days(store: Store, day: date, lookback: int) -> list[date]:
    """`day`, and the days before it (at most `lookback` back) that have no batch after
    the newest one recorded (missed while no worker ran) or a revision not yet
    acknowledged (a correction): what the day's run delivers, oldest first."""
    first = day - timedelta(days=lookback)
    days = {day}
    recorded = await batch_history(store, until=day, limit=1)
    if recorded:  # only after a recorded day: a new installation does not go back a week
        after = max(recorded[0].day + timedelta(days=1), first)
        days.update(after + timedelta(days=n) for n in range((day - after).days))
    pending = await batch_history(store, since=first, until=day, pending_only=True)
    days.update(b.day for b in pending)
    return sorted(days)


def ap2t_deliver(settings: Settings, store: Store, clock: DutyClock) -> Action:
    async def action(day: date, now: datetime) -> record.Summary:
        job = Ap2tJob.from_settings(store, settings, clock=clock.now)
        if job.delivery is None:  # written for AP2T to fetch, or for a later delivery
            batch = await job.export(day)
            return {"file": batch.manifest.file, "delivered": False}
        receipts = []
        for each in await ap2t_days(store, day, settings.duties.ap2t_lookback_days):
            ack = await job.run(each)
            if ack is None:
                raise DutyBusy(f"AP2T batch {each}: another node is delivering")
            receipts.append(ack.receipt)
        return {"days": len(receipts), "receipt": receipts[-1], "delivered": True}

    return action


def ap2t_deadline(settings: Settings, store: Store, clock: DutyClock) -> Action:
    deadline = settings.duties.ap2t_deadline_at

    async def action(day: date, now: datetime) -> record.Summary:
        job = Ap2tJob.from_settings(store, settings, clock=clock.now)
        late_24h = await job.overdue(now)  # the 24 h measure: an sla_events row, a warning
        revisions = await batch_history(store, since=day, until=day + timedelta(days=1))
        acknowledged = any(b.acknowledged_at is not None for b in revisions)
        if acknowledged and not late_24h:
            return {"acknowledged": True, "late": False}
        problem = (
            f"AP2T batch for {day} not acknowledged by {deadline} WIB"
            if not acknowledged
            else f"AP2T has had no new day acknowledged for over {job.interval}"
        )
        log.error("%s (%d revision(s) exported); see docs/runbook.md", problem, len(revisions))
        from operator_data.hub.helpdesk import open_incident  # not at import: no cycle

        async with store.begin() as conn:
            item = await open_incident(
                conn,
                category=AP2T_OVERDUE,
                subject=problem,
                at=now,
                notes=(
                    "Non-transaction data must reach AP2T at least daily (0066 art. 4(2)). "
                    f"Deliver it by hand: pintar ap2t deliver --date {day}; "
                    "`pintar ap2t list --pending` shows what waits."
                ),
            )
        return {"acknowledged": acknowledged, "late": True, "incident": item}

    return action


def retention_purge(settings: Settings, store: Store, clock: DutyClock) -> Action:
    async def action(day: date, now: datetime) -> record.Summary:
        result = await purge(
            store,
            settings.retention,
            now=now,
            batch_size=settings.duties.retention_batch_size,
            sla_targets=settings.sla,
        )
        if not result.ran:
            raise DutyBusy("another node is purging")
        return {"rows": sum(result.counts.values())}

    return action


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def sla_daily(settings: Settings, store: Store, clock: DutyClock) -> Action:
    out_dir = _under(settings.data_dir, settings.duties.reports_dir)

    async def action(day: date, now: datetime) -> record.Summary:
        report = await sla_report(
            store, settings.sla, day, day + timedelta(days=1), group="day", as_of=now
        )
        stem = f"sla-{day:%Y%m%d}"
        document = json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"

        def write() -> None:
            out_dir.mkdir(parents=True, exist_ok=True)
            _write_atomically(out_dir / f"{stem}.csv", report.to_csv())
            _write_atomically(out_dir / f"{stem}.json", document)

        await asyncio.to_thread(write)
        return {"file": f"{stem}.json", "breaches": len(report.breaches)}

    return action


def sms_costs_daily(settings: Settings, store: Store, clock: DutyClock) -> Action:
    out_dir = _under(settings.data_dir, settings.duties.sms_costs_dir)

    async def action(day: date, now: datetime) -> record.Summary:
        manifest = await export_day(store, day, out_dir, now=now)
        return {"file": manifest.file, "records": manifest.record_count}

    return action


def complaints_monthly(settings: Settings, store: Store, clock: DutyClock) -> Action:
    """The complaint report of the month the previous day is in, kept per month (QoS
    rules: percentages kept at least 3 months): rewritten each day as the month goes on,
    and final on the next month's first day, when the month's last day is covered."""
    out_dir = _under(settings.data_dir, settings.duties.complaints_dir)

    async def action(day: date, now: datetime) -> record.Summary:
        from operator_data.complaints import calendar, figures  # only when it runs

        async with store.read() as conn:
            document = await figures.monthly(
                conn, day.year, day.month, calendar.default(), as_of=now
            )
        stem = f"complaints-{day:%Y%m}"
        text = json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"

        def write() -> None:
            out_dir.mkdir(parents=True, exist_ok=True)
            _write_atomically(out_dir / f"{stem}.json", text)

        await asyncio.to_thread(write)
        return {"file": f"{stem}.json"}

    return action


_FACTORIES = {
    AP2T_DELIVER: ("ap2t_deliver_at", ap2t_deliver),
    AP2T_DEADLINE: ("ap2t_deadline_at", ap2t_deadline),
    RETENTION_PURGE: ("retention_purge_at", retention_purge),
    SLA_REPORT: ("sla_report_at", sla_daily),
    SMS_COSTS: ("sms_costs_at", sms_costs_daily),
    COMPLAINTS_REPORT: ("complaints_report_at", complaints_monthly),
}


def hub_duties(settings: Settings, store: Store, clock: DutyClock) -> list[Duty]:
    """The duties switched on in `settings.duties`, each at its time."""
    duties = []
    for name, (field, factory) in _FACTORIES.items():
        at = settings.duties.time_of(field)
        if at is not None:
            action = factory(settings, store, clock)
            duties.append(Duty(name, DailySchedule(at), action))
    return duties


def hub_runner(settings: Settings, store: Store, clock: DutyClock, worker_id: str) -> DutyRunner:
    """The hub worker's runner (operator_data/hub/service.py enters it)."""
    conf = settings.duties
    return DutyRunner(
        store,
        hub_duties(settings, store, clock),
        clock=clock,
        worker_id=worker_id,
        retry_first_s=conf.retry_first_s,
        retry_max_s=conf.retry_max_s,
        alarm_after=conf.alarm_after,
    )
