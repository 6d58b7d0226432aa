"""Entry point of the `pintar` console command: one Typer app, one sub-app per tool."""

from __future__ import annotations

import typer

from operator_data.cli import (
    db_cmd,
    frame_cmd,
    iso8583_cmd,
    p2apst_sim_cmd,
    pdu_cmd,
    registry_cmd,
    sim_cmd,
    sts_cmd,
)

app = typer.Typer(
    name="pintar",
    help="Operator Data system for PLN's two-way Listrik Pintar prepaid meters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(sts_cmd.app, name="sts")
app.add_typer(pdu_cmd.app, name="pdu")
app.add_typer(sim_cmd.app, name="sim")
app.add_typer(iso8583_cmd.app, name="iso8583")
app.command("p2apst-sim")(p2apst_sim_cmd.run)
app.add_typer(frame_cmd.app, name="frame")

app.add_typer(db_cmd.app, name="db")
app.add_typer(registry_cmd.app, name="registry")


def main() -> None:
    app()
