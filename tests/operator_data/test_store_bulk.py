"""`insert_many` stores exactly what SQLAlchemy's own INSERT stores, value for value, on
both backends (timestamps in other zones, JSON, booleans, bytes, NULLs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Table, insert, select

from operator_data.store import Store, schema
from operator_data.store.bulk import insert_many, insert_returning

WIB = timezone(timedelta(hours=7))
T0 = datetime(2026, 11, 22, 9, 30, 15, 123456, tzinfo=UTC)


def _readings(tag: str) -> list[dict[str, Any]]:
    return [
        {
            "meter_number": f"1400000000{n}",
            "meter_time": T0.astimezone(WIB) if n % 2 else None,
            "received_at": T0 + timedelta(microseconds=n),
            "credit_kwh": "12.50",
            "total_kwh": None,
            "values": {"n": n, "nested": [1, "x", None], "text": "☺"} if n else None,
            "message_id": f"{tag}{n:025d}",
            "ap2t_batch": None,
        }
        for n in range(5)
    ]


def _customers(tag: str) -> list[dict[str, Any]]:
    return [
        {
            "customer_id": f"{tag}{n:011d}",
            "name": f"Nama {n} ☺",
            "tariff_segment": "R1",
            "power_va": 1300,
            "status": "active",
            "opted_out": bool(n % 2),
            "opted_out_at": T0 if n % 2 else None,
            "inactive_since": None,
            "created_at": T0,
            "updated_at": T0.astimezone(WIB),
        }
        for n in range(4)
    ]


async def _stored(store: Store, table: Table, key: str, prefix: str) -> list[dict[str, Any]]:
    async with store.read() as conn:
        rows = await conn.execute(select(table).where(table.c[key].startswith(prefix)))
        out = []
        for row in rows:
            values = dict(row._mapping)
            values.pop("id", None)
            values[key] = values[key][len(prefix) :]
            out.append(values)
    return sorted(out, key=lambda v: str(v[key]))


@pytest.mark.parametrize(
    ("table", "rows", "key"),
    [
        (schema.telemetry_readings, _readings, "message_id"),
        (schema.customers, _customers, "customer_id"),
    ],
)
async def test_insert_many_stores_what_sqlalchemy_stores(
    store: Store, table: Table, rows: Any, key: str
) -> None:
    async with store.begin() as conn:
        await conn.execute(insert(table), rows("a"))
        await insert_many(conn, table, rows("b"))
    assert await _stored(store, table, key, "b") == await _stored(store, table, key, "a")


async def test_nothing_to_insert_is_a_no_op(store: Store) -> None:
    async with store.begin() as conn:
        await insert_many(conn, schema.messages, [])


@pytest.mark.parametrize(
    ("table", "rows", "key"),
    [
        (schema.telemetry_readings, _readings, "message_id"),
        (schema.customers, _customers, "customer_id"),
    ],
)
async def test_insert_returning_stores_what_sqlalchemy_stores(
    store: Store, table: Table, rows: Any, key: str
) -> None:
    async with store.begin() as conn:
        await conn.execute(insert(table), rows("a"))
        written = await insert_returning(conn, table, rows("b"), returning=[table.c[key]])
    assert sorted(k for (k,) in written) == sorted(r[key] for r in rows("b"))
    assert await _stored(store, table, key, "b") == await _stored(store, table, key, "a")


async def test_insert_returning_skips_the_keys_that_exist(store: Store) -> None:
    customers = schema.customers
    first = _customers("c")
    async with store.begin() as conn:
        await insert_returning(conn, customers, first[:2], returning=[customers.c.customer_id])
        again = [first[1] | {"name": "changed"}, first[2], first[3]]
        written = await insert_returning(
            conn,
            customers,
            again,
            returning=[customers.c.customer_id],
            skip_conflicts_on=[customers.c.customer_id],
        )
    assert sorted(k for (k,) in written) == [first[2]["customer_id"], first[3]["customer_id"]]
    stored = await _stored(store, customers, "customer_id", "c")
    assert [s["name"] for s in stored] == [c["name"] for c in first]  # the first name kept


async def test_insert_returning_cuts_long_batches_under_the_parameter_limit(
    store: Store,
) -> None:
    many = [
        r | {"message_id": f"m{n:025d}", "meter_number": f"{n:011d}"}
        for n in range(1_400)
        for r in _readings("x")[:1]
    ]  # 1,400 rows × 8 columns: several statements on SQLite (500 rows each)
    table = schema.telemetry_readings
    async with store.begin() as conn:
        written = await insert_returning(conn, table, many, returning=[table.c.message_id])
    assert sorted(k for (k,) in written) == sorted(r["message_id"] for r in many)


async def test_insert_returning_refuses_a_returning_column_that_needs_conversion(
    store: Store,
) -> None:
    table = schema.telemetry_readings
    async with store.begin() as conn:
        with pytest.raises(ValueError, match="received_at needs a type conversion"):
            await insert_returning(conn, table, _readings("r"), returning=[table.c.received_at])
