"""Bulk import and export of the registry as CSV: one line per meter.

Columns (header row required, any order; see docs/store.md):

  customer_id, customer_name, tariff_segment, power_va      the customer (12-digit ID)
  meter_number, supply_group_code, tariff_index,            the meter and its STS key data
  key_revision, key_type, base_date, meter_state
  comms_key_id, comms_key_hex                               optional SMS-frame key (32 hex)
  sim_msisdn, sim_iccid, sim_operator, sim_m2m,             optional SIM bound to the meter
  sim_responsible_person
  phone_msisdns                                             customer's phones, ';'-separated

A line with all meter and SIM columns blank registers a customer without a meter. Lines
of the same customer must agree on the customer columns. Import is all-or-nothing: every
problem is reported (line, column, reason) and nothing is written unless there are none.
Export writes the same columns; `comms_key_hex` is always left blank (keys never leave
sealed) and PINs are not exported at all. A text cell a spreadsheet would take for a
formula (= + - @ first) is written with a leading quote, which import takes off again
(operator_data/csv_cells.py).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.msisdn import MsisdnError, normalise
from operator_data.crypto.sealing import seal
from operator_data.csv_cells import SafeWriter, restore
from operator_data.registry.models import CustomerIn, MeterIn, RegistryError, check_iccid
from operator_data.registry.registry import COMMS_KEY_BYTES, Registry
from operator_data.store import schema
from operator_data.store.states import MeterState

CUSTOMER_COLUMNS = ("customer_id", "customer_name", "tariff_segment", "power_va")
METER_COLUMNS = (
    "meter_number",
    "supply_group_code",
    "tariff_index",
    "key_revision",
    "key_type",
    "base_date",
    "meter_state",
    "comms_key_id",
    "comms_key_hex",
)
SIM_COLUMNS = ("sim_msisdn", "sim_iccid", "sim_operator", "sim_m2m", "sim_responsible_person")
COLUMNS: tuple[str, ...] = (*CUSTOMER_COLUMNS, *METER_COLUMNS, *SIM_COLUMNS, "phone_msisdns")
_CHUNK = 1000
_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"0", "false", "no", "n"}


@dataclass(frozen=True, slots=True)
class ImportIssue:
    line: int
    column: str
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "column": self.column, "reason": self.reason}


class ImportRejected(RegistryError):
    """The file was not imported; `issues` lists every problem found."""

    def __init__(self, issues: list[ImportIssue]) -> None:
        super().__init__(f"import rejected: {len(issues)} problem(s); nothing was imported")
        self.issues = issues


@dataclass(frozen=True, slots=True)
class ImportSummary:
    lines: int
    customers_created: int
    customers_existing: int
    meters: int
    sims: int
    phones: int

    def as_dict(self) -> dict[str, int]:
        return {
            "lines": self.lines,
            "customers_created": self.customers_created,
            "customers_existing": self.customers_existing,
            "meters": self.meters,
            "sims": self.sims,
            "phones": self.phones,
        }


@dataclass(slots=True)
class _SimRow:
    msisdn: str
    iccid: str
    operator: str
    m2m: bool
    responsible_person: str


@dataclass(slots=True)
class _Line:
    number: int
    customer: CustomerIn
    meter: MeterIn | None = None
    meter_state: MeterState = MeterState.REQUESTED
    comms_key_id: str | None = None
    comms_key: bytes | None = None
    sim: _SimRow | None = None
    phones: list[str] = field(default_factory=list)


class _Collector:
    def __init__(self) -> None:
        self.issues: list[ImportIssue] = []

    def add(self, line: int, column: str, reason: str) -> None:
        self.issues.append(ImportIssue(line, column, reason))


def _parse_line(number: int, row: dict[str, str], issues: _Collector) -> _Line | None:
    before = len(issues.issues)
    get = {k: (row.get(k) or "").strip() for k in COLUMNS}

    def integer(column: str) -> int:
        try:
            return int(get[column])
        except ValueError:
            issues.add(number, column, f"{get[column]!r} is not a whole number")
            return -1

    def field_check(column: str, pattern: str, what: str) -> str:
        if not re.fullmatch(pattern, get[column]):
            issues.add(number, column, f"{get[column]!r}: {what}")
        return get[column]

    customer_id = field_check("customer_id", r"[0-9]{12}", "customer ID must be 12 digits")
    name = get["customer_name"]
    if not name or len(name) > 200:
        issues.add(number, "customer_name", "name must be 1-200 characters")
    segment = field_check(
        "tariff_segment", r"[A-Z0-9/-]{1,16}", "tariff segment must be 1-16 of A-Z 0-9 / -"
    )
    power = integer("power_va")
    if power != -1 and not 0 < power <= 10_000_000:
        issues.add(number, "power_va", f"{power} is not a plausible VA rating")
    customer: CustomerIn | None = None
    if len(issues.issues) == before:
        customer = CustomerIn(customer_id, name, segment, power)

    meter_given = any(get[k] for k in METER_COLUMNS)
    sim_given = any(get[k] for k in SIM_COLUMNS)
    line = _Line(number, customer) if customer is not None else None
    if meter_given:
        m_before = len(issues.issues)
        meter_number = field_check("meter_number", r"[0-9]{11}", "meter number must be 11 digits")
        sgc = field_check("supply_group_code", r"[0-9]{6}", "supply group code must be 6 digits")
        ti = field_check("tariff_index", r"[0-9]{2}", "tariff index must be 2 digits")
        krn = integer("key_revision")
        if krn != -1 and not 1 <= krn <= 9:
            issues.add(number, "key_revision", "key revision must be 1-9")
        kt = integer("key_type")
        if kt != -1 and not 0 <= kt <= 9:
            issues.add(number, "key_type", "key type must be 0-9")
        base = integer("base_date") if get["base_date"] else 1993
        if base not in (-1, 1993, 2014, 2035):
            issues.add(number, "base_date", "base date must be 1993, 2014 or 2035")
        state = MeterState.REQUESTED
        if get["meter_state"]:
            try:
                state = MeterState(get["meter_state"].lower())
            except ValueError:
                issues.add(
                    number,
                    "meter_state",
                    f"{get['meter_state']!r} is not one of "
                    + ", ".join(s.value for s in MeterState),
                )
        key: bytes | None = None
        if get["comms_key_hex"]:
            if not re.fullmatch(rf"[0-9a-fA-F]{{{COMMS_KEY_BYTES * 2}}}", get["comms_key_hex"]):
                issues.add(number, "comms_key_hex", f"must be {COMMS_KEY_BYTES * 2} hex digits")
            else:
                key = bytes.fromhex(get["comms_key_hex"])
            if not get["comms_key_id"]:
                issues.add(number, "comms_key_id", "a comms key needs its key id")
        elif get["comms_key_id"]:
            issues.add(number, "comms_key_hex", "comms_key_id given without a key")
        if len(get["comms_key_id"]) > 32:
            issues.add(number, "comms_key_id", "at most 32 characters")
        if len(issues.issues) == m_before and line is not None:
            line.meter = MeterIn(meter_number, customer_id, sgc, ti, krn, kt, base)
            line.meter_state = state
            line.comms_key = key
            line.comms_key_id = get["comms_key_id"] or None
    if sim_given:
        if not meter_given:
            issues.add(number, "meter_number", "a SIM must be bound to a meter on the same line")
        s_before = len(issues.issues)
        try:
            sim_msisdn = normalise(get["sim_msisdn"])
        except MsisdnError as error:
            issues.add(number, "sim_msisdn", str(error))
            sim_msisdn = ""
        try:
            check_iccid(get["sim_iccid"])
        except RegistryError as error:
            issues.add(number, "sim_iccid", str(error))
        if not get["sim_operator"]:
            issues.add(number, "sim_operator", "the mobile operator is required")
        if not get["sim_responsible_person"]:
            issues.add(
                number,
                "sim_responsible_person",
                "M2M SIMs are registered to a responsible person (5/2021 art. 160)",
            )
        m2m_text = get["sim_m2m"].lower() or "true"
        if m2m_text not in _TRUE | _FALSE:
            issues.add(number, "sim_m2m", f"{get['sim_m2m']!r} is not true/false")
        if len(issues.issues) == s_before and line is not None:
            line.sim = _SimRow(
                sim_msisdn,
                get["sim_iccid"],
                get["sim_operator"],
                m2m_text in _TRUE,
                get["sim_responsible_person"],
            )
    for part in filter(None, (x.strip() for x in get["phone_msisdns"].split(";"))):
        try:
            phone = normalise(part)
        except MsisdnError as error:
            issues.add(number, "phone_msisdns", str(error))
            continue
        if line is not None and phone not in line.phones:
            line.phones.append(phone)
    return line if len(issues.issues) == before else None


def _read(source: TextIO, issues: _Collector) -> tuple[list[_Line], int]:
    reader = csv.DictReader(source)
    try:
        header = reader.fieldnames or []
    except csv.Error as error:
        issues.add(max(reader.line_num, 1), "", f"not readable as CSV: {error}")
        return [], 0
    missing = [col for col in COLUMNS if col not in header]
    unknown = [col for col in header if col not in COLUMNS]
    for col in missing:
        issues.add(1, col, "column missing from the header")
    for col in unknown:
        issues.add(1, col, "unknown column")
    if missing or unknown:
        return [], 0
    lines: list[_Line] = []
    count = 0
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            # The reader cannot resynchronise after a malformed record: stop here.
            issues.add(start, "", f"not readable as CSV: {error}")
            break
        count += 1
        if None in row:
            issues.add(start, "", f"more fields than the {len(header)} header columns")
        row = {k: restore(v) if isinstance(v, str) else v for k, v in row.items()}
        parsed = _parse_line(start, row, issues)
        if parsed is not None:
            lines.append(parsed)
        start = reader.line_num + 1
    return lines, count


def _cross_check(lines: list[_Line], issues: _Collector) -> None:
    customers: dict[str, _Line] = {}
    meters: dict[str, int] = {}
    sim_numbers: dict[str, int] = {}
    iccids: dict[str, int] = {}
    phone_owner: dict[str, str] = {}
    for line in lines:
        first = customers.setdefault(line.customer.customer_id, line)
        if first is not line and first.customer != line.customer:
            issues.add(
                line.number,
                "customer_name",
                f"customer {line.customer.customer_id} differs from line {first.number}",
            )
        if line.meter is not None:
            seen = meters.setdefault(line.meter.meter_number, line.number)
            if seen != line.number:
                issues.add(line.number, "meter_number", f"meter also on line {seen}")
        if line.sim is not None:
            seen = sim_numbers.setdefault(line.sim.msisdn, line.number)
            if seen != line.number:
                issues.add(line.number, "sim_msisdn", f"SIM number also on line {seen}")
            seen = iccids.setdefault(line.sim.iccid, line.number)
            if seen != line.number:
                issues.add(line.number, "sim_iccid", f"ICCID also on line {seen}")
        for phone in line.phones:
            owner = phone_owner.setdefault(phone, line.customer.customer_id)
            if owner != line.customer.customer_id:
                issues.add(
                    line.number, "phone_msisdns", f"{phone} is also given for customer {owner}"
                )
    for line in lines:
        for phone in line.phones:
            if phone in sim_numbers:
                issues.add(line.number, "phone_msisdns", f"{phone} is a meter SIM number")


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


async def _existing(conn: AsyncConnection, column: Any, values: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(sorted(set(values))):
        rows = await conn.execute(select(column).where(column.in_(chunk)))
        found.update(str(r[0]) for r in rows)
    return found


def validate_csv(source: TextIO) -> list[ImportIssue]:
    """File-level problems (format, fields, lines contradicting each other) without a
    database: what `import_csv` reports before it looks at what is already registered."""
    issues = _Collector()
    lines, _ = _read(source, issues)
    _cross_check(lines, issues)
    return issues.issues


async def import_csv(registry: Registry, source: TextIO, *, actor: str = "import") -> ImportSummary:
    """Import the file in one transaction, or raise ImportRejected with every problem."""
    issues = _Collector()
    lines, count = _read(source, issues)
    _cross_check(lines, issues)
    if issues.issues:
        raise ImportRejected(issues.issues)
    master = None
    if any(line.comms_key is not None for line in lines):
        try:
            master = registry.require_master_key()
        except RegistryError as error:
            for line in lines:
                if line.comms_key is not None:
                    issues.add(line.number, "comms_key_hex", str(error))
            raise ImportRejected(issues.issues) from None
    now = registry.now()
    try:
        async with registry.store.begin() as conn:
            summary = await _check_and_write(conn, registry, lines, count, issues, master, now)
            if issues.issues:
                raise ImportRejected(issues.issues)
            await registry.audit(conn, actor, "registry.import", None, None, summary.as_dict())
            return summary
    except IntegrityError as error:
        # Someone registered a clashing row between our checks and our insert.
        raise ImportRejected(
            [ImportIssue(0, "", f"database refused the import: {error.orig}")]
        ) from None


async def _check_and_write(
    conn: AsyncConnection,
    registry: Registry,
    lines: list[_Line],
    count: int,
    issues: _Collector,
    master: Any,
    now: Any,
) -> ImportSummary:
    c, m, s, p = schema.customers, schema.meters, schema.sims, schema.customer_phones
    customer_ids = {line.customer.customer_id for line in lines}
    existing_customers: dict[str, CustomerIn] = {}
    for chunk in _chunks(sorted(customer_ids)):
        rows = await conn.execute(
            select(c.c.customer_id, c.c.name, c.c.tariff_segment, c.c.power_va).where(
                c.c.customer_id.in_(chunk)
            )
        )
        for r in rows:
            existing_customers[r.customer_id] = CustomerIn(
                r.customer_id, r.name, r.tariff_segment, r.power_va
            )
    for line in lines:
        known = existing_customers.get(line.customer.customer_id)
        if known is not None and known != line.customer:
            issues.add(
                line.number,
                "customer_name",
                f"customer {known.customer_id} is registered with different details",
            )
    meter_lines = [line for line in lines if line.meter is not None]
    taken_meters = await _existing(
        conn, m.c.meter_number, (line.meter.meter_number for line in meter_lines if line.meter)
    )
    sim_lines = [line for line in lines if line.sim is not None]
    taken_numbers = await _existing(
        conn, s.c.msisdn, (line.sim.msisdn for line in sim_lines if line.sim)
    )
    taken_iccids = await _existing(
        conn, s.c.iccid, (line.sim.iccid for line in sim_lines if line.sim)
    )
    for line in meter_lines:
        if line.meter and line.meter.meter_number in taken_meters:
            issues.add(
                line.number,
                "meter_number",
                f"meter {line.meter.meter_number} is already registered",
            )
    for line in sim_lines:
        if line.sim and line.sim.msisdn in taken_numbers:
            issues.add(line.number, "sim_msisdn", f"SIM {line.sim.msisdn} is already registered")
        if line.sim and line.sim.iccid in taken_iccids:
            issues.add(line.number, "sim_iccid", f"ICCID {line.sim.iccid} is already registered")
    all_phones = {phone for line in lines for phone in line.phones}
    phone_owner: dict[str, str] = {}
    for chunk in _chunks(sorted(all_phones)):
        owned = await conn.execute(select(p.c.msisdn, p.c.customer_id).where(p.c.msisdn.in_(chunk)))
        for owned_row in owned:
            phone_owner[owned_row.msisdn] = owned_row.customer_id
    phone_is_sim = await _existing(conn, s.c.msisdn, all_phones)
    new_phones: dict[str, str] = {}
    for line in lines:
        for phone in line.phones:
            owner = phone_owner.get(phone)
            if phone in phone_is_sim:
                issues.add(line.number, "phone_msisdns", f"{phone} is a registered meter SIM")
            elif owner is not None and owner != line.customer.customer_id:
                issues.add(
                    line.number, "phone_msisdns", f"{phone} is registered to customer {owner}"
                )
            elif owner is None:
                new_phones[phone] = line.customer.customer_id
    if issues.issues:
        return ImportSummary(count, 0, 0, 0, 0, 0)

    new_customers: dict[str, dict[str, Any]] = {}
    for line in lines:
        cid = line.customer.customer_id
        if cid not in existing_customers and cid not in new_customers:
            new_customers[cid] = {
                "customer_id": cid,
                "name": line.customer.name,
                "tariff_segment": line.customer.tariff_segment,
                "power_va": line.customer.power_va,
                "status": "active",
                "opted_out": False,
                "opted_out_at": None,
                "inactive_since": None,
                "created_at": now,
                "updated_at": now,
            }
    meter_rows, state_rows, sim_rows = [], [], []
    for line in meter_lines:
        meter = line.meter
        assert meter is not None
        sealed = seal(master, line.comms_key, aad=meter.meter_number) if line.comms_key else None
        meter_rows.append(
            {
                "meter_number": meter.meter_number,
                "customer_id": meter.customer_id,
                "supply_group_code": meter.supply_group_code,
                "tariff_index": meter.tariff_index,
                "key_revision": meter.key_revision,
                "key_type": meter.key_type,
                "base_date": meter.base_date,
                "comms_key_sealed": sealed,
                "comms_key_master_id": master.key_id if sealed else None,
                "comms_key_id": line.comms_key_id if sealed else None,
                "tx_counter": 0,
                "rx_counter": 0,
                "replay_window": b"",
                "state": line.meter_state.value,
                "state_at": now,
                "created_at": now,
                "updated_at": now,
            }
        )
        state_rows.append(
            {
                "meter_number": meter.meter_number,
                "state": line.meter_state.value,
                "at": now,
                "actor": "import",
                "detail": "imported",
            }
        )
        if line.sim is not None:
            sim_rows.append(
                {
                    "msisdn": line.sim.msisdn,
                    "iccid": line.sim.iccid,
                    "operator": line.sim.operator,
                    "m2m": line.sim.m2m,
                    "responsible_person": line.sim.responsible_person,
                    "meter_number": meter.meter_number,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    phone_rows = [
        {
            "msisdn": phone,
            "customer_id": cid,
            "pin_hash": None,
            "failed_attempts": 0,
            "locked_until": None,
            "created_at": now,
            "updated_at": now,
        }
        for phone, cid in new_phones.items()
    ]
    batches: tuple[tuple[Any, list[dict[str, Any]]], ...] = (
        (c, list(new_customers.values())),
        (m, meter_rows),
        (schema.meter_states, state_rows),
        (s, sim_rows),
        (p, phone_rows),
    )
    for table, batch in batches:
        for chunk in _chunks(batch):
            await conn.execute(insert(table), chunk)
    return ImportSummary(
        lines=count,
        customers_created=len(new_customers),
        customers_existing=len(customer_ids) - len(new_customers),
        meters=len(meter_rows),
        sims=len(sim_rows),
        phones=len(phone_rows),
    )


async def export_csv(registry: Registry, out: TextIO, *, actor: str = "export") -> int:
    """Write every customer (one line per meter, or one line if it has none); returns the
    number of lines. Comms keys are left blank and PINs are never exported."""
    store = registry.store
    c, m, s, p = schema.customers, schema.meters, schema.sims, schema.customer_phones
    if store.dialect == "postgresql":
        joined = func.string_agg(p.c.msisdn, ";")
    else:
        joined = func.group_concat(p.c.msisdn, ";")
    phones = select(p.c.customer_id, joined.label("phones")).group_by(p.c.customer_id).subquery()
    query = (
        select(
            c,
            m,
            s.c.msisdn.label("sim_msisdn"),
            s.c.iccid,
            s.c.operator,
            s.c.m2m,
            s.c.responsible_person,
            phones.c.phones,
        )
        .select_from(
            c.outerjoin(m, m.c.customer_id == c.c.customer_id)
            .outerjoin(s, s.c.meter_number == m.c.meter_number)
            .outerjoin(phones, phones.c.customer_id == c.c.customer_id)
        )
        .order_by(c.c.customer_id, m.c.meter_number)
    )
    writer = SafeWriter(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    lines = 0
    async with store.read() as conn:
        result = await conn.stream(query)
        async for row in result:
            r = row._mapping
            has_meter = r[m.c.meter_number] is not None
            has_sim = r["sim_msisdn"] is not None
            writer.writerow(
                [
                    r[c.c.customer_id],
                    r[c.c.name],
                    r[c.c.tariff_segment],
                    r[c.c.power_va],
                    r[m.c.meter_number] if has_meter else "",
                    r[m.c.supply_group_code] if has_meter else "",
                    r[m.c.tariff_index] if has_meter else "",
                    r[m.c.key_revision] if has_meter else "",
                    r[m.c.key_type] if has_meter else "",
                    r[m.c.base_date] if has_meter else "",
                    r[m.c.state] if has_meter else "",
                    "",  # comms_key_id: blank because the key itself is never exported
                    "",  # comms_key_hex: never exported
                    r["sim_msisdn"] if has_sim else "",
                    r[s.c.iccid] if has_sim else "",
                    r[s.c.operator] if has_sim else "",
                    ("true" if r[s.c.m2m] else "false") if has_sim else "",
                    r[s.c.responsible_person] if has_sim else "",
                    ";".join(sorted((r[phones.c.phones] or "").split(";"))).strip(";"),
                ]
            )
            lines += 1
    async with store.begin() as conn:
        # Customer data is confidential: every bulk disclosure is logged.
        await registry.audit(conn, actor, "registry.export", None, None, {"lines": lines})
    return lines
