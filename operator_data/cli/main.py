"""Entry point of the `pintar` console command: one Typer app, one sub-app per tool."""

from __future__ import annotations

import typer

from operator_data.cli import (
    ap2t_cmd,
    bench_cmd,
    db_cmd,
    demo_cmd,
    frame_cmd,
    gateway_cmd,
    helpdesk_cmd,
    hub_cmd,
    iso8583_cmd,
    p2apst_sim_cmd,
    pdu_cmd,
    registry_cmd,
    retention_cmd,
    sim_cmd,
    sla_cmd,
    sts_cmd,
    users_cmd,
)

app = typer.Typer(
    name="pintar",
    help="Operator Data system for PLN's two-way Listrik Pintar prepaid meters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("demo")(demo_cmd.run)
app.add_typer(sts_cmd.app, name="sts")
app.add_typer(pdu_cmd.app, name="pdu")
app.add_typer(sim_cmd.app, name="sim")
app.add_typer(iso8583_cmd.app, name="iso8583")
app.command("p2apst-sim")(p2apst_sim_cmd.run)
app.add_typer(frame_cmd.app, name="frame")

app.add_typer(db_cmd.app, name="db")
app.add_typer(registry_cmd.app, name="registry")
app.add_typer(bench_cmd.app, name="bench")
app.add_typer(users_cmd.app, name="users")
app.add_typer(helpdesk_cmd.app, name="helpdesk")
app.command("gateway")(gateway_cmd.run)
app.command("hub")(hub_cmd.run)

app.add_typer(sla_cmd.app, name="sla")
app.add_typer(ap2t_cmd.app, name="ap2t")
app.add_typer(retention_cmd.app, name="retention")


def main() -> None:
    app()
