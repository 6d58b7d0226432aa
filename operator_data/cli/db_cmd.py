"""`pintar db`: bring the hub database schema up to date."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from operator_data.cli.output import emit

# Re-exported: the shared store options (operator_data/cli/store_options.py).
from operator_data.cli.store_options import ConfigOption, DataDirOption, settings_or_fail
from operator_data.settings import Settings
from operator_data.store import Store

app = typer.Typer(help="The hub database: migrations.", no_args_is_help=True)


async def _upgrade(settings: Settings, revision: str) -> dict[str, object]:
    async with Store.from_settings(settings) as store:
        before = await store.current_revision()
        await store.migrate(revision)
        return {
            "database": store.url.render_as_string(hide_password=True),
            "from": before,
            "to": await store.current_revision(),
        }


async def _current(settings: Settings) -> dict[str, object]:
    async with Store.from_settings(settings) as store:
        return {
            "database": store.url.render_as_string(hide_password=True),
            "revision": await store.current_revision(),
        }


@app.command("upgrade")
def upgrade(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "heads",
) -> None:
    """Apply the shipped migrations up to REVISION (default: the newest)."""
    emit(asyncio.run(_upgrade(settings_or_fail(config, data_dir), revision)))


@app.command("current")
def current(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Show the schema revision of the database (null = empty)."""
    emit(asyncio.run(_current(settings_or_fail(config, data_dir))))
