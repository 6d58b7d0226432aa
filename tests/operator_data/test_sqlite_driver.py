"""The hub's SQLite driver (aiosqlite with one thread trip per statement) behind SQLAlchemy:
results small and large, streamed and buffered, errors, executemany, and the trip count."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.exc import IntegrityError

from operator_data.store import Store, sqlite_driver

metadata = MetaData()
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, unique=True, nullable=False),
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(f"sqlite+aiosqlite:///{tmp_path}/t.db") as opened:
        async with opened.begin() as conn:
            await conn.run_sync(metadata.create_all)
        yield opened


async def _fill(store: Store, count: int) -> None:
    if count == 0:
        return
    async with store.begin() as conn:
        await conn.execute(insert(items), [{"name": f"n{i:05d}"} for i in range(count)])


async def test_the_store_uses_the_one_trip_driver(store: Store) -> None:
    async with store.read() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, sqlite_driver.Connection)


@pytest.mark.parametrize(
    "count",
    [0, 1, sqlite_driver.PREFETCH - 1, sqlite_driver.PREFETCH, 3 * sqlite_driver.PREFETCH + 7],
)
async def test_results_of_every_size_come_back_whole_and_in_order(store: Store, count: int) -> None:
    await _fill(store, count)
    async with store.read() as conn:
        buffered = (await conn.execute(select(items.c.name).order_by(items.c.id))).scalars().all()
        streamed = [
            row.name async for row in await conn.stream(select(items.c.name).order_by(items.c.id))
        ]
        partitions = [
            [row.name for row in part]
            async for part in (
                await conn.stream(select(items.c.name).order_by(items.c.id))
            ).partitions(100)
        ]
    expected = [f"n{i:05d}" for i in range(count)]
    assert buffered == expected
    assert streamed == expected
    assert [name for part in partitions for name in part] == expected
    assert all(len(part) == 100 for part in partitions[:-1])


async def test_a_stream_left_early_closes_its_cursor_and_the_connection_goes_on(
    store: Store,
) -> None:
    await _fill(store, 2 * sqlite_driver.PREFETCH)
    async with store.read() as conn:
        result = await conn.stream(select(items.c.name).order_by(items.c.id))
        first = await result.fetchmany(3)
        await result.close()
        count = await conn.scalar(select(text("count(*)")).select_from(items))
    assert [row.name for row in first] == ["n00000", "n00001", "n00002"]
    assert count == 2 * sqlite_driver.PREFETCH


async def test_writes_report_rowcount_and_lastrowid(store: Store) -> None:
    await _fill(store, 5)
    async with store.begin() as conn:
        inserted = await conn.execute(insert(items).values(name="last"))
        updated = await conn.execute(
            items.update().where(items.c.id <= 3).values(name=items.c.name + "x")
        )
    assert inserted.inserted_primary_key == (6,)
    assert updated.rowcount == 3


async def test_an_error_is_the_dbapi_error_and_rolls_the_unit_back(store: Store) -> None:
    await _fill(store, 2)
    with pytest.raises(IntegrityError) as raised:
        async with store.begin() as conn:
            await conn.execute(insert(items).values(name="new"))
            await conn.execute(insert(items).values(name="n00000"))  # unique
    assert isinstance(raised.value.orig, aiosqlite.IntegrityError)
    async with store.read() as conn:
        names = (await conn.execute(select(items.c.name).order_by(items.c.id))).scalars().all()
    assert names == ["n00000", "n00001"]


async def test_a_statement_costs_one_trip_to_the_thread(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _fill(store, 3)
    trips: list[str] = []
    real = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: object, *args: object) -> object:
        trips.append(getattr(fn, "__name__", repr(fn)))
        return await real(self, fn, *args)

    async with store.read() as conn:
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        rows = (await conn.execute(select(items.c.name))).all()
        monkeypatch.undo()
    assert len(rows) == 3
    assert trips == ["_run"]  # aiosqlite's own cursor takes four: cursor, execute, fetch, close
