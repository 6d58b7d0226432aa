"""`pintar ap2t`: export the daily AP2T batch from the database, deliver it."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from operator_data.ap2t_source import Ap2tJob, BatchRecord, batch_history, last_acknowledged
from operator_data.cli.output import (
    FormatOption,
    emit,
    emit_rows,
    fail,
    parse_format,
    progress,
    progress_shown,
)
from operator_data.cli.sla_cmd import parse_day
from operator_data.cli.store_options import ConfigOption, DataDirOption, settings_or_fail
from operator_data.settings import Settings
from operator_data.store import Store
from p2apst_adapter.ap2t.delivery import DeliveryRejected

app = typer.Typer(help="The daily AP2T batch (non-transaction data).", no_args_is_help=True)

DateOption = Annotated[str, typer.Option("--date", help="WIB calendar day, YYYY-MM-DD.")]


LIST_COLUMNS = (
    "day",
    "revision",
    "supersedes",
    "file",
    "state",
    "record_count",
    "corrections",
    "generated_at",
    "exported_at",
    "acknowledged_at",
    "receipt",
)


def _brief(batch: BatchRecord | None) -> dict[str, object] | None:
    if batch is None:
        return None
    return {
        "day": batch.day,
        "revision": batch.revision,
        "file": batch.file,
        "state": batch.state,
        "acknowledged_at": batch.acknowledged_at,
    }


async def _export(settings: Settings, day: date, out: Path | None) -> dict[str, object]:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        job = Ap2tJob.from_settings(store, settings)
        if out is not None:
            job.out_dir = out
        if not progress_shown():
            batch = await job.export(day)
        else:
            with progress(f"AP2T {day}", total=await job.meter_count(day)) as advance:
                batch = await job.export(day, advance)
        # The manifest, then the revision's delivery state: a re-export of an acknowledged,
        # unchanged day says so; a changed one is a new pending revision.
        return asdict(batch.manifest) | {
            "state": "acknowledged" if batch.acknowledged_at is not None else "pending",
            "new_revision": batch.created and batch.revision > 1,
            "acknowledged_at": batch.acknowledged_at,
            "receipt": batch.receipt,
        }


async def _deliver(settings: Settings, day: date) -> dict[str, object]:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        ack = await Ap2tJob.from_settings(store, settings).run(day)
        if ack is None:
            return {"date": day.isoformat(), "skipped": "another node is delivering"}
        return asdict(ack)


@app.command("export")
def export(
    date_: DateOption,
    out: Annotated[Path | None, typer.Option("--out", help="Output directory.")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write ap2t-YYYYMMDD.csv and its manifest; print the manifest.

    Unchanged content keeps the day's batch and its delivery state; changed content is a
    correction revision (ap2t-YYYYMMDD-r2.csv, ...) to deliver, the original kept on record.
    """
    day = parse_day("--date", date_)
    emit(asyncio.run(_export(settings_or_fail(config, data_dir), day, out)))


@app.command("deliver")
def deliver(date_: DateOption, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Export the day's batch and hand it to AP2T until acknowledged."""
    day = parse_day("--date", date_)
    settings = settings_or_fail(config, data_dir)
    if settings.ap2t.url is None and settings.ap2t.directory is None:
        fail("no AP2T delivery configured: set ap2t.url + ap2t.token or ap2t.directory")
    try:
        emit(asyncio.run(_deliver(settings, day)))
    except DeliveryRejected as error:
        fail(str(error))


async def _overdue(settings: Settings) -> dict[str, object]:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        job = Ap2tJob.from_settings(store, settings)
        now = job.clock()
        late = await job.overdue(now)
        pending = await batch_history(store, pending_only=True, limit=100)
        return {
            "checked_at": now.isoformat(),
            "overdue": late,
            "last_acknowledged": _brief(await last_acknowledged(store)),
            # Revisions exported but not yet acknowledged (corrections included).
            "pending": [_brief(b) for b in pending],
        }


@app.command("overdue")
def overdue(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Is AP2T's last acknowledged batch older than the interval? (Records an SLA event.)"""
    emit(asyncio.run(_overdue(settings_or_fail(config, data_dir))))


async def _list(
    settings: Settings, since: date | None, until: date | None, pending: bool, limit: int
) -> list[dict[str, object]]:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        batches = await batch_history(
            store, since=since, until=until, pending_only=pending, limit=limit
        )
        return [b.as_dict() for b in batches]


@app.command("list")
def list_(
    from_: Annotated[
        str | None, typer.Option("--from", help="First WIB day, YYYY-MM-DD (inclusive).")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="WIB day to stop before, YYYY-MM-DD.")
    ] = None,
    pending: Annotated[
        bool, typer.Option("--pending", help="Only revisions not yet acknowledged.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", help="At most this many rows.")] = 100,
    format_: FormatOption = "json",
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List the recorded batches and their revisions, newest first, with delivery state."""
    chosen = parse_format(format_)
    since = None if from_ is None else parse_day("--from", from_)
    until = None if to is None else parse_day("--to", to)
    if since is not None and until is not None and until <= since:
        fail(f"--to {to} must be after --from {from_}")
    if limit < 1:
        fail(f"--limit {limit}: expected at least 1")
    rows = asyncio.run(_list(settings_or_fail(config, data_dir), since, until, pending, limit))
    emit_rows(rows, chosen, columns=LIST_COLUMNS, title="AP2T batches")
