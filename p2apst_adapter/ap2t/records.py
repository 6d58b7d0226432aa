"""One AP2T record: a meter's day. The column table is the schema; bump SCHEMA_VERSION on change.

Text columns (`Column.text`) are neutralised against spreadsheet formulas (`cells.py`); the
rule changes no valid meter number, customer ID or alarm code, so the version stays 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from p2apst_adapter.ap2t.cells import neutralise

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class DailyRecord:
    day: date
    meter_number: str
    customer_id: str
    last_reading_at: datetime | None  # UTC, the meter's own timestamp of its last reading
    last_reading_kwh: Decimal | None  # cumulative register
    consumption_kwh: Decimal | None  # used during `day`
    remaining_credit_kwh: Decimal | None
    alarms: tuple[str, ...]  # alarm kinds raised during the day, in order
    sms_in: int
    sms_out: int
    sms_failed: int
    last_contact_at: datetime | None  # UTC, when the hub last heard from the meter
    correction_of: date | None = None  # set when this row corrects an earlier day's batch


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    description: str
    render: Callable[[DailyRecord], str]
    # Free text (identifiers, alarm codes as the meter sent them): neutralised on output.
    # The other columns are numbers and times AP2T parses exactly, and never neutralised.
    text: bool = False


def _time(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        raise ValueError(f"AP2T times must be timezone-aware, got {value!r}")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _kwh(value: Decimal | None) -> str:
    return "" if value is None else f"{value.quantize(Decimal('0.001'))}"


COLUMNS: tuple[Column, ...] = (
    Column(
        "date",
        "the day the row describes (YYYY-MM-DD, WIB calendar day)",
        lambda r: r.day.isoformat(),
    ),
    Column("meter_number", "11-digit PLN meter number", lambda r: r.meter_number, text=True),
    Column("customer_id", "12-digit ID pelanggan", lambda r: r.customer_id, text=True),
    Column(
        "last_reading_at",
        "meter timestamp of the last reading, UTC ISO 8601",
        lambda r: _time(r.last_reading_at),
    ),
    Column(
        "last_reading_kwh",
        "cumulative kWh register at that reading",
        lambda r: _kwh(r.last_reading_kwh),
    ),
    Column("consumption_kwh", "kWh used during the day", lambda r: _kwh(r.consumption_kwh)),
    Column(
        "remaining_credit_kwh", "prepaid credit left, kWh", lambda r: _kwh(r.remaining_credit_kwh)
    ),
    Column(
        "alarms",
        "alarm kinds raised during the day, separated by ';'",
        lambda r: ";".join(r.alarms),
        text=True,
    ),
    Column("sms_in", "SMS received from the meter", lambda r: str(r.sms_in)),
    Column("sms_out", "SMS sent to the meter", lambda r: str(r.sms_out)),
    Column("sms_failed", "SMS to the meter that failed", lambda r: str(r.sms_failed)),
    Column(
        "last_contact_at",
        "when the hub last heard from the meter, UTC",
        lambda r: _time(r.last_contact_at),
    ),
    Column(
        "correction_of",
        "empty, or the earlier date this row corrects",
        lambda r: r.correction_of.isoformat() if r.correction_of else "",
    ),
)


def render(record: DailyRecord) -> list[str]:
    """The record's CSV cells, text cells neutralised (`cells.neutralise`)."""
    return [
        neutralise(column.render(record)) if column.text else column.render(record)
        for column in COLUMNS
    ]
