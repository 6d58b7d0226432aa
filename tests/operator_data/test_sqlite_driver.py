"""The hub's SQLite driver (aiosqlite with one thread trip per statement, or none for what
cannot wait) behind SQLAlchemy: results small and large, streamed and buffered, errors,
executemany, and the trip count."""

from __future__ import annotations

import asyncio
import sqlite3
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


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The calls handed to aiosqlite's thread, by function (or SQL for a statement)."""
    seen: list[str] = []
    real = aiosqlite.Connection._execute

    async def counted(
        self: aiosqlite.Connection, fn: object, *args: object, **kwargs: object
    ) -> object:
        name = getattr(fn, "__name__", repr(fn))
        seen.append(str(args[1]).split()[0] if name == "_run" else name)
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return seen


async def test_a_statement_costs_one_trip_to_the_thread(tmp_path: Path, trips: list[str]) -> None:
    async with Store(f"sqlite+aiosqlite:///{tmp_path}/t.db", sqlite_inline=False) as store:
        async with store.begin() as conn:
            await conn.run_sync(metadata.create_all)
        await _fill(store, 3)
        async with store.read() as conn:
            trips.clear()
            rows = (await conn.execute(select(items.c.name))).all()
            assert trips == ["SELECT"]  # aiosqlite's own cursor takes four
    assert len(rows) == 3


async def test_inline_a_unit_hands_over_only_what_may_wait(store: Store, trips: list[str]) -> None:
    await _fill(store, 3)
    trips.clear()
    async with store.begin() as conn:
        for n in range(5):
            await conn.execute(insert(items).values(name=f"x{n}"))
        rows = (await conn.execute(select(items.c.name))).all()
    assert len(rows) == 8
    # The write lock was free, so it was taken inline; only the commit, which flushes,
    # went to the thread.
    assert trips == ["commit"]


def test_what_may_wait() -> None:
    waits = ["BEGIN IMMEDIATE", " begin", "COMMIT", "ROLLBACK", "PRAGMA busy_timeout=1", "VACUUM"]
    assert all(sqlite_driver.may_wait(sql) for sql in waits)
    quick = ["SELECT 1", "INSERT INTO t VALUES (1)", "UPDATE t SET a=1", "SAVEPOINT sa_1"]
    assert not any(sqlite_driver.may_wait(sql) for sql in quick)


async def test_inline_a_writer_elsewhere_never_blocks_the_event_loop(
    store: Store, tmp_path: Path, trips: list[str]
) -> None:
    """Another process holds the write lock: the hub's unit waits for it in the thread
    while the event loop goes on (here: another task gets to run and releases the lock)."""
    await _fill(store, 1)
    other = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO items (name) VALUES ('theirs')")
    waiting = asyncio.Event()

    async def unit() -> None:
        waiting.set()
        async with store.begin() as conn:
            await conn.execute(insert(items).values(name="ours"))

    task = asyncio.create_task(unit())
    await waiting.wait()
    await asyncio.sleep(0)  # the unit is now waiting for the lock: in the thread
    other.execute("COMMIT")  # runs only because the loop is free
    other.close()
    await task
    assert "BEGIN" in trips  # the inline attempt found the lock taken: waited in the thread
    async with store.read() as conn:
        names = set((await conn.execute(select(items.c.name))).scalars())
    assert {"theirs", "ours"} <= names
    # The connection kept its busy timeout after the inline attempt that found it locked.
    async with store.begin() as conn:
        busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
    assert busy == store.busy_timeout_ms


async def test_inline_a_read_unit_hands_nothing_over(store: Store, trips: list[str]) -> None:
    """A deferred BEGIN takes no lock and the COMMIT of a unit that only read flushes
    nothing: a read unit runs wholly on the event loop."""
    await _fill(store, 3)
    trips.clear()
    async with store.read() as conn:
        rows = (await conn.execute(select(items.c.name))).all()
        again = (await conn.execute(select(items.c.name))).all()
    assert len(rows) == len(again) == 3
    assert trips == []


async def test_inline_a_read_unit_keeps_its_snapshot_while_a_writer_commits(
    store: Store, tmp_path: Path
) -> None:
    await _fill(store, 2)
    other = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    async with store.read() as conn:
        before = (await conn.execute(select(items.c.name))).all()
        other.execute("INSERT INTO items (name) VALUES ('theirs')")  # commits at once
        during = (await conn.execute(select(items.c.name))).all()
    other.close()
    assert during == before  # one snapshot for the whole unit, as in the thread
    async with store.read() as conn:
        after = set((await conn.execute(select(items.c.name))).scalars())
    assert "theirs" in after


async def test_a_unit_begun_deferred_that_writes_commits_in_the_thread(
    store: Store, trips: list[str]
) -> None:
    """A read unit is meant to read; one that writes anyway still has its COMMIT (which
    may flush) handed to the thread, and its write is durable."""
    await _fill(store, 1)
    trips.clear()
    async with store.read() as conn:
        await conn.execute(insert(items).values(name="written"))
    assert trips == ["commit"]
    async with store.read() as conn:
        names = set((await conn.execute(select(items.c.name))).scalars())
    assert "written" in names


async def test_a_read_unit_that_fails_is_rolled_back_and_the_connection_goes_on(
    store: Store, trips: list[str]
) -> None:
    await _fill(store, 2)
    trips.clear()
    with pytest.raises(RuntimeError):
        async with store.read() as conn:
            await conn.execute(select(items.c.name))
            raise RuntimeError("the caller gave up")
    async with store.read() as conn:
        assert len((await conn.execute(select(items.c.name))).all()) == 2
    assert trips == []
