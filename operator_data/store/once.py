"""`INSERT ... ON CONFLICT DO NOTHING`, the same on SQLite and PostgreSQL: writing a row
once per key in one statement, with no read first and no savepoint (a unique-key error
would abort a PostgreSQL transaction; this never raises one)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def upsert(conn: AsyncConnection, table: Table) -> Any:
    """The dialect's INSERT (the one with `on_conflict_do_nothing`) for `table`."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


async def insert_once(
    conn: AsyncConnection,
    table: Table,
    values: Mapping[str, Any],
    *,
    key: Sequence[Column[Any]],
) -> bool:
    """Insert `values` unless a row with the same `key` (a unique index) exists; True if
    this call inserted it. Two writers racing on the key: exactly one gets True."""
    result = await conn.execute(
        upsert(conn, table).values(**values).on_conflict_do_nothing(index_elements=list(key))
    )
    return result.rowcount == 1
