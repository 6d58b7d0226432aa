"""`pintar sla report`: SLA figures for a period of WIB days, as JSON or CSV."""

from __future__ import annotations

import asyncio
import sys
from datetime import date
from typing import Annotated

import typer

from operator_data.cli.db_cmd import ConfigOption, settings_or_fail
from operator_data.cli.output import emit, fail
from operator_data.settings import Settings
from operator_data.sla import SlaReport, sla_report
from operator_data.store import Store

app = typer.Typer(
    help="Service-level figures computed from the state histories.", no_args_is_help=True
)

FORMATS = ("json", "csv")
GROUPS = ("day", "month")


def parse_day(option: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r}: expected a date YYYY-MM-DD")


async def _report(settings: Settings, from_day: date, to_day: date, group: str) -> SlaReport:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        return await sla_report(store, settings.sla, from_day, to_day, group=group)


@app.command("report")
def report(
    from_: Annotated[str, typer.Option("--from", help="First WIB day (YYYY-MM-DD).")],
    to: Annotated[str, typer.Option("--to", help="Day after the last (exclusive).")],
    format_: Annotated[str, typer.Option("--format", help="json or csv.")] = "json",
    group: Annotated[str, typer.Option("--group", help="day or month.")] = "day",
    config: ConfigOption = None,
) -> None:
    """Per stage: count, percent within target, p50/p95/p99 (nearest rank) and breaches."""
    if format_ not in FORMATS:
        fail(f"--format {format_!r}: expected one of {', '.join(FORMATS)}")
    if group not in GROUPS:
        fail(f"--group {group!r}: expected one of {', '.join(GROUPS)}")
    from_day, to_day = parse_day("--from", from_), parse_day("--to", to)
    if to_day <= from_day:
        fail(f"--to {to_day} must be after --from {from_day}")
    settings = settings_or_fail(config)
    result = asyncio.run(_report(settings, from_day, to_day, group))
    if format_ == "csv":
        sys.stdout.write(result.to_csv())
    else:
        emit(result.to_dict())
