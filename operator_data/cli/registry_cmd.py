"""`pintar registry`: bulk import and export of customers, meters, SIMs and phones (CSV),
a meter's comms key, and the frame-counter ledger."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, TextIO, cast

import typer

from operator_data.cli.output import LineCounter, emit, fail, progress
from operator_data.cli.store_options import ConfigOption, DataDirOption, settings_or_fail
from operator_data.registry import (
    COMMS_KEY_BYTES,
    ImportRejected,
    Registry,
    RegistryError,
    export_csv,
    import_csv,
)
from operator_data.registry.counter_ledger import CounterLedger, LedgerError
from operator_data.registry.csv_io import COLUMNS
from operator_data.settings import Settings
from operator_data.store import Store
from operator_data.store.file_modes import open_private
from operator_data.store.transitions import NotFound

app = typer.Typer(
    help="Registry of customers, meters, SIMs and phones: CSV import/export.",
    no_args_is_help=True,
)


def _registry(store: Store, settings: Settings, ledger: CounterLedger | None = None) -> Registry:
    return Registry(
        store,
        master_key=settings.security.load_master_key(),
        pin_policy=settings.pin,
        ledger=ledger,
    )


def _ledger(settings: Settings) -> CounterLedger | None:
    path = settings.hub.counter_ledger_path(settings.data_dir)
    try:
        return None if path is None else CounterLedger(path)
    except LedgerError as error:
        fail(str(error))


async def _import(settings: Settings, source: TextIO) -> dict[str, int]:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        # The import reports nothing while it runs: count the lines as they are read, and
        # the spinner goes on through the (one) write transaction.
        with progress("Importing, lines read") as advance:
            counted = cast(TextIO, LineCounter(source, advance))
            summary = await import_csv(_registry(store, settings), counted, actor="cli")
        return summary.as_dict()


async def _export(settings: Settings, out: TextIO) -> int:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        with progress("Exporting, lines written") as advance:
            counted = cast(TextIO, LineCounter(out, advance))
            return await export_csv(_registry(store, settings), counted, actor="cli")


@app.command(
    "import",
    help="Import FILE all-or-nothing; exit 2 with per-line errors. Columns: "
    + ", ".join(COLUMNS)
    + ".",
)
def import_(
    file: Annotated[Path, typer.Argument(help="CSV file, one line per meter.")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    settings = settings_or_fail(config, data_dir)
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
    data_dir: DataDirOption = None,
) -> None:
    """Export the registry as CSV (comms keys and PINs are never exported)."""
    settings = settings_or_fail(config, data_dir)
    if out is None:
        asyncio.run(_export(settings, sys.stdout))
        return
    try:
        with open_private(out) as target:  # the registry is confidential: 0600
            lines = asyncio.run(_export(settings, target))
    except OSError as error:
        fail(f"{out}: {error.strerror}")
    emit({"out": str(out), "lines": lines})


async def _set_comms_key(
    settings: Settings, ledger: CounterLedger | None, meter: str, key: bytes, key_id: str
) -> dict[str, object]:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        done = await _registry(store, settings, ledger).set_comms_key(
            meter, key, key_id, actor="cli"
        )
        return {"meter_number": done.meter_number, "comms_key_id": done.comms_key_id}


@app.command("set-comms-key")
def set_comms_key(
    meter: Annotated[str, typer.Argument(help="Meter number (11 digits).")],
    key_id: Annotated[str, typer.Option("--key-id", help="The new key's id, e.g. k2.")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Give a registered meter a new SMS-frame key, read as 32 hex digits from standard
    input (never an argument: it would show in the process list). The meter's current key,
    or any key it has had, is refused: its frame counters would repeat."""
    settings = settings_or_fail(config, data_dir)
    text = sys.stdin.readline().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        fail(f"the comms key must be {2 * COMMS_KEY_BYTES} hex digits on standard input")
    if len(key) != COMMS_KEY_BYTES:
        fail(f"the comms key must be {2 * COMMS_KEY_BYTES} hex digits on standard input")
    if not key_id or len(key_id) > 32:
        fail("--key-id must be 1 to 32 characters")
    ledger = _ledger(settings)
    try:
        emit(asyncio.run(_set_comms_key(settings, ledger, meter, key, key_id)))
    except (RegistryError, NotFound, LedgerError) as error:
        fail(str(error))
    finally:
        if ledger is not None:
            ledger.close()


async def _apply_ledger(settings: Settings, ledger: CounterLedger) -> int:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        return await _registry(store, settings, ledger).apply_counter_ledger()


@app.command("apply-ledger")
def apply_ledger(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="A counter ledger file (default: this machine's hub.counter_ledger_file)."
        ),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Raise every meter's frame counter and replay window to the marks in a counter ledger:
    after a database restore, once per hub machine's ledger, before any worker starts."""
    settings = settings_or_fail(config, data_dir)
    if file is not None and not file.is_file():
        fail(f"{file}: no such counter ledger")
    try:
        ledger = CounterLedger(file) if file is not None else _ledger(settings)
    except LedgerError as error:
        fail(str(error))
    if ledger is None:
        fail("no counter ledger: give FILE or set hub.counter_ledger_file")
    try:
        moved = asyncio.run(_apply_ledger(settings, ledger))
    except (RegistryError, LedgerError) as error:
        fail(str(error))
    finally:
        ledger.close()
    emit({"ledger": str(ledger.path), "meters_moved": moved})


# Imported here, not at the top: only `pintar registry ...` pays for the API modules.
from operator_data.cli.sim_swap_cmd import app as _sim_swap_app  # noqa: E402

app.add_typer(_sim_swap_app, name="sim-swap")
