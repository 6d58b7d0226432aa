"""`pintar retention purge`: delete what has outlived its retention (never the legal minimum)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from operator_data.cli.output import FormatOption, emit_rows, parse_format, progress
from operator_data.cli.store_options import ConfigOption, DataDirOption, settings_or_fail
from operator_data.retention import PurgeResult, purge
from operator_data.settings import Settings
from operator_data.store import Store, utcnow

app = typer.Typer(
    help="Data retention (5/2021 art. 168, 222(m); QoS art. 4(6)).", no_args_is_help=True
)


async def _purge(settings: Settings, dry_run: bool, batch_size: int) -> PurgeResult:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        # purge() reports no progress of its own: the spinner says it is still working.
        with progress("Purging" if not dry_run else "Counting"):
            return await purge(
                store,
                settings.retention,
                now=utcnow(),
                dry_run=dry_run,
                batch_size=batch_size,
                sla_targets=settings.sla,
            )


@app.command("purge")
def purge_(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would go.")] = False,
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="Rows per transaction.")
    ] = 1000,
    format_: FormatOption = "json",
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Delete expired rows in bounded batches; skipped if another node is purging."""
    shape = parse_format(format_)
    result = asyncio.run(_purge(settings_or_fail(config, data_dir), dry_run, batch_size))
    rows = [{"table": name, "rows": count} for name, count in result.counts.items()]
    verb = "would delete (dry run)" if dry_run else "deleted"
    title = f"Retention purge: rows {verb}" if result.ran else "Skipped: another node is purging"
    emit_rows(rows, shape, columns=("table", "rows"), document=result.to_dict(), title=title)
