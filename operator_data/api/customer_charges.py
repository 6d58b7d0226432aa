"""One customer's SMS charges from the cost ledger (`cost_ledger`, written by
hub/charging.py): totals per flow and purpose for a period, the charges one by one a page
at a time, and the whole period as CSV.

The same join as the operator's daily file (sms_costs/export.py): the purpose is the
charged message's kind. Every query is bounded by the customer and a period of at most
MAX_DAYS WIB days, on ix_cost_ledger_customer_id_charged_at.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.api.present import WIB, wib
from operator_data.api.queries import MAX_PAGE, BadCursor, decode_cursor, encode_cursor
from operator_data.csv_cells import SafeWriter
from operator_data.store import schema

ledger, messages = schema.cost_ledger, schema.messages

#: The longest period one request may cover (a quarter: the QoS reports are quarterly).
MAX_DAYS = 93
CSV_COLUMNS = (
    "charged_at_wib",
    "customer_id",
    "message_id",
    "flow",
    "purpose",
    "price_version",
    "amount_idr",
)


class BadPeriod(ValueError):
    """The period asked for cannot be answered as given."""


@dataclass(frozen=True, slots=True)
class Period:
    first: date  # WIB days, both included
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=WIB).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=WIB).astimezone(UTC)


#: Days a period may name: the ledger has nothing outside them, and the bounds keep the
#: WIB-to-UTC arithmetic away from the ends of the calendar (year 1, year 9999).
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)


def _day(text: str, name: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError as error:
        raise BadPeriod(f"{name} must be a date YYYY-MM-DD, not {text[:20]!r}") from error
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BadPeriod(f"{name} must be between {FIRST_DAY} and {LAST_DAY}")
    return day


def parse_period(first: str | None, last: str | None, now: datetime) -> Period:
    """`first`..`last` (WIB dates, both included); missing: this WIB month up to today."""
    today = now.astimezone(WIB).date()
    start = _day(first, "from") if first else today.replace(day=1)
    end = _day(last, "until") if last else max(today, start)
    if end < start:
        raise BadPeriod("until is before from")
    if (end - start).days + 1 > MAX_DAYS:
        raise BadPeriod(f"a period covers at most {MAX_DAYS} days")
    return Period(start, end)


def _purpose() -> Any:
    # literal_column, not a bound '': PostgreSQL must see one expression in SELECT and
    # GROUP BY (see sms_costs/export.py).
    return func.coalesce(messages.c.kind, literal_column("''"))


def _in_period(customer_id: str, period: Period) -> list[Any]:
    return [
        ledger.c.customer_id == customer_id,
        ledger.c.charged_at >= period.start,
        ledger.c.charged_at < period.end,
    ]


_JOINED = ledger.join(messages, messages.c.id == ledger.c.message_id)


async def totals(conn: AsyncConnection, customer_id: str, period: Period) -> dict[str, Any]:
    purpose = _purpose()
    rows = await conn.execute(
        select(
            ledger.c.flow,
            purpose.label("purpose"),
            ledger.c.price_version,
            func.count().label("sms_count"),
            func.sum(ledger.c.amount_idr).label("amount_idr"),
        )
        .select_from(_JOINED)
        .where(*_in_period(customer_id, period))
        .group_by(ledger.c.flow, purpose, ledger.c.price_version)
        .order_by(ledger.c.flow, purpose, ledger.c.price_version)
    )
    groups = [
        {
            "flow": str(r.flow),
            "purpose": str(r.purpose),
            "price_version": str(r.price_version),
            "sms_count": int(r.sms_count),
            "amount_idr": int(r.amount_idr),
        }
        for r in rows
    ]
    return {
        "groups": groups,
        "sms_count": sum(g["sms_count"] for g in groups),
        "amount_idr": sum(g["amount_idr"] for g in groups),
    }


def _columns() -> tuple[Any, ...]:
    return (
        ledger.c.id,
        ledger.c.charged_at,
        ledger.c.message_id,
        ledger.c.flow,
        _purpose().label("purpose"),
        ledger.c.price_version,
        ledger.c.amount_idr,
    )


def _row(r: Any) -> dict[str, Any]:
    return {
        "charged_at": r.charged_at,
        "message_id": r.message_id,
        "flow": r.flow,
        "purpose": r.purpose,
        "price_version": r.price_version,
        "amount_idr": int(r.amount_idr),
    }


async def charges(
    conn: AsyncConnection, customer_id: str, period: Period, *, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The period's charges newest first, `limit` at a time."""
    limit = max(1, min(limit, MAX_PAGE))
    where = _in_period(customer_id, period)
    if cursor:
        at, raw_id = decode_cursor(cursor)
        if not raw_id.isdigit():
            raise BadCursor("cursor is not valid")
        where.append(
            or_(
                ledger.c.charged_at < at, and_(ledger.c.charged_at == at, ledger.c.id < int(raw_id))
            )
        )
    rows = list(
        await conn.execute(
            select(*_columns())
            .select_from(_JOINED)
            .where(*where)
            .order_by(ledger.c.charged_at.desc(), ledger.c.id.desc())
            .limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].charged_at, str(rows[-1].id)) if more else None
    return [_row(r) for r in rows], next_cursor


async def csv_lines(conn: AsyncConnection, customer_id: str, period: Period) -> AsyncIterator[str]:
    """The header, then one line per charge, oldest first; text cells neutralised
    (csv_cells.SafeWriter) because a message kind or price version is data, not trusted."""
    buffer = io.StringIO()
    writer = SafeWriter(buffer, lineterminator="\n")

    def take() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield take()
    result = await conn.stream(
        select(*_columns())
        .select_from(_JOINED)
        .where(*_in_period(customer_id, period))
        .order_by(ledger.c.charged_at, ledger.c.id)
    )
    async for r in result:
        writer.writerow(
            [
                wib(r.charged_at),
                customer_id,
                r.message_id,
                r.flow,
                r.purpose,
                r.price_version,
                int(r.amount_idr),
            ]
        )
        yield take()


def csv_filename(customer_id: str, period: Period) -> str:
    return f"sms-charges-{customer_id}-{period.first:%Y%m%d}-{period.last:%Y%m%d}.csv"
