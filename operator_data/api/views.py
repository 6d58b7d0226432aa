"""Shared read logic of the JSON API and the HTML pages (same data, same masking, same
audit), so a role boundary cannot hold in one and leak in the other."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from operator_data.api import queries
from operator_data.api.auth import Principal
from operator_data.api.deps import AppContext, audit
from operator_data.api.present import phone_for, wib_day_start
from operator_data.registry.models import check_customer_id, check_meter_number
from operator_data.sla import dashboard as sla_figures
from operator_data.store.transitions import NotFound


def shape_message(row: dict[str, Any], principal: Principal) -> dict[str, Any]:
    shaped = dict(row)
    shaped["peer_msisdn"] = phone_for(principal.role, row.get("peer_msisdn"))
    return shaped


async def search(
    ctx: AppContext,
    principal: Principal,
    where: queries.MessageFilter,
    *,
    limit: int,
    cursor: str | None,
    reason: str | None,
) -> queries.Page:
    async with ctx.store.read() as conn:
        page = await queries.search_messages(conn, where, limit=limit, cursor=cursor)
    filters = {k: str(v) for k, v in asdict(where).items() if v is not None}
    await audit(
        ctx, principal, "view.messages", "search", None, {"filter": filters, "reason": reason}
    )
    return queries.Page([shape_message(r, principal) for r in page.rows], page.next_cursor)


async def meter(
    ctx: AppContext, principal: Principal, meter_number: str, reason: str | None
) -> dict[str, Any]:
    check_meter_number(meter_number)
    found = await ctx.registry.get_meter(meter_number)  # NotFound -> 404
    sim = await ctx.registry.sim_of_meter(meter_number)
    async with ctx.store.read() as conn:
        events = await queries.timeline(conn, meter_numbers=[meter_number])
    await audit(ctx, principal, "view.meter", "meter", meter_number, {"reason": reason})
    return {
        "meter": {
            "meter_number": found.meter_number,
            "customer_id": found.customer_id,
            "state": found.state.value,
            "state_at": found.state_at,
            "supply_group_code": found.supply_group_code,
            "tariff_index": found.tariff_index,
            "key_revision": found.key_revision,
            "has_comms_key": found.has_comms_key,
        },
        "sim": None
        if sim is None
        else {
            "msisdn": phone_for(principal.role, sim.msisdn),
            "operator": sim.operator,
            "iccid": sim.iccid if principal.role.rank > 0 else sim.iccid[:6] + "…" + sim.iccid[-4:],
        },
        "timeline": [asdict(e) for e in events],
    }


async def customer(
    ctx: AppContext, principal: Principal, customer_id: str, reason: str
) -> dict[str, Any]:
    from operator_data.api.present import name_for

    check_customer_id(customer_id)
    found = await ctx.registry.get_customer(customer_id)
    meters = await ctx.registry.meters_of(customer_id)
    phones = await ctx.registry.phones_of(customer_id)
    now = ctx.clock()
    async with ctx.store.read() as conn:
        events = await queries.timeline(
            conn, meter_numbers=[m.meter_number for m in meters], customer_id=customer_id
        )
    await audit(ctx, principal, "view.customer", "customer", customer_id, {"reason": reason})
    return {
        "customer": {
            "customer_id": found.customer_id,
            "name": name_for(principal.role, found.name),
            "tariff_segment": found.tariff_segment,
            "power_va": found.power_va,
            "status": found.status.value,
            "opted_out": found.opted_out,
        },
        "meters": [{"meter_number": m.meter_number, "state": m.state.value} for m in meters],
        "phones": [
            {
                "msisdn": phone_for(principal.role, p.msisdn),
                "pin_set": p.pin_set,
                "locked": p.locked_until is not None and p.locked_until > now,
                "locked_until": p.locked_until,
            }
            for p in phones
        ],
        "timeline": [asdict(e) for e in events],
    }


async def transaction(
    ctx: AppContext, principal: Principal, transaction_id: str, reason: str | None
) -> dict[str, Any]:
    async with ctx.store.read() as conn:
        view = await queries.transaction_view(conn, transaction_id, ctx.settings.sla, ctx.clock())
    if view is None:
        raise NotFound(f"transaction {transaction_id} does not exist")
    await audit(
        ctx, principal, "view.transaction", "transaction", transaction_id, {"reason": reason}
    )
    row = dict(view.row)
    row["phone_msisdn"] = phone_for(principal.role, row["phone_msisdn"])
    return {
        "transaction": row,
        "stages": [asdict(s) for s in view.stages],
        "sla": [asdict(c) for c in view.sla],
        "messages": [shape_message(m, principal) for m in view.messages],
        "terminal": view.terminal,
        "stopped_at": None if view.terminal else row["state"],
        "next_expected": view.next_expected,
    }


async def sla_dashboard(ctx: AppContext, days: int = 14) -> dict[str, Any]:
    """Today, this month and the daily series, computed by `operator_data.sla` from the
    state histories exactly as `pintar sla report` computes them (not from sla_events,
    which holds breaches only); the targets used are part of the answer."""
    now = ctx.clock()
    figures = await sla_figures.sla_dashboard(ctx.store, ctx.settings.sla, now, days=days)
    starts = [wib_day_start(now) - timedelta(days=n) for n in range(days - 1, -1, -1)]
    async with ctx.store.read() as conn:
        sms = await queries.daily_sms_counts(conn, starts)
    return {
        "today": [asdict(s) for s in figures.today],
        "this_month": [asdict(s) for s in figures.this_month],
        "breaches": list(figures.breaches),
        "daily": [
            {
                "day_start": start,
                "sms": count,
                "sla_met": day.met,
                "sla_decided": day.decided,
                "sla_percent": day.percent,
            }
            for start, count, day in zip(starts, sms, figures.daily, strict=True)
        ],
        "targets_s": ctx.settings.sla.model_dump(),
        "targets_ms": figures.targets_ms,
    }


async def gateway_status(ctx: AppContext) -> dict[str, Any]:
    from operator_data.store.outbox import pending_count

    gateways = await ctx.status.gateways()
    async with ctx.store.read() as conn:
        pending = await pending_count(conn)
    return {"gateways": [asdict(g) for g in gateways], "outbox_pending": pending}
