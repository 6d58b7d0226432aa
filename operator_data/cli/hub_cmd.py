"""`pintar hub`: run one hub worker (store, MQTT bus to the gateways, P2APST, web app)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.engine import make_url

from operator_data.cli.output import emit, fail
from operator_data.cli.store_options import DataDirOption
from operator_data.hub.service import HubServiceError, RunningHub, serve
from operator_data.logs import configure_logging
from operator_data.settings import Settings, SettingsError, load_settings


def _summary(settings: Settings, worker_id: str) -> dict[str, Any]:
    """The effective configuration with every secret shown only as set/unset."""
    mqtt, p2apst, web = settings.mqtt, settings.p2apst, settings.web
    security = settings.security
    return {
        "hub": worker_id,
        "data_dir": str(settings.data_dir),
        "database": make_url(settings.database.effective_url(settings.data_dir)).render_as_string(
            hide_password=True
        ),
        "master_key": "set" if security.master_key or security.master_key_file else "unset",
        "service": {"short_code": settings.service.short_code},
        "mqtt": {
            "host": mqtt.host,
            "port": mqtt.port,
            "username": mqtt.username,
            "password": "set" if mqtt.secret() else "unset",
            "tls": mqtt.tls_ca_file is not None,
            "events": f"$share/{mqtt.group}/{mqtt.topic_root}/gw/+/events",
        },
        "p2apst": (
            {
                "host": p2apst.host,
                "port": p2apst.port,
                "framing": p2apst.framing.value,
                # Loads the TLS files, so --check (and every start) fails on unusable ones.
                "tls": p2apst.tls_context() is not None,
            }
            if p2apst.host is not None
            else None
        ),
        "web": {"host": web.host, "port": web.port} if web.enabled else None,
        "push_token": "set" if settings.hub.push_token else "unset",
        "logging": {"level": settings.logging.level, "format": settings.logging.format},
    }


async def _run(settings: Settings, worker_id: str, migrate: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def ready(node: RunningHub) -> None:
        # One line on stdout for supervisors and tests; logs go to stderr.
        line: dict[str, Any] = {"hub": node.worker_id, "status": "ready", "pid": os.getpid()}
        if node.web_url is not None:
            line["web"] = node.web_url
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    await serve(settings, stop, worker_id=worker_id, migrate=migrate, on_ready=ready)


def run(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="PINTAR_CONFIG",
            help="TOML file (see deploy/hub.example.toml).",
        ),
    ] = None,
    data_dir: DataDirOption = None,
    worker_id: Annotated[
        str | None,
        typer.Option(
            "--worker-id",
            help="This worker's name (MQTT client id, outbox claims); default HOST-PID.",
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Validate the configuration, print it, and exit.")
    ] = False,
    migrate: Annotated[
        bool,
        typer.Option(
            "--migrate", help="Upgrade the schema before starting (else: `pintar db upgrade`)."
        ),
    ] = False,
    log_level: Annotated[
        str | None,
        typer.Option("--log-level", help="Log level (default: logging.level, INFO)."),
    ] = None,
) -> None:
    """Run one hub worker until SIGTERM/SIGINT. Several may share one PostgreSQL database
    and one broker; run `pintar db upgrade` before starting them."""
    name = worker_id or f"{socket.gethostname()}-{os.getpid()}"
    try:
        overrides = {} if data_dir is None else {"data_dir": data_dir}
        settings = load_settings(config, **overrides)
        summary = _summary(settings, name)
    except (SettingsError, ValueError) as error:
        fail(str(error))
    if check:
        emit(summary)
        return
    try:
        configure_logging(log_level or settings.logging.level, settings.logging.format)
    except ValueError as error:
        fail(str(error))
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_run(settings, name, migrate))
    except HubServiceError as error:
        fail(str(error))
