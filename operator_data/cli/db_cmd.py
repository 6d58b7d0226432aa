"""`pintar db`: bring the hub database schema up to date."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from operator_data.cli.output import emit, fail
from operator_data.settings import Settings, SettingsError, load_settings
from operator_data.store import Store

app = typer.Typer(help="The hub database: migrations.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", envvar="PINTAR_CONFIG", help="TOML settings file."),
]


def settings_or_fail(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except SettingsError as error:
        fail(str(error))


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
    revision: Annotated[str, typer.Option(help="Target revision.")] = "heads",
) -> None:
    """Apply the shipped migrations up to REVISION (default: the newest)."""
    emit(asyncio.run(_upgrade(settings_or_fail(config), revision)))


@app.command("current")
def current(config: ConfigOption = None) -> None:
    """Show the schema revision of the database (null = empty)."""
    emit(asyncio.run(_current(settings_or_fail(config))))
