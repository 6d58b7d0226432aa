"""`pintar gateway`: run one gateway node (modems or an SMPP link, spool, MQTT bridge)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.config import GatewayConfig, GatewayConfigError, load_gateway_config
from gateway.service import RunningGateway, serve
from operator_data.cli.output import emit, fail
from operator_data.logs import configure_logging


def _summary(config: GatewayConfig) -> dict[str, Any]:
    mqtt = config.mqtt
    document: dict[str, Any] = {
        "gateway": config.name,
        "carrier": config.carrier.value,
        "spool": str(config.spool_path),
        "mqtt": {
            "host": mqtt.host,
            "port": mqtt.port,
            "username": mqtt.username or config.name,
            "password": "set" if mqtt.secret() else "unset",
            "tls": mqtt.tls_ca_file is not None,
            "topics": f"{mqtt.topic_root}/gw/{config.name}/#",
        },
    }
    if config.smpp is not None:
        document["smpp"] = {
            "host": config.smpp.host,
            "port": config.smpp.port,
            "system_id": config.smpp.system_id,
            "password": "set" if config.smpp.secret() else "unset",
            "window": config.smpp.window,
        }
    document["modems"] = [m.name or m.port for m in config.modems]
    return document


async def _run(config: GatewayConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def connected(node: RunningGateway) -> None:
        # One line on stdout for supervisors and tests; logs go to stderr.
        sys.stdout.write(
            f'{{"gateway": "{node.config.name}", "status": "connected", "pid": {os.getpid()}}}\n'
        )
        sys.stdout.flush()

    await serve(config, stop, on_connected=connected)


def run(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file (see deploy/gateway.example.toml); or PINTAR_GATEWAY_CONFIG.",
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Validate the configuration, print it, and exit.")
    ] = False,
) -> None:
    """Run one gateway node until SIGTERM/SIGINT: its modems or SMPP link, its spool, and
    its MQTT bridge to the hub."""
    path = config or (Path(p) if (p := os.environ.get("PINTAR_GATEWAY_CONFIG")) else None)
    try:
        settings = load_gateway_config(path)
    except GatewayConfigError as error:
        fail(str(error))
    except ValueError as error:  # a secret file that cannot be used
        fail(str(error))
    if check:
        emit(_summary(settings))
        return
    configure_logging(settings.log_level, settings.log_format)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(settings))
