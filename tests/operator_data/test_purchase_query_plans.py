"""No cost that grows with history on the purchase path (issue 14, item 5).

One complete purchase runs through the real hub (hub_support's rig: a registered phone
texts BELI, the P2APST simulator pays over ISO 8583/TCP, the token frame goes to the meter,
the meter answers TOKEN_RESULT, the receipt goes out, the report is acknowledged) on top of
thousands of rows of history in every table that grows. Every statement the store's engine
executes meanwhile is recorded (a `before_cursor_execute` listener), then checked twice:

- its plan (SQLite `EXPLAIN QUERY PLAN`; PostgreSQL `EXPLAIN` with `enable_seqscan = off`,
  since on tables this small a sequential scan is the cheapest plan even where an index
  would serve, while with it priced out the planner still takes one wherever none does):
  no growing table may be scanned, walked through a whole index, or searched by a time
  range alone where the statement names a key (see "plans" below);
- the work it does when run again over the history, in a transaction rolled back (SQLite
  VM steps, PostgreSQL rows read per scan node): a plan does not say how far an
  index-order walk goes before its LIMIT is met (see "work done" below).

A failure names the statement and the plan line or the work. Tables that do not grow are
allowed by name, with the reason, in SMALL_TABLES.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import PrimaryKeyConstraint, UniqueConstraint, event, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.store import MessageState, Store, TransactionState, schema
from operator_data.store.types import new_ulid
from tests.operator_data.hub_support import CUSTOMER, METER, PHONE, PIN, Rig, running_rig

pytestmark = pytest.mark.timeout(120)

#: Purchases already in the history (five messages, six states, a delivery, a report ...
#: each), and other customers with a meter, a SIM and a phone each.
PURCHASES = 2000
CUSTOMERS = 1500
#: Of those purchases, how many other phones made in the last minutes (inside BELI's
#: duplicate window, as on a busy day: one every half second).
RECENT = 1000
#: Every how many-th older purchase was the test phone's own (same text, long ago).
OURS_EVERY = 50
#: Outbound SMS the gateways have taken and whose send results are still to come.
BACKLOG = 1500

#: Tables that do not grow with the hub's history, each with why a full scan is harmless.
#: Everything else in `schema.metadata` is taken to grow.
SMALL_TABLES: dict[str, str] = {
    "alembic_version": "one row: the schema revision",
}


def _growing_tables() -> set[str]:
    return {name for name in schema.metadata.tables if name not in SMALL_TABLES}


# -- history -----------------------------------------------------------------------------


def _customer_id(n: int) -> str:
    return f"{530000000000 + n:012d}"


def _meter_number(n: int) -> str:
    return f"{14000000000 + n:011d}"


def _chunks(rows: list[dict[str, Any]], size: int = 2000) -> Iterator[list[dict[str, Any]]]:
    for index in range(0, len(rows), size):
        yield rows[index : index + size]


@dataclass
class _History:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, table: str, **row: Any) -> None:
        self.rows.setdefault(table, []).append(row)

    def message(self, at: datetime, **values: Any) -> str:
        message_id = new_ulid(at)
        row: dict[str, Any] = {
            "id": message_id,
            "peer_raw": None,
            "meter_number": None,
            "customer_id": None,
            "gateway_id": "gw1",
            "modem_id": "m1",
            "kind": None,
            "body": None,
            "raw_pdu": None,
            "state_at": at,
            "retries": 0,
            "reject_reason": None,
            "idempotency_key": f"history:{message_id}",
            "correlation_id": None,
            "in_reply_to": None,
            "transaction_id": None,
            "created_at": at,
        }
        row.update(values)
        self.add("messages", **row)
        first = "received" if values["direction"] == "in" else "queued"
        for offset, state in enumerate(dict.fromkeys((first, values["state"]))):
            self.add(
                "message_states",
                message_id=message_id,
                state=state,
                at=at + timedelta(seconds=offset),
                detail=None,
            )
        return message_id


def _history(now: datetime) -> _History:
    """Rows for `CUSTOMERS` more customers and `PURCHASES` finished purchases (a tenth of
    them by the test's own phone and meter, with the same text, outside the duplicate
    window; `RECENT` of them by other phones inside it), with their messages, states,
    charges, readings, alarms, SLA events ...; and `BACKLOG` outbox rows waiting for their
    send results."""
    h = _History()
    start = now - timedelta(days=60)
    for n in range(2, CUSTOMERS + 2):
        customer, meter = _customer_id(n), _meter_number(n)
        h.add(
            "customers",
            customer_id=customer,
            name=f"Pelanggan {n}",
            tariff_segment="R1",
            power_va=1300,
            status="active",
            opted_out=False,
            opted_out_at=None,
            inactive_since=None,
            created_at=start,
            updated_at=start,
        )
        h.add(
            "meters",
            meter_number=meter,
            customer_id=customer,
            supply_group_code="123456",
            tariff_index="01",
            key_revision=1,
            key_type=2,
            base_date=2014,
            comms_key_sealed=None,
            comms_key_master_id=None,
            comms_key_id=None,
            tx_counter=0,
            rx_counter=0,
            replay_window=b"",
            state="active",
            state_at=start,
            created_at=start,
            updated_at=start,
        )
        h.add("meter_states", meter_number=meter, state="active", at=start, actor="seed")
        h.add(
            "sims",
            msisdn=f"+62811{n:08d}",
            iccid=f"8962200{n:012d}",
            operator="Telkomsel",
            m2m=True,
            responsible_person="PT Operator Data",
            meter_number=meter,
            created_at=start,
            updated_at=start,
        )
        h.add(
            "customer_phones",
            msisdn=f"+62812{n:08d}",
            customer_id=customer,
            pin_hash=None,
            failed_attempts=0,
            locked_until=None,
            created_at=start,
            updated_at=start,
        )

    for i in range(PURCHASES):
        n = 2 + i % CUSTOMERS
        recent = i >= PURCHASES - RECENT  # a busy hub: others' purchases in the window
        ours = i % OURS_EVERY == 0 and not recent
        customer = CUSTOMER if ours else _customer_id(n)
        meter = METER if ours else _meter_number(n)
        phone = PHONE if ours else f"+62812{n:08d}"
        meter_sim = "+6281100000001" if ours else f"+62811{n:08d}"
        at = (
            now - timedelta(seconds=60 + (PURCHASES - i) / 2)
            if recent
            else start + timedelta(minutes=20 * i)
        )
        tx = new_ulid(at)
        common = {"customer_id": customer, "transaction_id": tx}
        request = h.message(
            at,
            direction="in",
            flow="customer_to_hub",
            peer_msisdn=phone,
            kind="BUY",
            body="BELI 100rb ******",
            state="processed",
            **common,
        )
        sent = [
            h.message(
                at + timedelta(seconds=1),
                direction="out",
                flow="hub_to_customer",
                peer_msisdn=phone,
                kind="purchase-accepted",
                body="Pembelian diproses",
                state="delivered",
                in_reply_to=request,
                meter_number=meter,
                **common,
            ),
            h.message(
                at + timedelta(seconds=2),
                direction="out",
                flow="hub_to_meter",
                peer_msisdn=meter_sim,
                kind="token_delivery",
                raw_pdu=b"\x01" * 40,
                state="delivered",
                meter_number=meter,
                **common,
            ),
            h.message(
                at + timedelta(seconds=30),
                direction="in",
                flow="meter_to_hub",
                peer_msisdn=meter_sim,
                kind="token_result",
                raw_pdu=b"\x02" * 40,
                state="processed",
                meter_number=meter,
                **common,
            ),
            h.message(
                at + timedelta(seconds=31),
                direction="out",
                flow="hub_to_customer",
                peer_msisdn=phone,
                kind="receipt",
                body="Token Rp100.000 **** masuk",
                state="delivered",
                meter_number=meter,
                **common,
            ),
        ]
        for message_id in (request, *sent):
            h.add(
                "cost_ledger",
                message_id=message_id,
                customer_id=customer,
                flow="hub_to_customer",
                price_version="t1",
                amount_idr=150,
                charged_at=at + timedelta(minutes=1),
            )
        h.add(
            "transactions",
            id=tx,
            idempotency_key=f"history:{request}",
            meter_number=meter,
            customer_id=customer,
            phone_msisdn=phone,
            amount_idr=100_000,
            kwh="60.6",
            token_sealed=b"\x00" * 60,
            token_master_id="mk1-history",
            token_masked="1234 **** **** **** 7890",
            pln_ref=f"PLN{i:010d}",
            switcher_ref=tx,
            stan=f"{i % 1_000_000:06d}",
            response_code="0000",
            meter_outcome="accepted",
            state=TransactionState.REPORTED.value,
            state_at=at + timedelta(seconds=32),
            request_message_id=request,
            created_at=at,
        )
        for offset, state in enumerate(
            ("requested", "submitted", "token_issued", "token_sent", "applied", "reported")
        ):
            h.add(
                "transaction_states",
                transaction_id=tx,
                state=state,
                at=at + timedelta(seconds=offset * 6),
                detail=None,
            )
        h.add(
            "hub_purchases",
            key=tx,
            request="{}",
            stan=f"{i % 1_000_000:06d}",
            sent_at=at,
            result_sealed=b"\x00" * 60,
            result_master_id="mk1-history",
            completed_at=at + timedelta(seconds=1),
            created_at=at,
        )
        h.add(
            "hub_reports",
            report_id=f"R{tx}",
            transaction_id=tx,
            report_sealed=b"\x00" * 60,
            master_id="mk1-history",
            acknowledged=True,
            created_at=at + timedelta(seconds=31),
            acknowledged_at=at + timedelta(seconds=32),
        )
        h.add(
            "hub_deliveries",
            transaction_id=tx,
            meter_number=meter,
            attempts=1,
            next_check_at=None,
            outcome="accepted",
            escalated=False,
            created_at=at + timedelta(seconds=2),
            finished_at=at + timedelta(seconds=30),
            last_frame_message_id=None,
        )
        for reading in range(3):
            when = at + timedelta(hours=reading)
            h.add(
                "telemetry_readings",
                meter_number=meter,
                meter_time=when,
                received_at=when,
                credit_kwh="12.5",
                total_kwh="1500.0",
                values=None,
                message_id=None,
                ap2t_batch=None,
            )
        h.add(
            "alarms",
            meter_number=meter,
            code="low_credit",
            severity="warning",
            meter_time=at,
            received_at=at,
            message_id=None,
            detail=None,
            acknowledged_by=None,
            acknowledged_at=None,
            cleared_at=None,
        )
        for metric in ("token_to_network", "meter_answer", "report_to_p2apst"):
            h.add(
                "sla_events",
                metric=metric,
                subject_type="transaction",
                subject_id=tx,
                started_at=at,
                ended_at=at + timedelta(seconds=40),
                duration_ms=40_000,
                target_ms=10_000,
                met=False,
                recorded_at=at + timedelta(seconds=40),
            )
        h.add(
            "audit_log",
            at=at,
            actor="sari",
            action="disclose.customer",
            subject_type="customer",
            subject_id=customer,
            detail=None,
        )
        if i % 4 == 0:
            h.add(
                "helpdesk_items",
                kind="complaint",
                category="charge",
                customer_id=customer,
                meter_number=meter,
                msisdn=phone,
                subject="Token belum masuk",
                notes=None,
                state="closed",
                assigned_to="sari",
                opened_at=at,
                resolved_at=at + timedelta(hours=1),
                closed_at=at + timedelta(hours=2),
            )

    # SMS the gateways took and whose send results are still to come: their outbox rows
    # stay, unclaimed, until a check time in the future (tokens, receipts, replies and
    # notices alike).
    for i in range(BACKLOG):
        n = 2 + i % CUSTOMERS
        at = now - timedelta(seconds=BACKLOG - i)
        message_id = h.message(
            at,
            direction="out",
            flow="hub_to_customer",
            peer_msisdn=f"+62812{n:08d}",
            customer_id=_customer_id(n),
            kind="low-credit",
            body="Sisa kWh rendah",
            state="submitted",
        )
        h.add(
            "outbox",
            message_id=message_id,
            destination=f"+62812{n:08d}",
            payload=b"Sisa kWh rendah",
            gateway_hint="gw2",
            priority=(10, 20, 50, 100)[i % 4],
            available_at=now + timedelta(minutes=10, seconds=i % 600),
            claimed_by=None,
            lease_until=None,
            attempts=1,
            created_at=at,
        )
    return h


async def _insert_history(conn: AsyncConnection, now: datetime) -> dict[str, int]:
    history = _history(now)
    for table in schema.metadata.sorted_tables:  # parents before children
        for chunk in _chunks(history.rows.get(table.name, [])):
            await conn.execute(insert(table), chunk)
    return {name: len(rows) for name, rows in history.rows.items()}


# -- recording ---------------------------------------------------------------------------


@dataclass
class _Recording:
    """Every statement run on the store's engine (and its parameters, as the driver got
    them) while attached."""

    statements: list[tuple[str, Any]] = field(default_factory=list)

    def on_execute(
        self,
        _conn: Connection,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        executemany: bool,
    ) -> None:
        if executemany:
            parameters = parameters[0] if parameters else ()
        self.statements.append((statement, parameters))

    def attach(self, store: Store) -> None:
        event.listen(store.engine.sync_engine, "before_cursor_execute", self.on_execute)

    def detach(self, store: Store) -> None:
        event.remove(store.engine.sync_engine, "before_cursor_execute", self.on_execute)

    def distinct(self) -> list[tuple[str, Any]]:
        """Each statement that can read a table (not BEGIN/COMMIT/PRAGMA), once per
        distinct text and parameters."""
        seen: dict[tuple[str, str], tuple[str, Any]] = {}
        for statement, parameters in self.statements:
            verb = statement.lstrip().split(None, 1)[0].upper()
            if verb in ("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA", "SAVEPOINT", "RELEASE"):
                continue
            seen.setdefault((statement, repr(parameters)), (statement, parameters))
        return list(seen.values())


# -- plans -------------------------------------------------------------------------------
#
# What fails, on a growing table:
# - reading the whole table: SQLite `SCAN t`, an automatic index (SQLite builds it by
#   reading the table), a bare `SEARCH t` (min()/max() with no index on the column),
#   PostgreSQL `Seq Scan`;
# - walking a whole index: SQLite `SCAN t USING INDEX` / a PostgreSQL index scan without
#   an index condition, in a statement with no LIMIT to stop the walk; a PostgreSQL index
#   condition that leaves the index's first column free (the whole index is read);
# - a search by a range alone (`created_at > ?`: everybody's rows in the window) while the
#   statement names a column of that table by equality: the index that would seek by that
#   column first is missing.


@dataclass(frozen=True)
class _Access:
    """One table access of a plan, dialect-neutral."""

    line: str  # the plan line as the database gave it
    name: str  # the table or its alias, as the statement names it
    table: str
    whole_table: bool = False
    whole_index: bool = False
    stops_early: bool = False  # a LIMIT can end the walk
    seeks: bool = False  # an index condition constrains the access at all
    seeks_by_equality: bool = False


_SQLITE_ACCESS = re.compile(
    r"^(?P<op>SCAN|SEARCH) (?:TABLE )?(?P<name>\w+)(?: AS \w+)?"
    r"(?: USING (?P<how>.*?))?(?: \((?P<cons>[^()]*)\))?$"
)


def _table_of(name: str, statement: str) -> str:
    """The table a plan names: itself, or what the statement aliases as `name`
    (SQLAlchemy's anonymous aliases are `messages_1`)."""
    if name in schema.metadata.tables:
        return name
    aliased = re.search(rf"\b(\w+) AS {re.escape(name)}\b", statement)
    if aliased is not None:
        return aliased[1]
    return re.sub(r"_\d+$", "", name)


def _equality_columns(statement: str, name: str) -> set[str]:
    """Columns of `name` the statement compares by equality with a value or another
    table's column (`name.col = ?`, `other.col = name.col`): what an index could seek by.
    (Not `IN (SELECT ...)` or `IS NULL` in an OR, which the claim has and which no index
    led by that column would make a seek of the due rows.)"""
    quoted = re.escape(name)
    found = set(re.findall(rf'\b{quoted}\."?(\w+)"? = ', statement))
    found |= set(re.findall(rf'= {quoted}\."?(\w+)"?', statement))
    return found


def _sqlite_accesses(plan: list[str], statement: str) -> list[_Access]:
    accesses = []
    limited = " LIMIT " in statement
    for line in plan:
        match = _SQLITE_ACCESS.match(line)
        if match is None:
            continue  # SCAN CONSTANT ROW, a subquery's result, a temp b-tree ...
        how, cons = match["how"] or "", match["cons"]
        automatic = "AUTOMATIC" in how
        accesses.append(
            _Access(
                line=line,
                name=match["name"],
                table=_table_of(match["name"], statement),
                whole_table=automatic or (not how and (match["op"] == "SCAN" or cons is None)),
                whole_index=match["op"] == "SCAN" and bool(how),
                stops_early=limited,
                seeks=cons is not None and not automatic,
                seeks_by_equality=cons is not None and re.search(r"\w=\?", cons) is not None,
            )
        )
    return accesses


def _first_columns() -> dict[str, str]:
    """Index name (as PostgreSQL reports it) -> the index's first column."""
    first: dict[str, str] = {}
    for table in schema.metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, PrimaryKeyConstraint | UniqueConstraint):
                first[str(constraint.name)] = next(iter(constraint.columns)).name
        for index in table.indexes:
            first[str(index.name)] = next(iter(index.columns)).name
    return first


_SCANS = ("Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Index Scan")


def _pg_accesses(plan: dict[str, Any], statement: str) -> list[_Access]:
    accesses: list[_Access] = []
    first_columns = _first_columns()

    def walk(node: dict[str, Any], limited: bool, heap: dict[str, Any] | None) -> None:
        kind = node["Node Type"]
        limited = limited or kind == "Limit"
        # A Bitmap Index Scan reads for the Bitmap Heap Scan above it (maybe through a
        # BitmapOr / BitmapAnd), which names the table.
        owner = heap if kind == "Bitmap Index Scan" and heap is not None else node
        relation = owner.get("Relation Name")
        if relation is not None and kind in _SCANS:
            cond = node.get("Index Cond")
            index = node.get("Index Name")
            line = " ".join(
                part
                for part in (
                    f"{kind} on {relation}",
                    f"using {index}" if index else "",
                    f"cond {cond}" if cond else "",
                    f"filter {node['Filter']}" if "Filter" in node else "",
                )
                if part
            )
            first = first_columns.get(index or "")
            leading_free = (
                cond is not None and first is not None and not re.search(rf"\b{first}\b", cond)
            )
            accesses.append(
                _Access(
                    line=line,
                    name=owner.get("Alias", relation),
                    table=relation,
                    whole_table=kind == "Seq Scan",
                    whole_index=kind != "Seq Scan" and (cond is None or leading_free),
                    stops_early=limited and not leading_free,
                    seeks=cond is not None,
                    seeks_by_equality=cond is not None
                    and re.search(r" = |IS NULL", cond) is not None,
                )
            )
        below = node if kind == "Bitmap Heap Scan" else heap if kind.startswith("Bitmap") else None
        for child in node.get("Plans", []):
            walk(child, limited, below)

    walk(plan, False, None)
    return accesses


def _plan_problems(accesses: list[_Access], statement: str) -> list[str]:
    growing = _growing_tables()
    found = []
    for access in accesses:
        if access.table not in growing:
            continue
        if access.whole_table:
            found.append(f"{access.line}: reads the whole table")
        elif access.whole_index and not access.stops_early:
            found.append(f"{access.line}: walks the whole index, no LIMIT stops it")
        elif access.seeks and not access.seeks_by_equality:
            equal = _equality_columns(statement, access.name)
            if equal:
                found.append(
                    f"{access.line}: a range over everybody's rows, although the statement"
                    f" names {sorted(equal)} by equality (no index seeks by them)"
                )
    return found


async def _explain(
    conn: AsyncConnection, dialect: str, statement: str, parameters: Any
) -> list[_Access]:
    if dialect == "sqlite":
        rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return _sqlite_accesses([str(row[3]) for row in rows], statement)
    raw = (
        await conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
    ).scalar_one()
    document = json.loads(raw) if isinstance(raw, str) else raw
    return _pg_accesses(document[0]["Plan"], statement)


async def _check_plans(store: Store, statements: list[tuple[str, Any]]) -> list[str]:
    problems = []
    async with store.read() as conn:
        if store.dialect == "postgresql":
            # Tiny tables make sequential scans the cheapest plan; with them priced out,
            # the planner still takes one wherever no index serves the statement.
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for statement, parameters in statements:
            accesses = await _explain(conn, store.dialect, statement, parameters)
            for problem in _plan_problems(accesses, statement):
                problems.append(f"{' '.join(statement.split())}\n    plan: {problem}")
    return problems


# -- work done ---------------------------------------------------------------------------
#
# A plan does not say how far a walk goes (an index-order scan "stops early" only if rows
# match soon), so each statement is also run again, in a transaction rolled back, against
# the history, and the work it did is read back:
# - SQLite: its virtual-machine steps (`sqlite_stmt.nstep`): tens to a few hundred for a
#   keyed read or write; reading the rows of a table or a window costs several per row,
#   and every lookup here has at least RECENT rows it must not read.
# - PostgreSQL: the rows each scan node read (EXPLAIN ANALYZE: returned + filtered out).

MAX_SQLITE_STEPS = 1000
MAX_PG_ROWS = 100


def _sqlite_steps(path: str, statement: str, parameters: Any) -> int | None:
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("BEGIN")
        try:
            raw.execute(statement, parameters).fetchall()
        except sqlite3.IntegrityError:
            return None  # inserting a row that is there by now: a keyed write, no reading
        row = raw.execute("SELECT nstep FROM sqlite_stmt WHERE sql = ?", (statement,)).fetchone()
        return None if row is None else int(row[0])
    finally:
        if raw.in_transaction:
            raw.execute("ROLLBACK")
        raw.close()


def _sqlite_measures() -> bool:
    try:
        sqlite3.connect(":memory:").execute("SELECT count(*) FROM sqlite_stmt")
    except sqlite3.OperationalError:  # SQLite built without SQLITE_ENABLE_STMTVTAB
        return False
    return True


def _pg_rows_read(node: dict[str, Any]) -> Iterator[tuple[str, int]]:
    kind = node["Node Type"]
    if kind in _SCANS:
        read = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
        where = node.get("Relation Name") or node.get("Index Name", "?")
        yield f"{kind} on {where}", int(read * node.get("Actual Loops", 1))
    for child in node.get("Plans", []):
        yield from _pg_rows_read(child)


async def _check_work(store: Store, statements: list[tuple[str, Any]]) -> list[str]:
    problems = []
    for statement, parameters in statements:
        short = " ".join(statement.split())
        if store.dialect == "sqlite":
            assert store.url.database is not None
            steps = await asyncio.to_thread(
                _sqlite_steps, store.url.database, statement, parameters
            )
            if steps is not None and steps > MAX_SQLITE_STEPS:
                problems.append(f"{short}\n    work: {steps} SQLite VM steps")
            continue
        async with store.engine.connect() as conn:
            transaction = await conn.begin()
            try:
                raw = (
                    await conn.exec_driver_sql(
                        f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters
                    )
                ).scalar_one()
            except IntegrityError:
                continue  # inserting a row that is there by now: a keyed write, no reading
            finally:
                await transaction.rollback()
        document = json.loads(raw) if isinstance(raw, str) else raw
        for where, rows in _pg_rows_read(document[0]["Plan"]):
            if rows > MAX_PG_ROWS:
                problems.append(f"{short}\n    work: {where} read {rows} rows")
    return problems


# -- the purchase ------------------------------------------------------------------------


async def _one_purchase(rig: Rig, watcher: Store) -> None:
    """BELI from the registered phone, until the transaction is reported and its three
    outbound SMS (reply, token frame, receipt) are delivered. The test's own reads go
    through `watcher`, another engine, so that only the hub's statements are recorded."""
    assert rig.client is not None
    since = rig.clock.now  # the rig's clock stands still: the purchase's rows carry it
    rig.phone.text(f"BELI 100rb {PIN}")
    await rig.until(rig.inbox_has(2))
    await rig.client.drain_reports()
    txs, msgs = schema.transactions, schema.messages

    async def finished() -> bool:
        async with watcher.read() as conn:
            states = await conn.execute(select(txs.c.state).where(txs.c.created_at >= since))
            out = await conn.execute(
                select(msgs.c.state).where(msgs.c.direction == "out", msgs.c.created_at >= since)
            )
            delivered = [s == MessageState.DELIVERED for s in out.scalars()]
            return list(states.scalars()) == [TransactionState.REPORTED.value] and (
                delivered == [True] * 3
            )

    await rig.until(finished)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)]
)
async def test_a_purchase_reads_no_growing_table_end_to_end(
    store: Store, backend: str, tmp_path: Path
) -> None:
    recording = _Recording()
    async with running_rig(store, tmp_path) as rig:
        async with store.begin() as conn:
            seeded = await _insert_history(conn, rig.clock.now)
        if backend == "postgresql":
            # As autovacuum would: the planner then knows the tables' sizes and spreads.
            # (SQLite gets no ANALYZE: the hub never runs one, so it plans without stats.)
            async with store.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.exec_driver_sql("ANALYZE")
        recording.attach(store)
        try:
            async with Store(store.url) as watcher:
                await _one_purchase(rig, watcher)
        finally:
            recording.detach(store)
        assert rig.simulator is not None and rig.simulator.received("2200") == 1
        assert any(m.startswith("Token Rp100.000 masuk") for m in rig.phone.inbox)
    assert seeded["messages"] >= 10_000 and seeded["transactions"] == PURCHASES

    # The hub has stopped: nothing else runs while plans are read and statements re-run.
    statements = recording.distinct()
    assert len(statements) > 50  # the recording saw the whole purchase, not one step
    verbs = {statement.split(None, 1)[0] for statement, _ in statements}
    assert {"SELECT", "INSERT", "UPDATE", "DELETE"} <= verbs
    problems = await _check_plans(store, statements)
    measured = backend == "postgresql" or _sqlite_measures()
    if measured:
        problems += await _check_work(store, statements)
    assert not problems, "growing tables read end to end:\n" + "\n".join(problems)
    if not measured:
        pytest.skip("plans checked; this SQLite has no sqlite_stmt to measure work with")
