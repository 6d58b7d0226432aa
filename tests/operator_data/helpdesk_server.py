"""A real helpdesk server (uvicorn on 127.0.0.1, ephemeral port) with seeded data, run in
its own thread and event loop so that synchronous clients (schemathesis, a browser
driver) can talk to it from the test's thread."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from operator_data.api.app import create_app
from operator_data.crypto import MasterKey
from operator_data.registry import Registry
from operator_data.settings import PinPolicy, Settings, WebSettings
from operator_data.store import Store
from tests.ap2t_support import serve
from tests.operator_data.helpdesk_seed import RecordingActions, Seeded, seed


@dataclass(frozen=True)
class Running:
    base_url: str
    seeded: Seeded


@contextmanager
def running_server(
    db_path: Path, *, extra_messages: int = 6, spacing: timedelta = timedelta(minutes=10)
) -> Iterator[Running]:
    ready = threading.Event()
    box: dict[str, object] = {}
    loop_box: dict[str, asyncio.AbstractEventLoop] = {}
    stop_box: dict[str, asyncio.Event] = {}

    async def main() -> None:
        stop = asyncio.Event()
        loop_box["loop"] = asyncio.get_running_loop()
        stop_box["stop"] = stop
        try:
            async with Store(f"sqlite+aiosqlite:///{db_path}") as store:
                await store.migrate()
                registry = Registry(
                    store, master_key=MasterKey(secrets.token_bytes(32)), pin_policy=PinPolicy()
                )
                seeded = await seed(store, registry, extra_messages=extra_messages, spacing=spacing)
                app = create_app(
                    Settings(web=WebSettings(docs="public")),
                    store,
                    registry,
                    actions=RecordingActions(registry),
                )
                async with serve(app) as url:
                    box["running"] = Running(url, seeded)
                    ready.set()
                    await stop.wait()
        except BaseException as error:
            box["error"] = error
            ready.set()
            raise

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    ready.wait(timeout=60)
    error = box.get("error")
    if isinstance(error, BaseException):
        raise RuntimeError("helpdesk server did not start") from error
    running = box["running"]
    assert isinstance(running, Running)
    try:
        yield running
    finally:
        loop_box["loop"].call_soon_threadsafe(stop_box["stop"].set)
        thread.join(timeout=30)
