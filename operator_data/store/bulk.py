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

from sqlalchemy import Column, Table, insert
from sqlalchemy.dialects import postgresql, sqlite
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


def _values(plan: _Plan, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
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
    return values


def upsert(conn: AsyncConnection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """The backend's own INSERT, which knows ON CONFLICT DO UPDATE (both have it)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


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
    await conn.exec_driver_sql(plan.sql, _values(plan, rows))


#: SQLite binds at most 32,766 parameters a statement; older builds cap a VALUES list at
#: 500 rows. A multi-row INSERT is cut to stay under both.
_SQLITE_PARAMETERS = 32_000
_SQLITE_ROWS = 500


async def insert_returning(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    returning: Sequence[Column[Any]],
    skip_conflicts_on: Sequence[Column[Any]] | None = None,
) -> list[tuple[Any, ...]]:
    """INSERT every row (each with the keys of the first) and return `returning` of each
    row written; with `skip_conflicts_on` (a unique key) a row whose key exists is left
    out (ON CONFLICT DO NOTHING) and returns nothing. The RETURNING columns must need no
    type conversion (ids, keys, integers).

    Built as SQLAlchemy would build a multi-row `insert().values([...])`, whose compile
    (one bound parameter object per value, never cached) cost more than the rows' write:
    on SQLite one statement of many VALUES rows with plain tuples; on PostgreSQL
    SQLAlchemy's executemany with RETURNING (its "insertmanyvalues": compiled once,
    batched into multi-row statements)."""
    if not rows:
        return []
    dialect = conn.dialect
    for column in returning:
        if column.type.dialect_impl(dialect).result_processor(dialect, None) is not None:
            raise ValueError(f"RETURNING {column.name} needs a type conversion")
    if dialect.name != "sqlite":
        statement = postgresql.insert(table)
        if skip_conflicts_on is not None:
            statement = statement.on_conflict_do_nothing(index_elements=list(skip_conflicts_on))
        result = await conn.execute(statement.returning(*returning), list(rows))
        return [tuple(row) for row in result]
    plan = _plan(table, dialect, tuple(rows[0]))
    quote = dialect.identifier_preparer.quote
    tail = ""
    if skip_conflicts_on is not None:
        tail += f" ON CONFLICT ({', '.join(quote(c.name) for c in skip_conflicts_on)}) DO NOTHING"
    tail += f" RETURNING {', '.join(quote(c.name) for c in returning)}"
    head, _, marks = plan.sql.partition(" VALUES ")
    per_statement = max(1, min(_SQLITE_ROWS, _SQLITE_PARAMETERS // len(plan.names)))
    values = _values(plan, rows)
    out: list[tuple[Any, ...]] = []
    for start in range(0, len(values), per_statement):
        chunk = values[start : start + per_statement]
        sql = f"{head} VALUES {', '.join([marks] * len(chunk))}{tail}"
        flat = tuple(value for row in chunk for value in row)
        result = await conn.exec_driver_sql(sql, flat)
        out.extend(tuple(row) for row in result)
    return out
