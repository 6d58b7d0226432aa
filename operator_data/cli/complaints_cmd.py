"""`pintar complaints report|annual`: the complaint figures of the QoS standard (15 working
days, the rest by the month's last working day) and the disruption figures, as JSON, a
table or CSV."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from operator_data.cli.output import FormatOption, emit_rows, fail, parse_format
from operator_data.cli.store_options import ConfigOption, DataDirOption, settings_or_fail
from operator_data.complaints import calendar, figures
from operator_data.complaints.report import parse_month
from operator_data.settings import Settings
from operator_data.store import Store
from operator_data.store.types import utcnow

app = typer.Typer(
    help="Complaint figures: the 15-working-day target, disruption, annual summary.",
    no_args_is_help=True,
)

HolidaysOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--holidays",
        help="A holiday file (TOML, as operator_data/complaints/holidays/2026.toml) that"
        " replaces the shipped one for its year; may be repeated.",
    ),
]
AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="Compute as at this instant (ISO 8601 with offset); default now."),
]
FIGURES = (
    "measured",
    "within_target",
    "within_target_pct",
    "by_month_end",
    "by_month_end_pct",
    "target_met",
    "third_party_excluded",
    "received",
    "resolved",
    "open_now",
    "final",
)


def _calendar(paths: list[Path] | None) -> calendar.HolidayCalendar:
    try:
        return calendar.load(paths or ())
    except calendar.CalendarError as failure:
        fail(str(failure))


def _as_of(text: str | None) -> datetime:
    if text is None:
        return utcnow()
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--as-of {text!r}: expected an ISO 8601 time with offset")
    if at.tzinfo is None:
        fail(f"--as-of {text!r}: give the offset (e.g. +07:00)")
    return at


async def _monthly(
    settings: Settings, year: int, month: int, cal: calendar.HolidayCalendar, as_of: datetime
) -> dict[str, Any]:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        async with store.read() as conn:
            return await figures.monthly(conn, year, month, cal, as_of=as_of)


async def _annual(
    settings: Settings, year: int, cal: calendar.HolidayCalendar, as_of: datetime
) -> dict[str, Any]:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        async with store.read() as conn:
            return await figures.annual(conn, year, cal, as_of=as_of)


@app.command("report")
def report(
    month: Annotated[str, typer.Option("--month", help="The month, YYYY-MM (WIB).")],
    format_: FormatOption = "json",
    holidays: HolidaysOption = None,
    as_of: AsOfOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """The month's figures: complaints due in it resolved within 15 working days and by its
    last working day (third-party-caused excluded), and 12 months of disruption reports."""
    shape = parse_format(format_)
    try:
        year, number = parse_month(month)
    except ValueError as failure:
        fail(f"--month: {failure}")
    cal = _calendar(holidays)
    settings = settings_or_fail(config, data_dir)
    result = asyncio.run(_monthly(settings, year, number, cal, _as_of(as_of)))
    rows = [{"figure": key, "value": result[key]} for key in FIGURES]
    rows += [{"figure": f"disruption_{k}", "value": v} for k, v in result["disruption"].items()]
    emit_rows(
        rows, shape, columns=("figure", "value"), document=result, title=f"Complaints {month}"
    )


@app.command("annual")
def annual(
    year: Annotated[int, typer.Option("--year", help="The year (WIB).", min=2000, max=2100)],
    format_: FormatOption = "json",
    holidays: HolidaysOption = None,
    as_of: AsOfOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Each month's figures of a year, the year's totals and its disruption figures."""
    shape = parse_format(format_)
    cal = _calendar(holidays)
    settings = settings_or_fail(config, data_dir)
    result = asyncio.run(_annual(settings, year, cal, _as_of(as_of)))
    rows = [{k: m[k] for k in ("month", *FIGURES)} for m in result["months"]]
    emit_rows(rows, shape, columns=("month", *FIGURES), document=result, title=f"Complaints {year}")
