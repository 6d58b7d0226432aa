"""`pintar sla report`: SLA figures for a period of WIB days, as JSON, a table or CSV."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

import typer

from operator_data.cli.output import (
    Format,
    FormatOption,
    emit_rows,
    fail,
    parse_format,
    write_table,
)
from operator_data.cli.store_options import ConfigOption, DataDirOption, settings_or_fail
from operator_data.settings import Settings
from operator_data.sla import SlaReport, sla_report
from operator_data.sla.report import CSV_COLUMNS
from operator_data.store import Store

app = typer.Typer(
    help="Service-level figures computed from the state histories.", no_args_is_help=True
)

GROUPS = ("day", "month")


def parse_day(option: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r}: expected a date YYYY-MM-DD")


COLUMNS = CSV_COLUMNS  # the rows of the table and CSV forms, as the report's CSV
BREACH_COLUMNS = ("stage", "subject_id", "started_at", "ended_at", "duration_ms", "target_ms")


def _rows(result: SlaReport) -> list[dict[str, Any]]:
    return [
        {"stage": s.stage, "target_ms": s.target_ms, **asdict(f)}
        for s in result.stages
        for f in (*s.periods, s.total)
    ]


async def _report(settings: Settings, from_day: date, to_day: date, group: str) -> SlaReport:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        return await sla_report(store, settings.sla, from_day, to_day, group=group)


@app.command("report")
def report(
    from_: Annotated[str, typer.Option("--from", help="First WIB day (YYYY-MM-DD).")],
    to: Annotated[str, typer.Option("--to", help="Day after the last (exclusive).")],
    format_: FormatOption = "json",
    group: Annotated[str, typer.Option("--group", help="day or month.")] = "day",
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Per stage: count, percent within target, p50/p95/p99 (nearest rank) and breaches."""
    shape = parse_format(format_)
    if group not in GROUPS:
        fail(f"--group {group!r}: expected one of {', '.join(GROUPS)}")
    from_day, to_day = parse_day("--from", from_), parse_day("--to", to)
    if to_day <= from_day:
        fail(f"--to {to_day} must be after --from {from_day}")
    settings = settings_or_fail(config, data_dir)
    result = asyncio.run(_report(settings, from_day, to_day, group))
    title = f"SLA, WIB days {from_day} to {to_day} (exclusive), by {group}"
    emit_rows(_rows(result), shape, columns=COLUMNS, document=result.to_dict(), title=title)
    if shape is Format.TABLE:
        breaches = [asdict(b) for b in result.breaches]
        write_table(breaches, BREACH_COLUMNS, title=f"Breaches ({len(breaches)})")
