"""`pintar sms-costs`: the SMS cost data the mobile operator bills customers by."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from operator_data.cli.output import emit, fail, progress
from operator_data.cli.sla_cmd import parse_day
from operator_data.cli.store_options import ConfigOption, DataDirOption, settings_or_fail
from operator_data.settings import Settings
from operator_data.sms_costs.export import DayNotOver, export_day
from operator_data.store import Store, utcnow

app = typer.Typer(
    help="SMS cost data for the mobile operator, per customer and flow (0066 art. 6(4)).",
    no_args_is_help=True,
)

# `--date` as `pintar ap2t` has it; `--day` is accepted too.
DateOption = Annotated[str, typer.Option("--date", "--day", help="WIB calendar day, YYYY-MM-DD.")]
DEFAULT_DIR = "sms-costs"  # under data_dir


async def _export(settings: Settings, day: date, out: Path) -> dict[str, object]:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        # The number of rows is not known before the end: a spinner with the count.
        with progress(f"SMS costs {day}") as advance:
            manifest = await export_day(store, day, out, now=utcnow(), progress=advance)
        return asdict(manifest)


@app.command("export")
def export(
    date_: DateOption,
    out: Annotated[
        Path | None,
        typer.Option("--out", help=f"Output directory (default: {DEFAULT_DIR} under data_dir)."),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write sms-costs-YYYYMMDD.csv and its manifest for a finished WIB day; print the
    manifest (docs/reporting.md describes the format)."""
    day = parse_day("--date", date_)
    settings = settings_or_fail(config, data_dir)
    target = out if out is not None else settings.data_dir / DEFAULT_DIR
    if target.exists() and not target.is_dir():
        fail(f"--out {target}: not a directory")
    try:
        emit(asyncio.run(_export(settings, day, target)))
    except DayNotOver as error:
        fail(str(error))
