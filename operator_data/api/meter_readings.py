"""A meter's history for "what is my meter's credit?": its readings (credit, total kWh,
voltage, power, signal), alarms and purchases, each newest first a page at a time.

Every query is a keyset page on the meter's own index (meter_number, received_at or
created_at): a page reads `limit` rows however long the meter has been reporting.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.api.queries import MAX_PAGE, BadCursor, decode_cursor, encode_cursor
from operator_data.store import schema

readings_t = schema.telemetry_readings
alarms_t = schema.alarms
txn_t = schema.transactions

#: A GSM signal quality (AT+CSQ) below this is weak enough to lose SMS.
WEAK_CSQ = 10


@dataclass(frozen=True, slots=True)
class HistoryPage:
    rows: list[dict[str, Any]]
    next_cursor: str | None


def _decimal(text: Any) -> float | None:
    if text is None:
        return None
    try:
        return float(Decimal(str(text)))
    except (InvalidOperation, ValueError):
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def _page(
    conn: AsyncConnection,
    table: Table,
    time_column: str,
    meter_number: str,
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    limit = max(1, min(limit, MAX_PAGE))
    at_col, id_col = table.c[time_column], table.c.id
    where = [table.c.meter_number == meter_number]
    if cursor:
        at, raw_id = decode_cursor(cursor)
        if table is not txn_t and not raw_id.isdigit():
            raise BadCursor("cursor is not valid")
        row_id: Any = raw_id if table is txn_t else int(raw_id)
        where.append(or_(at_col < at, and_(at_col == at, id_col < row_id)))
    rows = list(
        await conn.execute(
            select(table).where(*where).order_by(at_col.desc(), id_col.desc()).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    cursor_out = encode_cursor(last._mapping[time_column], str(last.id)) if more and last else None
    return rows, cursor_out


async def readings(
    conn: AsyncConnection, meter_number: str, *, limit: int, cursor: str | None
) -> HistoryPage:
    rows, next_cursor = await _page(conn, readings_t, "received_at", meter_number, limit, cursor)
    shaped = []
    for r in rows:
        values = r.values if isinstance(r.values, dict) else {}
        signal = _int(values.get("signal_csq"))
        shaped.append(
            {
                "id": int(r.id),
                "received_at": r.received_at,
                "meter_time": r.meter_time,
                "kind": "balance" if values.get("kind") == "balance" else "telemetry",
                "credit_kwh": _decimal(r.credit_kwh),
                "total_kwh": _decimal(r.total_kwh),
                "voltage_v": _decimal(values.get("voltage_v")),
                "power_w": _int(values.get("power_w")),
                "signal_csq": signal,
                "signal_weak": signal is not None and signal < WEAK_CSQ,
                "message_id": r.message_id,
            }
        )
    return HistoryPage(shaped, next_cursor)


async def alarms(
    conn: AsyncConnection, meter_number: str, *, limit: int, cursor: str | None
) -> HistoryPage:
    rows, next_cursor = await _page(conn, alarms_t, "received_at", meter_number, limit, cursor)
    return HistoryPage(
        [
            {
                "id": int(r.id),
                "code": str(r.code).upper(),
                "severity": r.severity,
                "meter_time": r.meter_time,
                "received_at": r.received_at,
                "acknowledged_by": r.acknowledged_by,
                "acknowledged_at": r.acknowledged_at,
                "cleared_at": r.cleared_at,
                "message_id": r.message_id,
            }
            for r in rows
        ],
        next_cursor,
    )


async def purchases(
    conn: AsyncConnection, meter_number: str, *, limit: int, cursor: str | None
) -> HistoryPage:
    """The meter's purchases with the kWh each token carried; the token only masked."""
    rows, next_cursor = await _page(conn, txn_t, "created_at", meter_number, limit, cursor)
    return HistoryPage(
        [
            {
                "transaction_id": r.id,
                "created_at": r.created_at,
                "amount_idr": int(r.amount_idr),
                "kwh": _decimal(r.kwh),
                "token_masked": r.token_masked,
                "state": r.state,
                "state_at": r.state_at,
                "meter_outcome": r.meter_outcome,
            }
            for r in rows
        ],
        next_cursor,
    )
