"""`pintar registry sim-swap`: request, approve, reject and list SIM swaps from the
command line, with the same rules as the page and the API (four eyes: whoever requested
cannot approve; a decided swap stays decided) and the same `sim_swap.*` audit rows, the
actor being `cli:<os user>`."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from operator_data.api import sim_swaps
from operator_data.api.auth import Role
from operator_data.cli.output import FormatOption, emit, emit_rows, fail, parse_format
from operator_data.cli.store_options import ConfigOption, DataDirOption, settings_or_fail
from operator_data.cli.users_cmd import cli_actor
from operator_data.registry import Registry, RegistryError
from operator_data.registry.models import SimSwap
from operator_data.settings import Settings
from operator_data.store import IllegalTransition, NotFound, Store

app = typer.Typer(
    help="SIM swaps: request, approve (not by the requester), reject, list.",
    no_args_is_help=True,
)

COLUMNS = (
    "swap_id",
    "meter_number",
    "old_msisdn",
    "new_msisdn",
    "state",
    "requested_by",
    "requested_at",
    "decided_by",
    "decided_at",
)
SwapIdArg = Annotated[int, typer.Argument(min=1, max=2**62, help="The swap's number.")]
NoteOption = Annotated[str | None, typer.Option("--note", help="Why (kept with the decision).")]


def _registry(store: Store, settings: Settings) -> Registry:
    return Registry(store, master_key=settings.security.load_master_key(), pin_policy=settings.pin)


async def _run(settings: Settings, what: str, **args: Any) -> dict[str, Any]:
    async with Store.from_settings(settings) as store:
        await store.migrate()
        registry = _registry(store, settings)
        actor = cli_actor()
        swap: SimSwap
        if what == "request":
            swap = await registry.request_sim_swap(
                args["meter"], args["msisdn"], requested_by=actor, reason=args["reason"]
            )
        elif what == "approve":
            swap = await registry.approve_sim_swap(
                args["swap_id"], approved_by=actor, note=args["note"]
            )
        else:
            swap = await registry.reject_sim_swap(
                args["swap_id"], rejected_by=actor, note=args["note"]
            )
        async with store.read() as conn:
            shown = await sim_swaps.one_swap(conn, Role.ADMIN, swap.swap_id)
    assert shown is not None  # just written
    return shown


def _do(config: Any, data_dir: Any, what: str, **args: Any) -> None:
    settings = settings_or_fail(config, data_dir)
    try:
        emit(asyncio.run(_run(settings, what, **args)))
    except (RegistryError, NotFound, IllegalTransition) as error:
        fail(str(error))


def _text(value: str | None, name: str) -> str | None:
    if value is not None and len(value) > 500:
        fail(f"{name} is at most 500 characters")
    return value or None


@app.command("request")
def request(
    meter: Annotated[str, typer.Argument(help="Meter number (11 digits).")],
    new_msisdn: Annotated[str, typer.Argument(help="The registered, unbound SIM to move to.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why the SIM changes.")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Ask to move METER to the SIM NEW_MSISDN; nothing changes until someone else
    approves (audited)."""
    if not (len(meter) == 11 and meter.isdigit()):
        fail(f"a meter number is 11 digits, not {meter[:32]!r}")
    _do(
        config,
        data_dir,
        "request",
        meter=meter,
        msisdn=new_msisdn,
        reason=_text(reason, "--reason"),
    )


@app.command("approve")
def approve(
    swap_id: SwapIdArg,
    note: NoteOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Approve SWAP_ID: the old SIM is unbound and the new one bound, at once. Refused
    for the one who requested it (audited)."""
    _do(config, data_dir, "approve", swap_id=swap_id, note=_text(note, "--note"))


@app.command("reject")
def reject(
    swap_id: SwapIdArg,
    note: NoteOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Reject SWAP_ID; the meter keeps its SIM (audited)."""
    _do(config, data_dir, "reject", swap_id=swap_id, note=_text(note, "--note"))


async def _list(settings: Settings, state: str | None, meter: str | None) -> list[dict[str, Any]]:
    wanted = sim_swaps.parse_state(state)
    async with Store.from_settings(settings) as store:
        await store.migrate()
        async with store.read() as conn:
            return await sim_swaps.list_swaps(
                conn, Role.ADMIN, state=wanted, meter_number=meter, limit=sim_swaps.MAX_LIST
            )


@app.command("list")
def list_(
    state: Annotated[
        str | None, typer.Option("--state", help="requested, approved or rejected.")
    ] = None,
    meter: Annotated[str | None, typer.Option("--meter", help="Only this meter.")] = None,
    format_: FormatOption = "json",
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """SIM swaps, requested ones first, newest first (at most 200)."""
    shape = parse_format(format_)
    if meter is not None and not (len(meter) == 11 and meter.isdigit()):
        fail(f"--meter is 11 digits, not {meter[:32]!r}")
    try:
        sim_swaps.parse_state(state)
    except sim_swaps.BadSwapFilter as error:
        fail(str(error))
    rows = asyncio.run(_list(settings_or_fail(config, data_dir), state, meter))
    emit_rows(rows, shape, columns=COLUMNS, title="SIM swaps")
