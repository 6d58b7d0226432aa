"""Read models of the helpdesk: keyset-paginated message search, timelines,
per-transaction stages with SLA status, the SLA dashboard and the alarm queue.

Every query is shaped for an index of store/schema.py (or migration 0002_helpdesk):
a search is `WHERE <one indexed column> = ? [AND created_at range] ORDER BY created_at
DESC, id DESC` with a keyset condition instead of OFFSET, so page 10 000 costs what
page 1 costs on a table of tens of millions of rows.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from operator_data.settings import SlaTargets
from operator_data.store import schema
from operator_data.store.states import TRANSACTION_MACHINE, Direction, Flow, TransactionState

msg = schema.messages
txn = schema.transactions
tst = schema.transaction_states
alm = schema.alarms
sla = schema.sla_events

MAX_PAGE = 200


class BadCursor(ValueError):
    """The pagination cursor was not produced by this API."""


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, row_id = raw.split("|", 1)
        parsed = datetime.fromisoformat(stamp)
        if parsed.tzinfo is None:
            raise ValueError("naive time")
        when = parsed.astimezone(UTC)  # OverflowError near year 1 / 9999
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError) as error:
        raise BadCursor("cursor is not valid") from error
    if not row_id or len(row_id) > 26:
        raise BadCursor("cursor is not valid")
    return when, row_id


@dataclass(frozen=True, slots=True)
class MessageFilter:
    msisdn: str | None = None  # normalised
    meter_number: str | None = None
    customer_id: str | None = None
    transaction_id: str | None = None
    state: str | None = None
    flow: Flow | None = None
    direction: Direction | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.msisdn is not None:
            where.append(msg.c.peer_msisdn == self.msisdn)
        if self.meter_number is not None:
            where.append(msg.c.meter_number == self.meter_number)
        if self.customer_id is not None:
            where.append(msg.c.customer_id == self.customer_id)
        if self.transaction_id is not None:
            where.append(msg.c.transaction_id == self.transaction_id)
        if self.state is not None:
            where.append(msg.c.state == self.state)
        if self.flow is not None:
            where.append(msg.c.flow == self.flow.value)
        if self.direction is not None:
            where.append(msg.c.direction == self.direction.value)
        if self.since is not None:
            where.append(msg.c.created_at >= self.since)
        if self.until is not None:
            where.append(msg.c.created_at < self.until)
        return where


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


MESSAGE_COLUMNS = (
    msg.c.id,
    msg.c.created_at,
    msg.c.direction,
    msg.c.flow,
    msg.c.peer_msisdn,
    msg.c.meter_number,
    msg.c.customer_id,
    msg.c.gateway_id,
    msg.c.modem_id,
    msg.c.kind,
    msg.c.body,
    msg.c.state,
    msg.c.state_at,
    msg.c.retries,
    msg.c.reject_reason,
    msg.c.transaction_id,
)


async def search_messages(
    conn: AsyncConnection, where: MessageFilter, *, limit: int, cursor: str | None
) -> Page:
    limit = max(1, min(limit, MAX_PAGE))
    conditions = where.conditions()
    if cursor is not None:
        at, row_id = decode_cursor(cursor)
        conditions.append(
            or_(msg.c.created_at < at, and_(msg.c.created_at == at, msg.c.id < row_id))
        )
    query = (
        select(*MESSAGE_COLUMNS)
        .where(*conditions)
        .order_by(msg.c.created_at.desc(), msg.c.id.desc())
        .limit(limit + 1)
    )
    rows = [dict(r._mapping) for r in await conn.execute(query)]
    more = len(rows) > limit
    rows = rows[:limit]
    await link_requests(conn, rows)
    next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None
    return Page(rows, next_cursor)


# A purchase is created a moment after the SMS that asked for it; the margin only widens
# the index range read, it never links a wrong row (the message id must match).
_REQUEST_MARGIN = timedelta(hours=1)


async def link_requests(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Give each customer request on the page (BELI ...) the transaction it started.

    Only the hub's own SMS carry `messages.transaction_id`; the customer's request is
    linked the other way (`transactions.request_message_id`). A stuck purchase, which has
    no token SMS yet, was therefore not linked from the phone's log. Read through the
    (phone_msisdn, created_at) index: the page's senders, since its oldest request.
    """
    requests = [
        r
        for r in rows
        if r["transaction_id"] is None
        and r["direction"] == Direction.IN.value
        and r["flow"] == Flow.CUSTOMER_TO_HUB.value
        and r["peer_msisdn"] is not None
    ]
    if not requests:
        return
    since = min(r["created_at"] for r in requests) - _REQUEST_MARGIN
    found = await conn.execute(
        select(txn.c.id, txn.c.request_message_id).where(
            txn.c.phone_msisdn.in_(sorted({r["peer_msisdn"] for r in requests})),
            txn.c.created_at >= since,
            txn.c.request_message_id.in_([r["id"] for r in requests]),
        )
    )
    by_message = {m: t for t, m in found}
    for r in requests:
        r["transaction_id"] = by_message.get(r["id"])


# -- timelines ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    at: datetime
    category: str  # sms | transaction | alarm
    title: str
    detail: str
    ref: str | None = None  # transaction id / message id / alarm id
    problem: bool = False


def _sms_event(row: Any) -> TimelineEvent:
    arrow = "→" if row.direction == Direction.OUT.value else "←"
    title = f"SMS {arrow} {row.kind or row.flow}"
    detail = f"{row.flow} · {row.state}"
    if row.reject_reason:
        detail += f" · {row.reject_reason}"
    return TimelineEvent(
        row.created_at,
        "sms",
        title,
        detail,
        row.transaction_id or row.id,
        problem=row.state in ("failed", "expired", "rejected"),
    )


_PROBLEM_STATES = frozenset(
    {
        TransactionState.DECLINED.value,
        TransactionState.METER_REJECTED.value,
        TransactionState.METER_TIMEOUT.value,
        TransactionState.ADVISING.value,
    }
)


async def timeline(
    conn: AsyncConnection,
    *,
    meter_numbers: Sequence[str] = (),
    customer_id: str | None = None,
    limit: int = 200,
) -> list[TimelineEvent]:
    """Every SMS, transaction stage (the P2APST exchange and token delivery, token
    masked) and alarm of the meters / customer, newest first."""
    events: list[TimelineEvent] = []
    sms_where: list[ColumnElement[bool]] = []
    txn_where: list[ColumnElement[bool]] = []
    if meter_numbers:
        sms_where.append(msg.c.meter_number.in_(meter_numbers))
        txn_where.append(txn.c.meter_number.in_(meter_numbers))
    if customer_id is not None:
        sms_where.append(msg.c.customer_id == customer_id)
        txn_where.append(txn.c.customer_id == customer_id)
    if not sms_where:
        return []
    rows = await conn.execute(
        select(*MESSAGE_COLUMNS)
        .where(or_(*sms_where))
        .order_by(msg.c.created_at.desc(), msg.c.id.desc())
        .limit(limit)
    )
    events.extend(_sms_event(r) for r in rows)
    recent = (
        select(txn.c.id)
        .where(or_(*txn_where))
        .order_by(txn.c.created_at.desc())
        .limit(limit)
        .subquery()
    )
    stages = await conn.execute(
        select(tst.c.transaction_id, tst.c.state, tst.c.at, tst.c.detail, txn.c.token_masked)
        .join(txn, txn.c.id == tst.c.transaction_id)
        .where(tst.c.transaction_id.in_(select(recent.c.id)))
    )
    for r in stages:
        detail = r.detail or ""
        if r.state == TransactionState.TOKEN_ISSUED.value and r.token_masked:
            detail = f"token {r.token_masked}" + (f" · {detail}" if detail else "")
        events.append(
            TimelineEvent(
                r.at,
                "transaction",
                f"{r.state}",
                detail,
                r.transaction_id,
                problem=r.state in _PROBLEM_STATES,
            )
        )
    if meter_numbers:
        alarms = await conn.execute(
            select(alm)
            .where(alm.c.meter_number.in_(meter_numbers))
            .order_by(alm.c.received_at.desc())
            .limit(limit)
        )
        for a in alarms:
            events.append(
                TimelineEvent(
                    a.received_at,
                    "alarm",
                    f"alarm {a.code}",
                    f"{a.severity}" + (" · ack " + a.acknowledged_by if a.acknowledged_by else ""),
                    str(a.id),
                    problem=a.acknowledged_at is None,
                )
            )
    events.sort(key=lambda e: e.at, reverse=True)
    return events[:limit]


# -- transactions ------------------------------------------------------------------------

# (metric name as in sla_events, from-state(s), to-state(s), SlaTargets attribute)
SLA_STAGES: tuple[tuple[str, frozenset[str], frozenset[str], str], ...] = (
    (
        "token_to_network",
        frozenset({"token_issued"}),
        frozenset({"token_sent"}),
        "token_to_network_s",
    ),
    (
        "meter_answer",
        frozenset({"token_sent"}),
        frozenset({"applied", "meter_rejected", "meter_timeout"}),
        "meter_answer_s",
    ),
    (
        "report_to_p2apst",
        frozenset({"applied", "meter_rejected", "meter_timeout"}),
        frozenset({"reported"}),
        "report_to_p2apst_s",
    ),
)

# The path a successful purchase takes, to show where a transaction stopped.
HAPPY_PATH = (
    TransactionState.REQUESTED,
    TransactionState.SUBMITTED,
    TransactionState.TOKEN_ISSUED,
    TransactionState.TOKEN_SENT,
    TransactionState.APPLIED,
    TransactionState.REPORTED,
)


@dataclass(frozen=True, slots=True)
class Stage:
    state: str
    at: datetime
    detail: str | None


@dataclass(frozen=True, slots=True)
class SlaCheck:
    metric: str
    target_s: float
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None  # None while the stage is still open
    status: str  # met | breached | pending | not_applicable
    elapsed_s: float | None = None  # how long an open stage has been running


@dataclass(frozen=True, slots=True)
class TransactionView:
    row: dict[str, Any]
    stages: list[Stage]
    sla: list[SlaCheck]
    messages: list[dict[str, Any]]
    terminal: bool
    next_expected: list[str] = field(default_factory=list)


async def transaction_view(
    conn: AsyncConnection, transaction_id: str, targets: SlaTargets, now: datetime
) -> TransactionView | None:
    row = (
        await conn.execute(
            select(
                txn.c.id,
                txn.c.meter_number,
                txn.c.customer_id,
                txn.c.phone_msisdn,
                txn.c.amount_idr,
                txn.c.kwh,
                txn.c.token_masked,
                txn.c.pln_ref,
                txn.c.switcher_ref,
                txn.c.stan,
                txn.c.response_code,
                txn.c.meter_outcome,
                txn.c.state,
                txn.c.state_at,
                txn.c.created_at,
            ).where(txn.c.id == transaction_id)
        )
    ).first()
    if row is None:
        return None
    stages = [
        Stage(r.state, r.at, r.detail)
        for r in await conn.execute(
            select(tst.c.state, tst.c.at, tst.c.detail)
            .where(tst.c.transaction_id == transaction_id)
            .order_by(tst.c.at, tst.c.id)
        )
    ]
    messages = [
        dict(r._mapping)
        for r in await conn.execute(
            select(*MESSAGE_COLUMNS)
            .where(msg.c.transaction_id == transaction_id)
            .order_by(msg.c.created_at, msg.c.id)
        )
    ]
    state = TransactionState(row.state)
    terminal = TRANSACTION_MACHINE.is_terminal(state)
    nexts = sorted(s.value for s in TRANSACTION_MACHINE.transitions.get(state, frozenset()))
    return TransactionView(
        row=dict(row._mapping),
        stages=stages,
        sla=sla_checks(stages, targets, now),
        messages=messages,
        terminal=terminal,
        next_expected=nexts,
    )


def sla_checks(stages: Sequence[Stage], targets: SlaTargets, now: datetime) -> list[SlaCheck]:
    """Each SLA stage measured from the state timestamps: the first entry into a start
    state to the first later entry into an end state; open stages run against `now`."""
    checks = []
    for metric, starts, ends, attribute in SLA_STAGES:
        target = float(getattr(targets, attribute))
        start = next((s.at for s in stages if s.state in starts), None)
        if start is None:
            checks.append(SlaCheck(metric, target, None, None, None, "not_applicable"))
            continue
        end = next((s.at for s in stages if s.state in ends and s.at >= start), None)
        if end is None:
            elapsed = (now - start).total_seconds()
            status = "breached" if elapsed > target else "pending"
            checks.append(SlaCheck(metric, target, start, None, None, status, elapsed))
            continue
        duration = (end - start).total_seconds()
        status = "met" if duration <= target else "breached"
        checks.append(SlaCheck(metric, target, start, end, duration, status))
    return checks


# -- SLA dashboard -----------------------------------------------------------------------
# The SLA figures themselves come from operator_data.sla (the same report as the CLI).


async def daily_sms_counts(conn: AsyncConnection, day_starts: Sequence[datetime]) -> list[int]:
    """SMS logged per day (one indexed range count per day, portable between SQLite and
    PostgreSQL)."""
    result = []
    for start in day_starts:
        end = start + timedelta(days=1)
        count = await conn.scalar(
            select(func.count())
            .select_from(msg)
            .where(msg.c.created_at >= start, msg.c.created_at < end)
        )
        result.append(int(count or 0))
    return result


# -- alarms ------------------------------------------------------------------------------


async def alarm_queue(
    conn: AsyncConnection, *, include_acknowledged: bool, limit: int
) -> list[dict[str, Any]]:
    query = select(alm).order_by(alm.c.received_at.desc()).limit(limit)
    if not include_acknowledged:
        query = query.where(alm.c.acknowledged_at.is_(None))
    return [dict(r._mapping) for r in await conn.execute(query)]


# -- metrics -----------------------------------------------------------------------------


async def message_counts(conn: AsyncConnection, since: datetime) -> list[tuple[str, str, str, int]]:
    rows = await conn.execute(
        select(msg.c.direction, msg.c.flow, msg.c.state, func.count())
        .where(msg.c.created_at >= since)
        .group_by(msg.c.direction, msg.c.flow, msg.c.state)
    )
    return [(d, f, s, int(n)) for d, f, s, n in rows]


async def breach_counts(conn: AsyncConnection, since: datetime) -> list[tuple[str, int]]:
    rows = await conn.execute(
        select(sla.c.metric, func.count())
        .where(sla.c.met.is_(False), sla.c.started_at >= since)
        .group_by(sla.c.metric)
    )
    return [(m, int(n)) for m, n in rows]
