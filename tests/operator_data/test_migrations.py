"""Migrations bring an empty database to exactly the schema the code expects, both ways."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from operator_data.migrations.runner import downgrade, shipped_heads
from operator_data.store import Store, schema

pytestmark = pytest.mark.timeout(60)


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, schema.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_head_matches_the_code_schema(store: Store) -> None:
    assert await store.current_revision() == shipped_heads()
    async with store.read() as conn:
        assert await conn.run_sync(_diff) == []
        assert set(schema.TABLE_NAMES) <= await conn.run_sync(_tables)


async def test_down_to_base_and_up_again(store: Store) -> None:
    await downgrade(store.engine, "base")
    async with store.read() as conn:
        assert not (set(schema.TABLE_NAMES) & await conn.run_sync(_tables))
    assert await store.current_revision() is None
    await store.migrate()
    await store.migrate()  # idempotent at head
    assert await store.current_revision() == shipped_heads()
    async with store.read() as conn:
        assert await conn.run_sync(_diff) == []


async def test_sqlite_synchronous_can_be_relaxed_to_normal(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'n.db'}", synchronous="normal")
    async with store, store.read() as conn:
        assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 1


async def test_sqlite_connection_settings(tmp_path: Path) -> None:
    async with Store(f"sqlite:///{tmp_path / 'p.db'}", busy_timeout_ms=2500) as store:
        assert store.url.drivername == "sqlite+aiosqlite"
        async with store.read() as conn:
            pragmas = {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 2,  # FULL: a commit is on disk before it returns
        "foreign_keys": 1,
        "busy_timeout": 2500,
    }


async def test_foreign_keys_enforced(store: Store) -> None:
    from datetime import UTC, datetime

    from sqlalchemy.exc import IntegrityError

    now = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(IntegrityError):
        async with store.begin() as conn:
            await conn.execute(
                schema.customer_phones.insert().values(
                    msisdn="+6281234567890",
                    customer_id="000000000001",
                    failed_attempts=0,
                    created_at=now,
                    updated_at=now,
                )
            )
