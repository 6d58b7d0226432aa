"""Shared logic of the ops API and pages (message detail, purchase search, outbox,
resend, gateways): same data, same masking, same audit in both."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from operator_data.api import gateway_board, message_detail, outbox_view
from operator_data.api import resend as resend_module
from operator_data.api.auth import Principal
from operator_data.api.deps import AppContext, audit
from operator_data.api.present import phone_for
from operator_data.store import NotFound


async def message(ctx: AppContext, principal: Principal, message_id: str) -> dict[str, Any]:
    async with ctx.store.read() as conn:
        found = await message_detail.message_detail(conn, message_id)
    if found is None:
        raise NotFound(f"message {message_id} does not exist")
    await audit(ctx, principal, "view.message", "message", message_id)
    found["peer_msisdn"] = phone_for(principal.role, found["peer_msisdn"])
    return found


async def find_transactions(
    ctx: AppContext, principal: Principal, search: message_detail.TransactionSearch
) -> list[dict[str, Any]]:
    search.conditions()  # BadSearch before anything is read or audited
    async with ctx.store.read() as conn:
        rows = await message_detail.search_transactions(conn, search)
    filters = {k: v for k, v in asdict(search).items() if v is not None}
    await audit(ctx, principal, "view.transactions", "search", None, {"filter": filters})
    for row in rows:
        row["phone_msisdn"] = phone_for(principal.role, row["phone_msisdn"])
    return rows


async def outbox(ctx: AppContext, principal: Principal) -> dict[str, Any]:
    from operator_data.store.outbox import pending_count

    now = ctx.clock()
    async with ctx.store.read() as conn:
        rows = await outbox_view.outbox_rows(conn, now)
        total = await pending_count(conn)
    await audit(ctx, principal, "view.outbox", "outbox", None)
    for row in rows:
        row["destination"] = phone_for(principal.role, row["destination"])
    return {"items": rows, "total": total}


async def outbox_action(
    ctx: AppContext, principal: Principal, outbox_id: int, action: str, reason: str
) -> dict[str, Any]:
    """Retry or cancel one row; audited with its result whether done or refused (a
    refusal is raised on as outbox_view.Refused, a missing row as NotFound)."""
    now = ctx.clock()
    result = "refused"
    detail: dict[str, Any] = {"reason": reason}
    try:
        async with ctx.store.begin() as conn:
            if action == "retry":
                done = await outbox_view.retry(conn, outbox_id, now)
            else:
                done = await outbox_view.cancel(
                    conn, outbox_id, now, actor=principal.name, reason=reason
                )
        result = done.result
        detail["message_id"] = done.message_id
        return asdict(done)
    except (outbox_view.Refused, NotFound) as error:
        result = "not_found" if isinstance(error, NotFound) else "refused"
        detail["error"] = str(error)
        raise
    finally:
        await audit(
            ctx,
            principal,
            f"action.outbox_{action}",
            "outbox",
            str(outbox_id),
            {**detail, "result": result},
        )


async def resend(
    ctx: AppContext, principal: Principal, transaction_id: str, reason: str
) -> dict[str, Any]:
    return asdict(await resend_module.resend(ctx, principal, transaction_id, reason))


async def gateways(ctx: AppContext) -> dict[str, Any]:
    live = await ctx.status.gateways()
    async with ctx.store.read() as conn:
        return await gateway_board.board(conn, live, ctx.clock())
