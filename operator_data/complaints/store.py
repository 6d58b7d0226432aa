"""Complaints in the store: record, list, read, move through their states, and read the
facts the report needs. Every change is one transaction: a conditional UPDATE of the
complaint (two people acting at once cannot both move it) and a row in
`complaint_events`. Who may do what, masking and the audit log are the callers' (the API,
the pages, the CLI): this module knows rows, not roles."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.complaints.report import Facts
from operator_data.complaints.tables import complaint_events, complaint_links, complaints
from operator_data.store import schema
from operator_data.store.transitions import NotFound
from operator_data.store.types import new_ulid

STATES = ("open", "assigned", "resolved")
WORKING = ("open", "assigned")
CHANNELS = ("call", "sms", "other")
#: tagihan: charges (the QoS target's own subject); gangguan: a disruption of service.
CATEGORIES = ("tagihan", "token", "gangguan", "layanan", "lainnya")
RESOLUTION_CODES = ("solved", "refund", "token_resent", "explained", "no_fault", "referred")
MAX_TEXT = 2000
TICKET_PREFIX = "ADU-"

_ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
_TICKET = re.compile(r"ADU-[0-9A-HJKMNP-TV-Z]{10}")
_METER = re.compile(r"[0-9]{11}")
_CUSTOMER = re.compile(r"[0-9]{12}")
_MSISDN = re.compile(r"\+?[0-9]{8,15}")
LINK_KINDS = ("transaction", "message")


class ComplaintProblem(ValueError):
    """A change refused; `code` names the page's text for it ("problem_<code>"), `status`
    the API's answer."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class ComplaintNotFound(NotFound):
    """No such complaint (the app answers 404, like any NotFound)."""


def ticket_for(complaint_id: str) -> str:
    """The number the customer quotes: the random tail of the complaint's ULID (50 bits;
    the unique constraint catches the astronomically rare clash)."""
    return TICKET_PREFIX + complaint_id[-10:]


def check_text(text: str | None, *, code: str, minimum: int = 1) -> str:
    stripped = (text or "").strip()
    if not minimum <= len(stripped) <= MAX_TEXT:
        raise ComplaintProblem(code, f"the text must be {minimum}-{MAX_TEXT} characters long")
    return stripped


def _optional(value: str | None, pattern: re.Pattern[str], what: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if not pattern.fullmatch(value):
        raise ComplaintProblem("bad_field", f"{what} is not valid: {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class NewComplaint:
    """A complaint to record; `check` validates what a person typed."""

    channel: str
    category: str
    text: str
    received_at: datetime
    opened_by: str
    customer_id: str | None = None
    meter_number: str | None = None
    msisdn: str | None = None
    source_message_id: str | None = None
    complaint_id: str = ""

    def check(self) -> NewComplaint:
        if self.channel not in CHANNELS:
            raise ComplaintProblem("bad_field", f"channel must be one of {', '.join(CHANNELS)}")
        if self.category not in CATEGORIES:
            raise ComplaintProblem(
                "bad_category", f"category must be one of {', '.join(CATEGORIES)}"
            )
        customer = _optional(self.customer_id, _CUSTOMER, "customer ID (12 digits)")
        meter = _optional(self.meter_number, _METER, "meter number (11 digits)")
        msisdn = _optional(self.msisdn, _MSISDN, "phone number")
        if not (customer or meter or msisdn):
            raise ComplaintProblem(
                "who_required", "give the customer ID, the meter number or the phone number"
            )
        return NewComplaint(
            channel=self.channel,
            category=self.category,
            text=check_text(self.text, code="text_length"),
            received_at=self.received_at,
            opened_by=self.opened_by,
            customer_id=customer,
            meter_number=meter,
            msisdn=msisdn,
            source_message_id=self.source_message_id,
            complaint_id=self.complaint_id,
        )


async def record(conn: AsyncConnection, new: NewComplaint) -> str:
    """Insert the complaint and its "open" event in the caller's transaction; its id."""
    complaint_id = new.complaint_id or new_ulid(new.received_at)
    await conn.execute(
        insert(complaints).values(
            id=complaint_id,
            ticket=ticket_for(complaint_id),
            channel=new.channel,
            category=new.category,
            customer_id=new.customer_id,
            meter_number=new.meter_number,
            msisdn=new.msisdn,
            text=new.text[:MAX_TEXT],
            state="open",
            third_party=False,
            received_at=new.received_at,
            opened_by=new.opened_by[:64],
            source_message_id=new.source_message_id,
        )
    )
    await _event(conn, complaint_id, at=new.received_at, actor=new.opened_by, action="open")
    return complaint_id


async def _event(
    conn: AsyncConnection,
    complaint_id: str,
    *,
    at: datetime,
    actor: str,
    action: str,
    state: str = "open",
    assigned_to: str | None = None,
    note: str | None = None,
) -> None:
    await conn.execute(
        insert(complaint_events).values(
            complaint_id=complaint_id,
            at=at,
            actor=actor[:64],
            action=action,
            state=state,
            assigned_to=assigned_to,
            note=note,
        )
    )


async def find(conn: AsyncConnection, key: str) -> Any:
    """A complaint by id or by ticket number."""
    key = key.strip().upper()
    if _TICKET.fullmatch(key):
        where = complaints.c.ticket == key
    elif _ULID.fullmatch(key):
        where = complaints.c.id == key
    else:
        raise ComplaintNotFound(f"complaint {key!r} does not exist")
    row = (await conn.execute(select(complaints).where(where))).first()
    if row is None:
        raise ComplaintNotFound(f"complaint {key} does not exist")
    return row


async def trail(conn: AsyncConnection, complaint_id: str) -> tuple[list[Any], list[Any]]:
    """The complaint's events (oldest first) and links."""
    events = list(
        await conn.execute(
            select(complaint_events)
            .where(complaint_events.c.complaint_id == complaint_id)
            .order_by(complaint_events.c.at, complaint_events.c.id)
        )
    )
    links = list(
        await conn.execute(
            select(complaint_links)
            .where(complaint_links.c.complaint_id == complaint_id)
            .order_by(complaint_links.c.id)
        )
    )
    return events, links


def state_filter(state: str | None) -> tuple[str, ...]:
    """The states a filter selects: "" the working queue, "all" every state."""
    if state in (None, ""):
        return WORKING
    if state == "all":
        return ()
    if state not in STATES:
        raise ComplaintProblem(
            "bad_filter", f"state must be one of {', '.join(STATES)} or all, not {state!r}"
        )
    return (state,)


async def listing(
    conn: AsyncConnection,
    *,
    state: str | None,
    limit: int,
    before: tuple[datetime, str] | None = None,
) -> tuple[list[Any], bool]:
    """Complaints newest first, a page (keyset on received_at, id); and whether more."""
    where: list[ColumnElement[bool]] = []
    states = state_filter(state)
    if states:
        where.append(complaints.c.state.in_(states))
    if before is not None:
        at, last_id = before
        where.append(
            or_(
                complaints.c.received_at < at,
                and_(complaints.c.received_at == at, complaints.c.id < last_id),
            )
        )
    rows = list(
        await conn.execute(
            select(complaints)
            .where(*where)
            .order_by(complaints.c.received_at.desc(), complaints.c.id.desc())
            .limit(limit + 1)
        )
    )
    return rows[:limit], len(rows) > limit


async def move(
    conn: AsyncConnection,
    complaint_id: str,
    *,
    allowed_from: tuple[str, ...],
    values: dict[str, Any],
) -> None:
    """Change the complaint if it is still in one of `allowed_from`; else a conflict."""
    row = await find(conn, complaint_id)
    result = await conn.execute(
        update(complaints)
        .where(complaints.c.id == complaint_id, complaints.c.state.in_(allowed_from))
        .values(**values)
    )
    if result.rowcount != 1:
        raise ComplaintProblem(
            "wrong_state", f"complaint {row.ticket} is {row.state}: cannot do this now", 409
        )


async def assign(
    conn: AsyncConnection, complaint_id: str, *, to: str, actor: str, at: datetime
) -> None:
    await move(
        conn, complaint_id, allowed_from=WORKING, values={"state": "assigned", "assigned_to": to}
    )
    await _event(
        conn, complaint_id, at=at, actor=actor, action="assign", state="assigned", assigned_to=to
    )


async def note(
    conn: AsyncConnection, complaint_id: str, *, text: str, actor: str, at: datetime
) -> None:
    row = await find(conn, complaint_id)
    await _event(conn, complaint_id, at=at, actor=actor, action="note", state=row.state, note=text)


async def set_third_party(
    conn: AsyncConnection,
    complaint_id: str,
    *,
    third_party: bool,
    reason: str,
    actor: str,
    at: datetime,
) -> None:
    row = await find(conn, complaint_id)
    await conn.execute(
        update(complaints).where(complaints.c.id == complaint_id).values(third_party=third_party)
    )
    flag = "yes" if third_party else "no"
    await _event(
        conn,
        complaint_id,
        at=at,
        actor=actor,
        action="third_party",
        state=row.state,
        note=f"{flag}: {reason}",
    )


async def resolve(
    conn: AsyncConnection,
    complaint_id: str,
    *,
    code: str,
    text: str,
    actor: str,
    at: datetime,
) -> None:
    if code not in RESOLUTION_CODES:
        raise ComplaintProblem(
            "bad_resolution_code", f"resolution code must be one of {', '.join(RESOLUTION_CODES)}"
        )
    await move(
        conn,
        complaint_id,
        allowed_from=WORKING,
        values={
            "state": "resolved",
            "resolved_at": at,
            "resolution_code": code,
            "resolution": text,
        },
    )
    await _event(
        conn, complaint_id, at=at, actor=actor, action="resolve", state="resolved", note=text
    )


async def reopen(
    conn: AsyncConnection, complaint_id: str, *, text: str, actor: str, at: datetime
) -> None:
    await move(
        conn,
        complaint_id,
        allowed_from=("resolved",),
        values={
            "state": "open",
            "assigned_to": None,
            "resolved_at": None,
            "resolution_code": None,
            "resolution": None,
        },
    )
    await _event(conn, complaint_id, at=at, actor=actor, action="reopen", state="open", note=text)


async def link(
    conn: AsyncConnection, complaint_id: str, *, kind: str, ref: str, actor: str, at: datetime
) -> bool:
    """Link a transaction or message that exists; False if it was linked already."""
    ref = ref.strip().upper()
    if kind not in LINK_KINDS or not _ULID.fullmatch(ref):
        raise ComplaintProblem(
            "bad_link", f"link kind must be one of {', '.join(LINK_KINDS)} with a 26-character ID"
        )
    table = schema.transactions if kind == "transaction" else schema.messages
    if await conn.scalar(select(table.c.id).where(table.c.id == ref)) is None:
        raise ComplaintProblem("bad_link", f"{kind} {ref} does not exist")
    row = await find(conn, complaint_id)
    already = await conn.scalar(
        select(complaint_links.c.id).where(
            complaint_links.c.complaint_id == complaint_id,
            complaint_links.c.kind == kind,
            complaint_links.c.ref == ref,
        )
    )
    if already is not None:
        return False
    try:
        await conn.execute(
            insert(complaint_links).values(
                complaint_id=complaint_id, kind=kind, ref=ref, added_by=actor, added_at=at
            )
        )
    except IntegrityError:  # linked by someone else a moment ago: the same link
        return False
    await _event(
        conn, complaint_id, at=at, actor=actor, action="link", state=row.state, note=f"{kind} {ref}"
    )
    return True


async def facts(conn: AsyncConnection, start: datetime, end: datetime) -> list[Facts]:
    """The report's facts of the complaints received in [start, end)."""
    rows = await conn.execute(
        select(
            complaints.c.ticket,
            complaints.c.category,
            complaints.c.received_at,
            complaints.c.resolved_at,
            complaints.c.third_party,
        )
        .where(complaints.c.received_at >= start, complaints.c.received_at < end)
        .order_by(complaints.c.received_at)
    )
    return [
        Facts(r.ticket, r.category, r.received_at, r.resolved_at, bool(r.third_party)) for r in rows
    ]


async def customer_count(conn: AsyncConnection) -> int:
    """Active customers: the base of "reports per 1,000 customers"."""
    found = await conn.scalar(
        select(func.count())
        .select_from(schema.customers)
        .where(schema.customers.c.status == "active")
    )
    return int(found or 0)
