"""`pintar registry`: bulk import and export of customers, meters, SIMs and phones (CSV)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, TextIO

import typer

from operator_data.cli.db_cmd import ConfigOption, settings_or_fail
from operator_data.cli.output import emit, fail
from operator_data.registry import ImportRejected, Registry, export_csv, import_csv
from operator_data.registry.csv_io import COLUMNS
from operator_data.settings import Settings
from operator_data.store import Store

app = typer.Typer(
    help="Registry of customers, meters, SIMs and phones: CSV import/export.",
    no_args_is_help=True,
)


def _registry(store: Store, settings: Settings) -> Registry:
    return Registry(store, master_key=settings.security.load_master_key(), pin_policy=settings.pin)


async def _import(settings: Settings, source: TextIO) -> dict[str, int]:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        summary = await import_csv(_registry(store, settings), source, actor="cli")
        return summary.as_dict()


async def _export(settings: Settings, out: TextIO) -> int:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        return await export_csv(_registry(store, settings), out, actor="cli")


@app.command(
    "import",
    help="Import FILE all-or-nothing; exit 2 with per-line errors. Columns: "
    + ", ".join(COLUMNS)
    + ".",
)
def import_(
    file: Annotated[Path, typer.Argument(help="CSV file, one line per meter.")],
    config: ConfigOption = None,
) -> None:
    settings = settings_or_fail(config)
    try:
        with file.open(encoding="utf-8-sig", newline="") as source:
            summary = asyncio.run(_import(settings, source))
    except OSError as error:
        fail(f"{file}: {error.strerror}")
    except UnicodeDecodeError as error:
        fail(f"{file}: not UTF-8 text ({error.reason} at byte {error.start})")
    except ImportRejected as rejected:
        emit({"imported": False, "errors": [issue.as_dict() for issue in rejected.issues]})
        fail(str(rejected))
    emit({"imported": True, **summary})


@app.command("export")
def export(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of standard output.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Export the registry as CSV (comms keys and PINs are never exported)."""
    settings = settings_or_fail(config)
    if out is None:
        asyncio.run(_export(settings, sys.stdout))
        return
    try:
        with out.open("w", encoding="utf-8", newline="") as target:
            lines = asyncio.run(_export(settings, target))
    except OSError as error:
        fail(f"{out}: {error.strerror}")
    emit({"out": str(out), "lines": lines})
