"""The incident queue: the items the hub opens in `helpdesk_items` (meter silent, token
refused, P2APST link down, PIN lock-out, store stall, …) worked by the helpdesk from
open through assigned to resolved, with notes and links to what caused them.

Shared by the JSON API (routers/incidents.py) and the pages (routers/incident_pages.py),
so both check, mask and audit the same way. Every change is one transaction: a
conditional UPDATE of the item (so two people acting at once cannot both move it) and a
row in `helpdesk_item_events`; the audit row follows, like the other helpdesk actions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.api.auth import Principal, Role
from operator_data.api.deps import AppContext, audit
from operator_data.api.incident_tables import helpdesk_item_events, helpdesk_item_links
from operator_data.api.present import phone_for
from operator_data.api.queries import MAX_PAGE, BadCursor, decode_cursor, encode_cursor
from operator_data.api.tables import api_users
from operator_data.store import schema
from operator_data.store.transitions import NotFound

items = schema.helpdesk_items

STATES = ("open", "assigned", "resolved")
#: The working queue: what still needs someone.
WORKING = ("open", "assigned")
# States the store's column comment allows and older items may carry; shown as ours.
_LEGACY = {"in_progress": "assigned", "closed": "resolved"}
_STORED: dict[str, tuple[str, ...]] = {
    "open": ("open",),
    "assigned": ("assigned", "in_progress"),
    "resolved": ("resolved", "closed"),
}
ACTIONS = ("assign", "note", "resolve", "reopen", "link")
MAX_NOTE = 2000

_ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
#: What an item may be linked to, and what a reference to it looks like.
LINK_KINDS: dict[str, re.Pattern[str]] = {
    "transaction": _ULID,
    "message": _ULID,
    "meter": re.compile(r"[0-9]{11}"),
    "alarm": re.compile(r"[1-9][0-9]{0,17}"),
}


class IncidentProblem(ValueError):
    """A change the queue refuses; `code` names the page's text for it (helpdesk_texts,
    "problem_<code>"), `status` the API's answer."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def shown_state(stored: str) -> str:
    return _LEGACY.get(stored, stored)


def check_state_filter(state: str | None) -> tuple[str, ...]:
    """The stored states a filter value selects: None or "" is the working queue, "all"
    every state."""
    if state in (None, ""):
        return tuple(s for name in WORKING for s in _STORED[name])
    if state == "all":
        return ()
    if state not in _STORED:
        raise IncidentProblem(
            "bad_filter", f"state must be one of {', '.join(STATES)} or all, not {state!r}"
        )
    return _STORED[state]


@dataclass(frozen=True, slots=True)
class QueuePage:
    rows: list[dict[str, Any]]
    next_cursor: str | None


def _summary(row: Any, principal: Principal) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "category": row.category,
        "subject": row.subject,
        "state": shown_state(row.state),
        "assigned_to": row.assigned_to,
        "opened_at": row.opened_at,
        "resolved_at": row.resolved_at,
        "customer_id": row.customer_id,
        "meter_number": row.meter_number,
        "msisdn": phone_for(principal.role, row.msisdn),
        "transaction_id": row.transaction_id,
    }


async def queue(
    conn: AsyncConnection,
    principal: Principal,
    *,
    state: str | None,
    assigned_to: str | None,
    limit: int,
    cursor: str | None,
) -> QueuePage:
    """Incidents newest first, a page at a time (keyset on opened_at, id: each page reads
    `limit` rows off ix_helpdesk_items_state_opened_at or ix_helpdesk_items_opened_at)."""
    stored = check_state_filter(state)
    limit = max(1, min(limit, MAX_PAGE))
    where = [items.c.kind == "incident"]
    if stored:
        where.append(items.c.state.in_(stored))
    if assigned_to:
        where.append(items.c.assigned_to == assigned_to)
    if cursor:
        at, raw_id = decode_cursor(cursor)
        if not raw_id.isdigit():
            raise BadCursor("cursor is not valid")
        where.append(
            or_(items.c.opened_at < at, and_(items.c.opened_at == at, items.c.id < int(raw_id)))
        )
    query = (
        select(items)
        .where(*where)
        .order_by(items.c.opened_at.desc(), items.c.id.desc())
        .limit(limit + 1)
    )
    rows = list(await conn.execute(query))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].opened_at, str(rows[-1].id)) if more else None
    return QueuePage([_summary(r, principal) for r in rows], next_cursor)


async def _item(conn: AsyncConnection, item_id: int) -> Any:
    row = (
        await conn.execute(select(items).where(items.c.id == item_id, items.c.kind == "incident"))
    ).first()
    if row is None:
        raise NotFound(f"incident {item_id} does not exist")
    return row


def _links(row: Any, extra: list[Any], principal: Principal) -> list[dict[str, Any]]:
    """What the item points at: the hub's own columns first, then the helpdesk's links."""
    found: list[dict[str, Any]] = []
    for kind, value in (
        ("transaction", row.transaction_id),
        ("meter", row.meter_number),
        ("customer", row.customer_id),
        ("phone", phone_for(principal.role, row.msisdn)),
    ):
        if value:
            found.append({"kind": kind, "ref": value, "added_by": None, "added_at": None})
    found.extend(
        {"kind": e.kind, "ref": e.ref, "added_by": e.added_by, "added_at": e.added_at}
        for e in extra
    )
    return found


async def detail(conn: AsyncConnection, principal: Principal, item_id: int) -> dict[str, Any]:
    row = await _item(conn, item_id)
    events = list(
        await conn.execute(
            select(helpdesk_item_events)
            .where(helpdesk_item_events.c.item_id == item_id)
            .order_by(helpdesk_item_events.c.at, helpdesk_item_events.c.id)
        )
    )
    extra = list(
        await conn.execute(
            select(helpdesk_item_links)
            .where(helpdesk_item_links.c.item_id == item_id)
            .order_by(helpdesk_item_links.c.id)
        )
    )
    return {
        **_summary(row, principal),
        "hub_notes": row.notes,
        "links": _links(row, extra, principal),
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


def _check_note(
    note: str | None, *, required: bool, code: str = "note_length", min_length: int = 1
) -> str | None:
    """The note stripped (None for none); `code` names the problem if it is too short or
    too long."""
    text = (note or "").strip()
    if not text and not required:
        return None
    if not min_length <= len(text) <= MAX_NOTE:
        raise IncidentProblem(code, f"the note must be {min_length}-{MAX_NOTE} characters long")
    return text


async def _move(
    conn: AsyncConnection,
    item_id: int,
    *,
    allowed_from: tuple[str, ...],
    values: dict[str, Any],
) -> None:
    """Move the item if it is still in one of `allowed_from`; a concurrent change that got
    there first makes this a conflict, not a silent overwrite."""
    row = await _item(conn, item_id)
    stored_from = tuple(s for name in allowed_from for s in _STORED[name])
    result = await conn.execute(
        update(items).where(items.c.id == item_id, items.c.state.in_(stored_from)).values(**values)
    )
    if result.rowcount != 1:
        raise IncidentProblem(
            "wrong_state",
            f"incident {item_id} is {shown_state(row.state)}: cannot do this now",
            status=409,
        )


async def _event(
    conn: AsyncConnection,
    item_id: int,
    *,
    at: datetime,
    actor: str,
    action: str,
    state: str,
    assigned_to: str | None = None,
    note: str | None = None,
) -> None:
    await conn.execute(
        insert(helpdesk_item_events).values(
            item_id=item_id,
            at=at,
            actor=actor,
            action=action,
            state=state,
            assigned_to=assigned_to,
            note=note,
        )
    )


async def _active_user(conn: AsyncConnection, username: str) -> bool:
    found = await conn.scalar(
        select(api_users.c.user_id).where(
            api_users.c.username == username, api_users.c.active.is_(True)
        )
    )
    return found is not None


async def _state_of(conn: AsyncConnection, item_id: int) -> str:
    return shown_state(str((await _item(conn, item_id)).state))


async def assign(
    ctx: AppContext, principal: Principal, item_id: int, to: str, note: str | None
) -> dict[str, Any]:
    """Give the item to `to` (an active helpdesk user). Helpdesk staff may take an item
    themselves; giving it to someone else is a supervisor's call."""
    to = to.strip()
    if to != principal.name and not principal.role.allows(Role.SUPERVISOR):
        raise IncidentProblem("assign_others", "role supervisor required to assign to others", 403)
    text = _check_note(note, required=False)
    now = ctx.clock()
    async with ctx.store.begin() as conn:
        if not await _active_user(conn, to):
            raise IncidentProblem("unknown_user", f"no active user {to!r}")
        await _move(
            conn, item_id, allowed_from=WORKING, values={"state": "assigned", "assigned_to": to}
        )
        await _event(
            conn,
            item_id,
            at=now,
            actor=principal.name,
            action="assign",
            state="assigned",
            assigned_to=to,
            note=text,
        )
    await audit(ctx, principal, "action.incident_assign", "incident", str(item_id), {"to": to})
    async with ctx.store.read() as conn:
        return await detail(conn, principal, item_id)


async def add_note(
    ctx: AppContext, principal: Principal, item_id: int, note: str | None
) -> dict[str, Any]:
    text = _check_note(note, required=True)
    now = ctx.clock()
    async with ctx.store.begin() as conn:
        state = await _state_of(conn, item_id)
        await _event(
            conn, item_id, at=now, actor=principal.name, action="note", state=state, note=text
        )
    # The note itself stays in the item's history; the audit log records that one was made.
    await audit(
        ctx,
        principal,
        "action.incident_note",
        "incident",
        str(item_id),
        {"length": len(text or "")},
    )
    async with ctx.store.read() as conn:
        return await detail(conn, principal, item_id)


async def resolve(
    ctx: AppContext, principal: Principal, item_id: int, resolution: str | None
) -> dict[str, Any]:
    text = _check_note(resolution, required=True, code="resolution_required", min_length=3)
    now = ctx.clock()
    async with ctx.store.begin() as conn:
        await _move(
            conn, item_id, allowed_from=WORKING, values={"state": "resolved", "resolved_at": now}
        )
        await _event(
            conn,
            item_id,
            at=now,
            actor=principal.name,
            action="resolve",
            state="resolved",
            note=text,
        )
    await audit(ctx, principal, "action.incident_resolve", "incident", str(item_id))
    async with ctx.store.read() as conn:
        return await detail(conn, principal, item_id)


async def reopen(
    ctx: AppContext, principal: Principal, item_id: int, note: str | None
) -> dict[str, Any]:
    """Back to open and unassigned (supervisor: a resolved item counts toward the
    figures, so undoing that is not for whoever happens to look at it)."""
    if not principal.role.allows(Role.SUPERVISOR):
        raise IncidentProblem("reopen_supervisor", "role supervisor required", 403)
    text = _check_note(note, required=True)
    now = ctx.clock()
    async with ctx.store.begin() as conn:
        await _move(
            conn,
            item_id,
            allowed_from=("resolved",),
            values={"state": "open", "assigned_to": None, "resolved_at": None},
        )
        await _event(
            conn, item_id, at=now, actor=principal.name, action="reopen", state="open", note=text
        )
    await audit(ctx, principal, "action.incident_reopen", "incident", str(item_id))
    async with ctx.store.read() as conn:
        return await detail(conn, principal, item_id)


async def _exists(conn: AsyncConnection, kind: str, ref: str) -> bool:
    table, column = {
        "transaction": (schema.transactions, schema.transactions.c.id),
        "message": (schema.messages, schema.messages.c.id),
        "meter": (schema.meters, schema.meters.c.meter_number),
        "alarm": (schema.alarms, schema.alarms.c.id),
    }[kind]
    value: Any = int(ref) if kind == "alarm" else ref
    return await conn.scalar(select(column).select_from(table).where(column == value)) is not None


async def add_link(
    ctx: AppContext, principal: Principal, item_id: int, kind: str, ref: str
) -> dict[str, Any]:
    ref = ref.strip().upper()
    pattern = LINK_KINDS.get(kind)
    if pattern is None or not pattern.fullmatch(ref):
        raise IncidentProblem(
            "bad_link", f"link kind must be one of {', '.join(LINK_KINDS)} with a valid reference"
        )
    now = ctx.clock()
    try:
        async with ctx.store.begin() as conn:
            state = await _state_of(conn, item_id)
            if not await _exists(conn, kind, ref):
                raise IncidentProblem("bad_link", f"{kind} {ref} does not exist")
            await conn.execute(
                insert(helpdesk_item_links).values(
                    item_id=item_id, kind=kind, ref=ref, added_by=principal.name, added_at=now
                )
            )
            await _event(
                conn,
                item_id,
                at=now,
                actor=principal.name,
                action="link",
                state=state,
                note=f"{kind} {ref}",
            )
    except IntegrityError:
        pass  # already linked: the same link twice is the same link
    else:
        await audit(
            ctx,
            principal,
            "action.incident_link",
            "incident",
            str(item_id),
            {"kind": kind, "ref": ref},
        )
    async with ctx.store.read() as conn:
        return await detail(conn, principal, item_id)


async def helpdesk_users(conn: AsyncConnection) -> list[str]:
    """Who an item can be assigned to: the active users, by name."""
    return [
        str(u)
        for u in await conn.scalars(
            select(api_users.c.username)
            .where(api_users.c.active.is_(True))
            .order_by(api_users.c.username)
        )
    ]
