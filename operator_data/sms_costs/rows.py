"""The SMS cost file's format, with no I/O: columns, row order, cells, manifest.

One row per (customer, flow, purpose, price version) with the number of SMS the hub was
charged for that WIB day and their amount. The column table is the schema; bump
SCHEMA_VERSION when it changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime

from operator_data.csv_cells import SafeWriter

SCHEMA_VERSION = 1
REPORT = "sms_costs"


@dataclass(frozen=True, slots=True)
class CostGroup:
    """The charged SMS of one customer, flow, purpose and price version in a day."""

    customer_id: str  # "" if the ledger row has none
    flow: str  # one of the five flows (store.states.Flow)
    purpose: str  # the message's kind as logged ("" if none)
    price_version: str
    sms_count: int
    amount_idr: int

    def sort_key(self) -> tuple[str, str, str, str]:
        return (self.customer_id, self.flow, self.purpose, self.price_version)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    description: str


COLUMNS: tuple[Column, ...] = (
    Column("date", "the WIB calendar day the SMS were charged (YYYY-MM-DD)"),
    Column("customer_id", "12-digit ID pelanggan the SMS are charged to"),
    Column(
        "flow",
        "hub_to_customer, hub_to_meter, meter_to_hub, meter_to_customer or customer_to_hub",
    ),
    Column(
        "purpose",
        "what the SMS was for, as the hub logged it: the frame type of a meter frame (e.g."
        " TOKEN_DELIVERY), the reply kind to a customer (e.g. receipt, balance, low-credit),"
        " the command word a customer sent (e.g. BELI); empty when not recorded",
    ),
    Column("price_version", "the hub's price table in force when the SMS was charged"),
    Column("sms_count", "successful SMS (sent, delivered or processed), each counted once"),
    Column("amount_idr", "their cost at that price version, rupiah (integer)"),
)
HEADER = tuple(column.name for column in COLUMNS)


def file_stem(day: date) -> str:
    return f"sms-costs-{day:%Y%m%d}"


def cells(day: date, group: CostGroup) -> list[str | int]:
    """One CSV row; text cells are neutralised when written (`SafeWriter`)."""
    return [
        day.isoformat(),
        group.customer_id,
        group.flow,
        group.purpose,
        group.price_version,
        group.sms_count,
        group.amount_idr,
    ]


class FileOrder:
    """Puts groups in the file's order: by customer, then flow, purpose and price version
    (code-point order, the same on every database).

    The groups must come customer by customer (each customer's groups adjacent), as the
    database's ORDER BY customer_id gives them; only one customer's handful of groups is
    held at a time, so a day of a million customers streams. The database's order of the
    other columns is not used: PostgreSQL's collations differ from SQLite's.
    """

    def __init__(self) -> None:
        self._pending: list[CostGroup] = []

    def push(self, group: CostGroup) -> list[CostGroup]:
        """Take `group`; return the groups now ready (the previous customer's, sorted)."""
        ready: list[CostGroup] = []
        if self._pending and group.customer_id != self._pending[0].customer_id:
            ready = self.finish()
        self._pending.append(group)
        return ready

    def finish(self) -> list[CostGroup]:
        """The groups still held, sorted."""
        ready, self._pending = sorted(self._pending, key=CostGroup.sort_key), []
        return ready


def in_file_order(groups: Iterable[CostGroup]) -> Iterator[CostGroup]:
    order = FileOrder()
    for group in groups:
        yield from order.push(group)
    yield from order.finish()


class _Parts:
    """A text sink that hands back what was written since the last `take`."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def write(self, text: str, /) -> int:
        self._parts.append(text)
        return len(text)

    def take(self) -> str:
        text, self._parts = "".join(self._parts), []
        return text


class LineEncoder:
    """The file's lines, formula-safe (operator_data/csv_cells.SafeWriter): `header()`,
    then `line(group)` per group."""

    def __init__(self, day: date) -> None:
        self.day = day
        self._sink = _Parts()
        self._writer = SafeWriter(self._sink, lineterminator="\n")

    def header(self) -> str:
        self._writer.writerow(HEADER)
        return self._sink.take()

    def line(self, group: CostGroup) -> str:
        if group.sms_count < 1 or group.amount_idr < 0:
            raise ValueError(f"bad cost group {group!r}: counts start at 1, amounts at 0")
        self._writer.writerow(cells(self.day, group))
        return self._sink.take()


def csv_text(day: date, groups: Iterable[CostGroup]) -> str:
    """The whole file for `groups` (already in file order): for tests and small days."""
    encoder = LineEncoder(day)
    return encoder.header() + "".join(encoder.line(group) for group in groups)


@dataclass(frozen=True, slots=True)
class CostManifest:
    schema_version: int
    report: str
    date: str
    period_start: str  # UTC ISO 8601: 00:00 WIB of the day
    period_end: str  # UTC ISO 8601: 24:00 WIB of the day (exclusive)
    file: str
    columns: list[str]
    record_count: int  # data rows, the header not counted
    sms_count: int
    amount_idr: int
    sha256: str  # of the CSV file's bytes

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> CostManifest:
        return cls(**json.loads(text))


@dataclass(slots=True)
class Totals:
    """What the manifest counts, added up as the rows go by."""

    record_count: int = 0
    sms_count: int = 0
    amount_idr: int = 0

    def add(self, group: CostGroup) -> CostGroup:
        self.record_count += 1
        self.sms_count += group.sms_count
        self.amount_idr += group.amount_idr
        return group

    def manifest(
        self, day: date, start: datetime, end: datetime, file: str, sha256: str
    ) -> CostManifest:
        return CostManifest(
            schema_version=SCHEMA_VERSION,
            report=REPORT,
            date=day.isoformat(),
            period_start=start.isoformat(),
            period_end=end.isoformat(),
            file=file,
            columns=list(HEADER),
            record_count=self.record_count,
            sms_count=self.sms_count,
            amount_idr=self.amount_idr,
            sha256=sha256,
        )
