"""Many rows into one table in one statement, for the inbound hot path.

On SQLite, SQLAlchemy's executemany spends more time building each row's parameters
(compiler bookkeeping, a type processor per value) than SQLite spends storing the row.
`insert_many` does the same conversion with the same type processors, once per column
and once per distinct timestamp of a batch, and hands the driver plain tuples. On
PostgreSQL it is SQLAlchemy's own executemany (asyncpg's pipelined one is not the cost).
tests/operator_data/test_store_bulk.py checks both paths store identical rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    names: tuple[str, ...]
    processed: tuple[tuple[int, Processor], ...]  # the columns whose type converts values


_PLANS: dict[tuple[str, str, tuple[str, ...]], _Plan] = {}


def _plan(table: Table, dialect: Dialect, names: tuple[str, ...]) -> _Plan:
    key = (dialect.name, table.name, names)
    plan = _PLANS.get(key)
    if plan is None:
        processed = []
        for index, name in enumerate(names):
            processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processed.append((index, processor))
        quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
        marks = ", ".join("?" for _ in names)
        sql = f"INSERT INTO {table.name} ({quoted}) VALUES ({marks})"
        plan = _PLANS[key] = _Plan(sql, names, tuple(processed))
    return plan


async def insert_many(
    conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """INSERT every row (each with the keys of the first) in the caller's transaction."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        await conn.execute(insert(table), list(rows))
        return
    plan = _plan(table, conn.dialect, tuple(rows[0]))
    names = plan.names
    stamps: dict[tuple[int, datetime], Any] = {}
    values: list[tuple[Any, ...]] = []
    for row in rows:
        out = [row[name] for name in names]
        for index, processor in plan.processed:
            value = out[index]
            if isinstance(value, datetime):
                # A batch stamps most rows with the same few instants: convert each once.
                memo = (index, value)
                converted = stamps.get(memo)
                if converted is None:
                    converted = stamps[memo] = processor(value)
                out[index] = converted
            else:
                out[index] = processor(value)
        values.append(tuple(out))
    await conn.exec_driver_sql(plan.sql, values)
