"""`pintar helpdesk serve`: the helpdesk web app and operations API on its own.

The hub process mounts the same app with its status providers and action hooks; this
stand-alone server reads the database and offers the registry-backed actions only.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI

from operator_data.ap2t_source import StoreAp2tHistory
from operator_data.api.app import create_app
from operator_data.cli.store_options import ConfigOption, DataDirOption, settings_or_fail
from operator_data.registry import Registry
from operator_data.settings import Settings
from operator_data.store import Store

app = typer.Typer(help="Helpdesk web app and operations API.", no_args_is_help=True)


def build_app(settings: Settings, store: Store, registry: Registry) -> FastAPI:
    """The app `serve` runs: the hub's pages on the same database, with the AP2T batch
    history read from `ap2t_batches` as the hub shows it (without it the page and
    /api/v1/ap2t/batches said "no data" although batches existed, issue 17)."""
    return create_app(settings, store, registry, ap2t_history=StoreAp2tHistory(store))


async def _serve(settings: Settings, host: str, port: int) -> None:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        registry = Registry(
            store, master_key=settings.security.load_master_key(), pin_policy=settings.pin
        )
        server = uvicorn.Server(
            uvicorn.Config(build_app(settings, store, registry), host=host, port=port)
        )
        await server.serve()


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8080,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Serve the web pages (/), the API (/api/v1, /docs), /healthz, /readyz, /metrics."""
    asyncio.run(_serve(settings_or_fail(config, data_dir), host, port))
