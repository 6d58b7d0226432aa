"""`pintar p2apst-sim`: run the P2APST simulator on a TCP port until interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path
from typing import Annotated

import typer

from operator_data.cli.output import emit, fail
from p2apst_adapter.client.tls import TlsConfigError, TlsFiles, server_context
from p2apst_adapter.dialect import Framing
from p2apst_adapter.simulator import (
    FaultPlan,
    FaultSpecError,
    Ledger,
    P2apstSimulator,
    SimMeter,
    SimulatorSettings,
    demo_meters,
    load_meters,
)


def run(
    port: Annotated[int, typer.Option(help="TCP port to listen on (0 = any free port).")] = 5000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    faults: Annotated[
        str | None,
        typer.Option(
            help="Fault plan, e.g. 'latency=0.2:0.5,drop=0.05,noanswer=0.05,late=0.05,"
            "error=0046:0.02,seed=1'."
        ),
    ] = None,
    meters: Annotated[
        Path | None, typer.Option(help="JSON list of meters; demo meters if omitted.")
    ] = None,
    ledger: Annotated[
        Path | None, typer.Option(help="SQLite ledger file; in memory if omitted.")
    ] = None,
    framing: Annotated[Framing, typer.Option(help="TCP framing.")] = Framing.LENGTH_PREFIX,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Server certificate (PEM); with --tls-key, serve TLS.")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Key of the server certificate.")] = None,
    tls_client_ca: Annotated[
        Path | None, typer.Option(help="CA every client certificate must chain to.")
    ] = None,
) -> None:
    """Run the P2APST simulator (sign-on, inquiry, purchase, advices, token reports)."""
    try:
        plan = FaultPlan.parse(faults) if faults else None
    except FaultSpecError as error:
        fail(f"--faults: {error}")
    tls: ssl.SSLContext | None = None
    if tls_cert is not None or tls_key is not None or tls_client_ca is not None:
        if tls_cert is None or tls_key is None or tls_client_ca is None:
            fail("TLS needs --tls-cert, --tls-key and --tls-client-ca together")
        try:
            tls = server_context(TlsFiles(tls_client_ca, tls_cert, tls_key))
        except TlsConfigError as error:
            fail(f"TLS: {error}")
    registry: list[SimMeter]
    if meters is None:
        registry = demo_meters()
    else:
        try:
            registry = load_meters(meters)
        except (OSError, ValueError, KeyError, TypeError) as error:
            fail(f"--meters {meters}: {error}")
    settings = SimulatorSettings(framing=framing)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(registry, plan, settings, host, port, ledger, tls))


async def _serve(
    registry: list[SimMeter],
    plan: FaultPlan | None,
    settings: SimulatorSettings,
    host: str,
    port: int,
    ledger_path: Path | None,
    tls: ssl.SSLContext | None = None,
) -> None:
    with Ledger(ledger_path or ":memory:") as ledger:
        async with P2apstSimulator(
            registry, ledger=ledger, faults=plan, settings=settings, host=host, port=port, tls=tls
        ) as sim:
            emit(
                {
                    "listening": f"{host}:{sim.port}",
                    "framing": str(settings.framing),
                    "tls": tls is not None,
                    "faults": plan is not None,
                    "meters": [
                        {
                            "meter_number": m.meter_number,
                            "customer_id": m.customer_id,
                            "customer_name": m.customer_name,
                            "tariff": m.tariff,
                            "power_va": m.power_va,
                        }
                        for m in registry
                    ],
                }
            )
            await asyncio.Event().wait()
