"""`run_once`: a cluster-wide "only one node runs this job now" guard; `lock_rows`: take
rows for the rest of a transaction.

On PostgreSQL a session-level advisory lock (pg_try_advisory_lock) held on a dedicated
connection for the job's lifetime: a second node asking at the same time gets False and
skips instead of waiting. SQLite is a single-process deployment, so the guard is a no-op.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.store.engine import Store


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for `name` (Python's hash() changes per process)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)


@asynccontextmanager
async def run_once(store: Store, name: str) -> AsyncIterator[bool]:
    """`async with run_once(store, "retention") as acquired:`; skip the job if not acquired."""
    if store.dialect != "postgresql":
        yield True
        return
    key = lock_key(name)
    # AUTOCOMMIT: the lock belongs to the session, not to a transaction, and the job's
    # own units of work run on other connections.
    async with store.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        acquired = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))
        try:
            yield acquired
        finally:
            if acquired:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})


async def lock_rows(conn: AsyncConnection, rows: Select[Any]) -> None:
    """`SELECT ... FOR UPDATE` of `rows`, kept until the caller's transaction ends, where
    it means something: PostgreSQL. SQLite compiles no FOR UPDATE, and its write
    transactions (BEGIN IMMEDIATE) already exclude every other writer, so the statement
    would only cost a trip to the database."""
    if conn.dialect.name != "sqlite":
        await conn.execute(rows.with_for_update())
