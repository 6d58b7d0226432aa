"""SQLite group commit in `Store.begin` (operator_data/store/engine.py).

Units of work that queue while one runs share its transaction, each in its own savepoint,
and are committed together; each caller resumes only once its writes are committed. A
unit that fails is rolled back alone; a COMMIT that fails fails every unit of its group and
keeps none of their writes; a caller cancelled while waiting leaves nobody stuck.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    event,
    insert,
    select,
    text,
)

from operator_data.store import Store
from operator_data.store.engine import GROUP_LIMIT, GroupCommitFailed

metadata = MetaData()
parents = Table("parents", metadata, Column("id", Integer, primary_key=True))
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, unique=True, nullable=False),
    Column("parent_id", Integer, ForeignKey("parents.id"), nullable=True),
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(f"sqlite+aiosqlite:///{tmp_path}/t.db") as opened:
        async with opened.begin() as conn:
            await conn.run_sync(metadata.create_all)
        yield opened


@contextmanager
def _commits(store: Store) -> Iterator[list[int]]:
    """Counts COMMITs of write transactions (reads commit too: not counted)."""
    seen: list[int] = []

    def on_commit(conn: Any) -> None:
        if conn.get_execution_options().get("pintar_sqlite_immediate"):
            seen.append(1)

    engine = store.engine.sync_engine
    event.listen(engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(engine, "commit", on_commit)


async def _names(store: Store) -> list[str]:
    async with store.read() as conn:
        return sorted(str(n) for n in await conn.scalars(select(items.c.name)))


class _Held:
    """A unit that holds the gate until released, so that others queue behind it."""

    def __init__(self) -> None:
        self.inside = asyncio.Event()
        self.release = asyncio.Event()

    async def run(self, store: Store, name: str) -> None:
        async with store.begin() as conn:
            await conn.execute(insert(items).values(name=name))
            self.inside.set()
            await self.release.wait()


async def _queued(store: Store, count: int) -> None:
    """Until `count` tasks wait for the write gate: each new task takes a few loop turns
    to reach it, and nothing else here could wake the test."""
    while store._queued < count:  # noqa: ASYNC110 - polls the store's own counter
        await asyncio.sleep(0)


async def _insert(store: Store, name: str, *, fail: bool = False) -> str:
    async with store.begin() as conn:
        await conn.execute(insert(items).values(name=name))
        if fail:
            raise ValueError(name)
    # Back here only once committed: a read on another connection sees the row.
    assert name in await _names(store)
    return name


async def test_units_queued_behind_one_share_its_commit(store: Store) -> None:
    held = _Held()
    with _commits(store) as commits:
        first = asyncio.create_task(held.run(store, "first"))
        await held.inside.wait()
        others = [asyncio.create_task(_insert(store, f"n{i}")) for i in range(10)]
        await _queued(store, 10)
        held.release.set()
        await asyncio.gather(first, *others)
    assert await _names(store) == sorted(["first", *(f"n{i}" for i in range(10))])
    assert len(commits) == 1  # eleven units, one transaction


async def test_a_unit_alone_commits_at_once(store: Store) -> None:
    with _commits(store) as commits:
        await _insert(store, "alone")
    assert commits == [1]


async def test_a_failing_unit_is_rolled_back_alone(store: Store) -> None:
    held = _Held()
    first = asyncio.create_task(held.run(store, "first"))
    await held.inside.wait()
    good = [asyncio.create_task(_insert(store, f"g{i}")) for i in range(3)]
    bad = asyncio.create_task(_insert(store, "bad", fail=True))
    dup = asyncio.create_task(_insert(store, "g0"))  # a unique violation: this unit only
    await _queued(store, 5)
    held.release.set()
    results = await asyncio.gather(first, *good, bad, dup, return_exceptions=True)
    assert results[:4] == [None, "g0", "g1", "g2"]
    assert isinstance(results[4], ValueError)
    assert isinstance(results[5], Exception) and "UNIQUE" in str(results[5])
    assert await _names(store) == ["first", "g0", "g1", "g2"]


async def test_a_failed_commit_fails_every_unit_of_its_group(store: Store) -> None:
    held = _Held()
    first = asyncio.create_task(held.run(store, "first"))
    await held.inside.wait()

    async def orphan() -> None:
        # Foreign keys checked at COMMIT: the unit itself succeeds, its group's COMMIT fails.
        async with store.begin() as conn:
            await conn.execute(text("PRAGMA defer_foreign_keys = ON"))
            await conn.execute(insert(items).values(name="orphan", parent_id=99))

    others = [asyncio.create_task(_insert(store, f"n{i}")) for i in range(3)]
    bad = asyncio.create_task(orphan())
    await _queued(store, 4)
    held.release.set()
    results = await asyncio.gather(first, *others, bad, return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results), results
    assert any(isinstance(r, GroupCommitFailed) for r in results)
    assert await _names(store) == []
    # The store goes on: the next unit starts a fresh transaction.
    await _insert(store, "after")
    assert await _names(store) == ["after"]


async def test_a_caller_cancelled_while_queued_leaves_nobody_waiting(store: Store) -> None:
    held = _Held()
    first = asyncio.create_task(held.run(store, "first"))
    await held.inside.wait()
    doomed = asyncio.create_task(_insert(store, "doomed"))
    await _queued(store, 1)
    doomed.cancel()
    held.release.set()
    async with asyncio.timeout(10):
        await first
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert await _names(store) == ["first"]
    await _insert(store, "next")


async def test_a_group_holds_at_most_the_limit(store: Store) -> None:
    held = _Held()
    count = GROUP_LIMIT + 10
    with _commits(store) as commits:
        first = asyncio.create_task(held.run(store, "first"))
        await held.inside.wait()
        others = [asyncio.create_task(_insert(store, f"n{i:03d}")) for i in range(count)]
        await _queued(store, count)
        held.release.set()
        await asyncio.gather(first, *others)
    assert len(await _names(store)) == count + 1
    assert 2 <= len(commits) <= 3


async def test_closing_the_store_commits_an_open_group(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/c.db"
    async with Store(url) as store:
        async with store.begin() as conn:
            await conn.run_sync(metadata.create_all)
        held = _Held()
        first = asyncio.create_task(held.run(store, "first"))
        await held.inside.wait()
        second = asyncio.create_task(_insert(store, "second"))
        await _queued(store, 1)
        held.release.set()
        await asyncio.gather(first, second)
    async with Store(url) as reopened:
        assert await _names(reopened) == ["first", "second"]


async def test_the_first_unit_failing_loses_nothing_of_those_behind_it(store: Store) -> None:
    inside, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with store.begin() as conn:
            await conn.execute(insert(items).values(name="first"))
            inside.set()
            await release.wait()
            raise ValueError("first")

    failing = asyncio.create_task(first())
    await inside.wait()
    others = [asyncio.create_task(_insert(store, f"n{i}")) for i in range(3)]
    await _queued(store, 3)
    release.set()
    results = await asyncio.gather(failing, *others, return_exceptions=True)
    assert isinstance(results[0], ValueError)
    assert results[1:] == ["n0", "n1", "n2"]
    assert await _names(store) == ["n0", "n1", "n2"]
