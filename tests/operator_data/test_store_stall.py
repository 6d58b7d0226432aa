"""A stalled store is seen, not silent (issue 18 item 5): timeouts end in the store's own
error, a broken connection is discarded, /readyz says 503 with a reason, the store watch
raises an alarm and a helpdesk incident, and a repeating error is logged once with a count.

Real PostgreSQL (a scratch database per session, tests/operator_data/conftest.py) and
real SQLite files; locks are held by a second connection. No sleeps as synchronisation:
events, or polling with a deadline.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from operator_data.api.app import create_app
from operator_data.log_dedupe import RepeatFilter
from operator_data.registry import Registry
from operator_data.settings import DatabaseSettings, PinPolicy, Settings, WebSettings
from operator_data.store import Store, StoreError, schema
from operator_data.store.errors import StoreTimeout
from operator_data.store.outbox import next_due
from operator_data.store_health import HUB_LOGGER, STORE_STALLED, StoreWatch

pytestmark = pytest.mark.timeout(60)
DEADLINE_S = 20.0


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll `condition` until it holds; fail after DEADLINE_S."""
    try:
        async with asyncio.timeout(DEADLINE_S):
            # Polling with a deadline (an outside process's lock has no event to wait on).
            while not await condition():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"not within {DEADLINE_S} s: {what}")


def _app_client(store: Store, db: DatabaseSettings, *, hub: bool) -> httpx.AsyncClient:
    settings = Settings(web=WebSettings(docs="public"), database=db)
    app = create_app(settings, store, Registry(store, master_key=None, pin_policy=PinPolicy()))
    if hub:
        app.state.pintar_hub = object()  # what the hub's app carries: work checks are on
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub")


# -- PostgreSQL ------------------------------------------------------------------------


@pytest.fixture
def admin_dsn(pg_database_url: str) -> str:
    return make_url(pg_database_url).set(drivername="postgresql").render_as_string(False)


@pytest.fixture
async def pg_store(pg_database_url: str) -> AsyncIterator[Store]:
    # Short limits so that the test does not wait long; what is asserted is the outcome.
    async with Store(pg_database_url, lock_timeout_ms=300, statement_timeout_ms=10_000) as store:
        names = ", ".join(f'"{t.name}"' for t in schema.metadata.sorted_tables)
        async with store.begin() as conn:
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        yield store


async def _incidents(store: Store) -> int:
    items = schema.helpdesk_items
    async with store.read() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(items).where(items.c.category == STORE_STALLED)
        )
    return int(count or 0)


async def test_pg_table_lock_times_out_alarms_and_readiness_says_503(
    pg_store: Store, admin_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = DatabaseSettings(probe_timeout_s=1.0, failures_alarm=3)
    watch = StoreWatch(pg_store, db, worker_id="w1")  # looked at by hand: check()
    locker = await asyncpg.connect(admin_dsn)
    held = locker.transaction()
    await held.start()
    await locker.execute("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE")
    try:
        # The dispatcher's read of the outbox: it ends, in the store's own error.
        with pytest.raises(StoreTimeout) as raised:
            async with pg_store.read() as conn:
                await next_due(conn)
        assert isinstance(raised.value, StoreError)
        assert (raised.value.kind, raised.value.limit) == ("SELECT", "lock_timeout")
        assert "SELECT ran out of lock_timeout" in str(raised.value)

        caplog.set_level(logging.ERROR, logger="operator_data.store_health")
        problem = await watch.check()
        assert problem is not None and "timed out" in problem
        alarms = [r for r in caplog.records if "store stalled on worker w1" in r.getMessage()]
        assert len(alarms) == 1 and alarms[0].levelno == logging.ERROR
        # The incident goes in through a table the lock does not hold.
        await _until(lambda: _count_is(pg_store, 1), "a store_stalled helpdesk incident")

        async with _app_client(pg_store, db, hub=True) as client:
            answer = await client.get("/readyz")
            assert answer.status_code == 503
            assert answer.json()["status"] == "unavailable"
            assert answer.json()["reason"] == "work_unreadable"
            assert "pintar_store_up 0.0" in (await client.get("/metrics")).text
    finally:
        await held.rollback()
        await locker.close()

    async with _app_client(pg_store, db, hub=True) as client:

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await _until(ready, "/readyz ready once the lock is gone")
    caplog.clear()
    caplog.set_level(logging.WARNING, logger="operator_data.store_health")
    # The first look may still count the calls that timed out under the lock since the
    # last look (the /metrics read above); the one after it finds the store well.
    await watch.check()
    assert await watch.check() is None
    assert not watch.stalled and pg_store.health.up
    assert any("store is back on worker w1" in r.getMessage() for r in caplog.records)
    assert await _incidents(pg_store) == 1  # one per outage


async def _count_is(store: Store, n: int) -> bool:
    return await _incidents(store) == n


async def test_pg_stale_outbox_makes_the_hub_unready(pg_store: Store) -> None:
    """Work not moving: an outbox row overdue past `ready_outbox_age_s` (a bounded read)."""
    from datetime import timedelta

    from operator_data.store import Flow, utcnow
    from operator_data.store import messages as log

    db = DatabaseSettings(ready_outbox_age_s=60)
    async with pg_store.begin() as conn:
        await log.enqueue_outbound(
            conn,
            flow=Flow.HUB_TO_METER,
            idempotency_key="stale-1",
            destination="+628112000001",
            payload=b"\x01frame",
            meter_number="14000000001",
            kind="token",
            at=utcnow() - timedelta(minutes=10),
        )
    async with _app_client(pg_store, db, hub=False) as client:
        assert (await client.get("/readyz")).json() == {"status": "ready"}  # helpdesk only
    async with _app_client(pg_store, db, hub=True) as client:
        answer = await client.get("/readyz")
        assert answer.status_code == 503 and answer.json()["reason"] == "outbox_stalled"


async def _pid_of(store: Store) -> int:
    async with store.read() as conn:
        return int(await conn.scalar(text("SELECT pg_backend_pid()")) or 0)


async def test_pg_connection_broken_mid_call_is_discarded(pg_store: Store, admin_dsn: str) -> None:
    """asyncpg's "another operation is in progress": the connection is invalidated, not
    pooled, and the next call works (on another backend)."""
    admin = await asyncpg.connect(admin_dsn)
    pids: list[int] = []
    sleepers: list[asyncio.Task[object]] = []

    async def sleeping() -> bool:
        state = await admin.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pids[0])
        return bool(state == "active")

    try:
        with pytest.raises(DBAPIError, match="another operation is in progress"):
            async with pg_store.read() as conn:
                pids.append(int(await conn.scalar(text("SELECT pg_backend_pid()")) or 0))
                raw = (await conn.get_raw_connection()).driver_connection
                assert raw is not None
                # An operation left running on the connection, as a call cancelled
                # mid-flight or killed under the pool leaves it.
                sleepers.append(asyncio.create_task(raw.execute("SELECT pg_sleep(30)")))
                await _until(sleeping, "the left-over operation running")
                await conn.execute(text("SELECT 1"))
        await admin.execute("SELECT pg_terminate_backend($1)", pids[0])
        await asyncio.gather(*sleepers, return_exceptions=True)
        for _ in range(3):  # the broken connection is not handed out again
            assert await _pid_of(pg_store) != pids[0]
    finally:
        for sleeper in sleepers:
            sleeper.cancel()
        await asyncio.gather(*sleepers, return_exceptions=True)
        await admin.close()


async def test_pg_held_connection_broken_mid_call_reconnects(
    pg_store: Store, admin_dsn: str
) -> None:
    """A connection held for long (as run_once's and the purchase claims' are): once
    asyncpg says "another operation is in progress" it is invalidated, so after the
    rollback its next statement runs on a new backend instead of failing the same way."""
    admin = await asyncpg.connect(admin_dsn)
    sleepers: list[asyncio.Task[object]] = []
    try:
        async with pg_store.engine.connect() as opened:
            conn = await opened.execution_options(isolation_level="AUTOCOMMIT")
            pid = int(await conn.scalar(text("SELECT pg_backend_pid()")) or 0)
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            sleepers.append(asyncio.create_task(raw.execute("SELECT pg_sleep(30)")))

            async def sleeping() -> bool:
                state = await admin.fetchval(
                    "SELECT state FROM pg_stat_activity WHERE pid = $1", pid
                )
                return bool(state == "active")

            await _until(sleeping, "the left-over operation running")
            with pytest.raises(DBAPIError, match="another operation is in progress"):
                await conn.execute(text("SELECT 1"))
            assert conn.invalidated
            await conn.rollback()
            assert int(await conn.scalar(text("SELECT pg_backend_pid()")) or 0) != pid
    finally:
        for sleeper in sleepers:
            sleeper.cancel()
        await asyncio.gather(*sleepers, return_exceptions=True)
        await admin.close()


async def test_pg_backend_killed_during_a_call_next_call_works(
    pg_store: Store, admin_dsn: str
) -> None:
    admin = await asyncpg.connect(admin_dsn)
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def long_call() -> None:
        async with pg_store.read() as conn:
            started.set_result(int(await conn.scalar(text("SELECT pg_backend_pid()")) or 0))
            await conn.execute(text("SELECT pg_sleep(30)"))

    try:
        call = asyncio.create_task(long_call())
        pid = await started

        async def killed() -> bool:
            return bool(await admin.fetchval("SELECT pg_terminate_backend($1)", pid))

        await _until(killed, "the backend terminated")
        with pytest.raises(DBAPIError):
            await call
        assert pg_store.health.consecutive_failures >= 1
        assert await _pid_of(pg_store) != pid
        assert pg_store.health.consecutive_failures == 0
    finally:
        await admin.close()


# -- SQLite ----------------------------------------------------------------------------


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    # busy_timeout short: a locked write gives up soon (the outcome is asserted, not when).
    async with Store(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", busy_timeout_ms=200) as store:
        await store.migrate()
        yield store


def _hold_write_lock(store: Store) -> sqlite3.Connection:
    database = store.url.database
    assert database
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


async def test_sqlite_write_lock_times_out_and_readiness_says_503(sqlite_store: Store) -> None:
    db = DatabaseSettings(probe_timeout_s=5.0)
    other = _hold_write_lock(sqlite_store)
    try:
        with pytest.raises(StoreTimeout) as raised:
            async with sqlite_store.begin() as conn:
                await conn.execute(text("SELECT 1"))
        assert raised.value.kind == "BEGIN"
        assert raised.value.limit == "busy_timeout (200 ms)"
        async with _app_client(sqlite_store, db, hub=False) as client:
            answer = await client.get("/readyz")
            assert answer.status_code == 503
            assert answer.json()["reason"] == "write_failed"
            assert "busy_timeout" in answer.json()["detail"]
    finally:
        other.rollback()
        other.close()
    async with _app_client(sqlite_store, db, hub=False) as client:
        assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_sqlite_write_probe_still_waiting_is_a_stall(tmp_path: Path) -> None:
    """A probe that has not finished within probe_timeout_s: 503 at once, the probe left
    to finish (never cancelled) and the store ready again when the lock goes."""
    async with Store(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}") as store:  # busy 10 s
        await store.migrate()
        db = DatabaseSettings(probe_timeout_s=0.2)
        other = _hold_write_lock(store)
        async with _app_client(store, db, hub=False) as client:
            try:
                answer = await client.get("/readyz")
                assert answer.status_code == 503
                assert answer.json()["reason"] == "write_stalled"
            finally:
                other.rollback()
                other.close()

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await _until(ready, "/readyz ready once the lock is gone")


async def test_sqlite_watch_counts_repeated_hub_errors(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """The hub's loop retrying a locked store: one traceback, then a count."""
    now = [0.0]
    hub_log = logging.getLogger(HUB_LOGGER)
    caplog.set_level(logging.ERROR, logger=HUB_LOGGER)
    db = DatabaseSettings(probe_interval_s=3600)
    watch = StoreWatch(sqlite_store, db, worker_id="w1")
    watch.dedupe = RepeatFilter(clock=lambda: now[0])
    other = _hold_write_lock(sqlite_store)
    try:
        async with watch:
            for _ in range(5):
                try:
                    async with sqlite_store.begin() as conn:
                        await conn.execute(text("SELECT 1"))
                except StoreTimeout:
                    hub_log.exception("dispatch failed; retrying")
                now[0] += 1
            mine = [r for r in caplog.records if r.name == HUB_LOGGER]
            assert len(mine) == 1 and mine[0].exc_info is not None
            now[0] += 60
            assert watch.dedupe.flush() == 1
    finally:
        other.rollback()
        other.close()
    mine = [r for r in caplog.records if r.name == HUB_LOGGER]
    assert len(mine) == 2
    assert mine[1].exc_info is None
    assert "same error ×4 in the last 60 s" in mine[1].getMessage()
    assert hub_log.filters == []  # removed with the watch


async def test_watch_alarms_on_calls_failing_and_once_per_outage(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Calls failing (a full disk, say) while the probe still passes: an alarm once, no
    second ERROR while it lasts (the reminder is minutes away), one incident."""
    caplog.set_level(logging.ERROR, logger="operator_data.store_health")
    watch = StoreWatch(sqlite_store, DatabaseSettings(failures_alarm=3), worker_id="w2")
    for _ in range(3):
        sqlite_store.health.failed(OSError("database or disk is full"))
    problem = await watch.check()
    assert problem == (
        "3 store calls failed since the last look; last: OSError: database or disk is full"
    )
    for _ in range(3):
        sqlite_store.health.failed(OSError("database or disk is full"))
    assert await watch.check() is not None
    stalled = [r for r in caplog.records if "stalled" in r.getMessage()]
    assert len(stalled) == 1 and stalled[0].exc_info is None
    await _until(lambda: _count_is(sqlite_store, 1), "the incident written")
    await _until(_harvested(watch), "the outage ended once its incident is in")
    assert await _incidents(sqlite_store) == 1


def _harvested(watch: StoreWatch) -> Callable[[], Awaitable[bool]]:
    async def ended() -> bool:
        return await watch.check() is None and not watch.stalled

    return ended
