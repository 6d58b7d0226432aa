"""Complaints as the helpdesk works them: who may do what, masking, and the audit log,
shared by the JSON API (routers/complaints.py) and the pages (routers/complaint_pages.py).
The rows and their states are operator_data/complaints/store.py's.

Roles: helpdesk staff record, take, note, link and resolve; giving a complaint to someone
else, marking it third-party-caused (which takes it out of the regulatory figures),
reopening and the monthly report are a supervisor's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from operator_data.api.auth import Principal, Role
from operator_data.api.deps import AppContext, audit
from operator_data.api.present import phone_for
from operator_data.api.queries import MAX_PAGE, BadCursor, decode_cursor, encode_cursor
from operator_data.api.tables import api_users
from operator_data.complaints import calendar, figures
from operator_data.complaints import store as cs
from operator_data.complaints.report import parse_month

Problem = cs.ComplaintProblem


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


def _calendar() -> calendar.HolidayCalendar:
    return calendar.default()


def _summary(row: Any, principal: Principal) -> dict[str, Any]:
    cal = _calendar()
    return {
        "id": row.id,
        "ticket": row.ticket,
        "channel": row.channel,
        "category": row.category,
        "state": row.state,
        "assigned_to": row.assigned_to,
        "customer_id": row.customer_id,
        "meter_number": row.meter_number,
        "msisdn": phone_for(principal.role, row.msisdn),
        "third_party": bool(row.third_party),
        "received_at": row.received_at,
        "due_on": cal.due_on(row.received_at),
        "final_due_on": cal.final_due_on(row.received_at),
        "resolved_at": row.resolved_at,
        "resolution_code": row.resolution_code,
    }


async def queue(
    ctx: AppContext, principal: Principal, *, state: str | None, limit: int, cursor: str | None
) -> Page:
    limit = max(1, min(limit, MAX_PAGE))
    before = None
    if cursor:
        at, last_id = decode_cursor(cursor)
        if len(last_id) != 26:
            raise BadCursor("cursor is not valid")
        before = (at, last_id)
    async with ctx.store.read() as conn:
        rows, more = await cs.listing(conn, state=state, limit=limit, before=before)
    next_cursor = encode_cursor(rows[-1].received_at, rows[-1].id) if more and rows else None
    return Page([_summary(r, principal) for r in rows], next_cursor)


async def detail(
    ctx: AppContext, principal: Principal, key: str, *, audit_view: bool = True
) -> dict[str, Any]:
    """One complaint with its trail; a view is audited (the answer to an action is not:
    the action's own row says it)."""
    async with ctx.store.read() as conn:
        row = await cs.find(conn, key)
        events, links = await cs.trail(conn, row.id)
    if audit_view:
        await audit(ctx, principal, "view.complaint", "complaint", row.id)
    return {
        **_summary(row, principal),
        "text": row.text,
        "resolution": row.resolution,
        "opened_by": row.opened_by,
        "links": [
            {"kind": x.kind, "ref": x.ref, "added_by": x.added_by, "added_at": x.added_at}
            for x in links
        ],
        "history": [
            {
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "state": e.state,
                "assigned_to": e.assigned_to,
                "note": e.note,
            }
            for e in events
        ],
    }


async def record(
    ctx: AppContext,
    principal: Principal,
    *,
    channel: str,
    category: str,
    text: str,
    customer_id: str | None,
    meter_number: str | None,
    msisdn: str | None,
) -> str:
    """A complaint taken on a call; its id."""
    new = cs.NewComplaint(
        channel=channel,
        category=category,
        text=text,
        received_at=ctx.clock(),
        opened_by=principal.name,
        customer_id=customer_id,
        meter_number=meter_number,
        msisdn=msisdn,
    ).check()
    async with ctx.store.begin() as conn:
        complaint_id = await cs.record(conn, new)
    await audit(
        ctx,
        principal,
        "action.complaint_open",
        "complaint",
        complaint_id,
        {"category": new.category, "channel": new.channel},
    )
    return complaint_id


async def _active_user(ctx: AppContext, username: str) -> bool:
    async with ctx.store.read() as conn:
        found = await conn.scalar(
            select(api_users.c.user_id).where(
                api_users.c.username == username, api_users.c.active.is_(True)
            )
        )
    return found is not None


async def users(ctx: AppContext) -> list[str]:
    async with ctx.store.read() as conn:
        return [
            str(u)
            for u in await conn.scalars(
                select(api_users.c.username)
                .where(api_users.c.active.is_(True))
                .order_by(api_users.c.username)
            )
        ]


async def _id_of(ctx: AppContext, key: str) -> str:
    async with ctx.store.read() as conn:
        return str((await cs.find(conn, key)).id)


async def assign(ctx: AppContext, principal: Principal, key: str, to: str) -> str:
    to = to.strip() or principal.name
    if to != principal.name and not principal.role.allows(Role.SUPERVISOR):
        raise Problem("assign_others", "role supervisor required to assign to others", 403)
    if not await _active_user(ctx, to):
        raise Problem("unknown_user", f"no active user {to!r}")
    complaint_id = await _id_of(ctx, key)
    async with ctx.store.begin() as conn:
        await cs.assign(conn, complaint_id, to=to, actor=principal.name, at=ctx.clock())
    await audit(ctx, principal, "action.complaint_assign", "complaint", complaint_id, {"to": to})
    return complaint_id


async def note(ctx: AppContext, principal: Principal, key: str, text: str) -> str:
    text = cs.check_text(text, code="note_length")
    complaint_id = await _id_of(ctx, key)
    async with ctx.store.begin() as conn:
        await cs.note(conn, complaint_id, text=text, actor=principal.name, at=ctx.clock())
    await audit(
        ctx, principal, "action.complaint_note", "complaint", complaint_id, {"length": len(text)}
    )
    return complaint_id


async def link(ctx: AppContext, principal: Principal, key: str, kind: str, ref: str) -> str:
    complaint_id = await _id_of(ctx, key)
    async with ctx.store.begin() as conn:
        added = await cs.link(
            conn, complaint_id, kind=kind, ref=ref, actor=principal.name, at=ctx.clock()
        )
    if added:
        await audit(
            ctx,
            principal,
            "action.complaint_link",
            "complaint",
            complaint_id,
            {"kind": kind, "ref": ref.strip().upper()},
        )
    return complaint_id


async def third_party(
    ctx: AppContext, principal: Principal, key: str, value: bool, reason: str
) -> str:
    if not principal.role.allows(Role.SUPERVISOR):
        raise Problem("third_party_supervisor", "role supervisor required", 403)
    reason = cs.check_text(reason, code="reason_required", minimum=3)
    complaint_id = await _id_of(ctx, key)
    async with ctx.store.begin() as conn:
        await cs.set_third_party(
            conn,
            complaint_id,
            third_party=value,
            reason=reason,
            actor=principal.name,
            at=ctx.clock(),
        )
    await audit(
        ctx,
        principal,
        "action.complaint_third_party",
        "complaint",
        complaint_id,
        {"third_party": value, "reason": reason},
    )
    return complaint_id


async def resolve(ctx: AppContext, principal: Principal, key: str, code: str, text: str) -> str:
    text = cs.check_text(text, code="resolution_required", minimum=3)
    complaint_id = await _id_of(ctx, key)
    async with ctx.store.begin() as conn:
        await cs.resolve(
            conn, complaint_id, code=code, text=text, actor=principal.name, at=ctx.clock()
        )
    await audit(
        ctx, principal, "action.complaint_resolve", "complaint", complaint_id, {"code": code}
    )
    return complaint_id


async def reopen(ctx: AppContext, principal: Principal, key: str, text: str) -> str:
    if not principal.role.allows(Role.SUPERVISOR):
        raise Problem("reopen_supervisor", "role supervisor required", 403)
    text = cs.check_text(text, code="note_length")
    complaint_id = await _id_of(ctx, key)
    async with ctx.store.begin() as conn:
        await cs.reopen(conn, complaint_id, text=text, actor=principal.name, at=ctx.clock())
    await audit(ctx, principal, "action.complaint_reopen", "complaint", complaint_id)
    return complaint_id


async def monthly_report(ctx: AppContext, principal: Principal, month: str) -> dict[str, Any]:
    try:
        year, number = parse_month(month)
    except ValueError as failure:
        raise Problem("bad_month", str(failure)) from failure
    async with ctx.store.read() as conn:
        found = await figures.monthly(conn, year, number, _calendar(), as_of=ctx.clock())
    await audit(ctx, principal, "view.complaint_report", "complaint_report", month)
    return found


async def annual_report(ctx: AppContext, principal: Principal, year: int) -> dict[str, Any]:
    if not 2000 <= year <= 2100:
        raise Problem("bad_month", "year must be between 2000 and 2100")
    async with ctx.store.read() as conn:
        found = await figures.annual(conn, year, _calendar(), as_of=ctx.clock())
    await audit(ctx, principal, "view.complaint_report", "complaint_report", str(year))
    return found
