"""`pintar ap2t`: export the daily AP2T batch from the database, deliver it."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from operator_data.ap2t_source import Ap2tJob
from operator_data.cli.db_cmd import ConfigOption, settings_or_fail
from operator_data.cli.output import emit, fail, progress, progress_shown
from operator_data.cli.sla_cmd import parse_day
from operator_data.settings import Settings
from operator_data.store import Store
from p2apst_adapter.ap2t.delivery import DeliveryRejected

app = typer.Typer(help="The daily AP2T batch (non-transaction data).", no_args_is_help=True)

DateOption = Annotated[str, typer.Option("--date", help="WIB calendar day, YYYY-MM-DD.")]


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
        return asdict(batch.manifest)


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
) -> None:
    """Write ap2t-YYYYMMDD.csv and its manifest; print the manifest."""
    day = parse_day("--date", date_)
    emit(asyncio.run(_export(settings_or_fail(config), day, out)))


@app.command("deliver")
def deliver(date_: DateOption, config: ConfigOption = None) -> None:
    """Export the day's batch and hand it to AP2T until acknowledged."""
    day = parse_day("--date", date_)
    settings = settings_or_fail(config)
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
        return {"checked_at": now.isoformat(), "overdue": await job.overdue(now)}


@app.command("overdue")
def overdue(config: ConfigOption = None) -> None:
    """Is AP2T's last acknowledged batch older than the interval? (Records an SLA event.)"""
    emit(asyncio.run(_overdue(settings_or_fail(config))))
