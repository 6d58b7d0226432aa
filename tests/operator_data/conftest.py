"""A migrated Store on each backend: SQLite (a temp file per test) and PostgreSQL (one
throw-away database per test session, emptied between tests)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from operator_data.crypto import MasterKey
from operator_data.settings import PinPolicy
from operator_data.store import Store, schema


async def _create_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    async with Store(url) as store:
        await store.migrate()


@pytest.fixture(scope="session")
def pg_database_url(postgres_url: str) -> Iterator[str]:
    """A fresh, migrated database `pintar_test_<random>` for this session, dropped after."""
    url = make_url(postgres_url)
    admin_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"pintar_test_{secrets.token_hex(6)}"
    asyncio.run(_create_database(admin_dsn, name))
    test_url = url.set(database=name).render_as_string(hide_password=False)
    try:
        asyncio.run(_migrate(test_url))
        yield test_url
    finally:
        asyncio.run(_drop_database(admin_dsn, name))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'pintar.db'}"
    return str(request.getfixturevalue("pg_database_url"))


@pytest.fixture
async def store(database_url: str, backend: str) -> AsyncIterator[Store]:
    async with Store(database_url) as opened:
        await opened.migrate()
        if backend == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in schema.metadata.sorted_tables)
            async with opened.begin() as conn:
                await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        yield opened


@pytest.fixture
def master_key() -> MasterKey:
    return MasterKey(secrets.token_bytes(32))


class Clock:
    """A settable clock so lock-out expiry is tested without sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pin_policy() -> PinPolicy:
    return PinPolicy(length=6, max_attempts=3, lockout_minutes=30)
