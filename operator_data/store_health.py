"""A stalled or failing store is seen: a bounded write probe, readiness that tells the
truth, and the hub's store watch (an ERROR, a helpdesk incident, the health gauges).

- `probe(store, timeout_s)`: one small write transaction (PostgreSQL: a transaction id is
  assigned and committed, which a read-only or recovering server refuses; SQLite: the
  store's BEGIN IMMEDIATE, i.e. the write lock, and COMMIT). The caller waits at most
  `timeout_s`; a probe still waiting is left to finish in the background, never
  cancelled (on SQLite it may share a group-commit transaction whose other units a
  cancellation would fail), and only one runs per store at a time.
- `check_ready`: the probe, then (for the hub) whether work is moving: the oldest
  unprocessed inbound SMS and the most overdue outbox row, both one index lookup.
- `StoreWatch`: the hub's loop over the probe and the store's call record (`Store.health`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Self

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.log_dedupe import RepeatFilter
from operator_data.settings import DatabaseSettings
from operator_data.store import Store, schema, utcnow
from operator_data.store.errors import StoreError
from operator_data.store.outbox import next_due
from operator_data.store.states import MessageState

log = logging.getLogger("operator_data.store_health")
STORE_STALLED = "store_stalled"
#: The hub's supervisor loops log here; their repeated errors are counted, not repeated.
HUB_LOGGER = "operator_data.hub"

_inflight: weakref.WeakKeyDictionary[Store, asyncio.Task[float]] = weakref.WeakKeyDictionary()


class StoreStalled(StoreError):
    """The write probe did not finish within its time limit."""


def _summary(error: BaseException) -> str:
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0][:200] if lines else ''}"


async def _bound(conn: AsyncConnection, timeout_s: float) -> None:
    """PostgreSQL ends this transaction's statements itself after `timeout_s`."""
    if conn.dialect.name == "postgresql":
        ms = max(1, int(timeout_s * 1000))
        await conn.execute(text(f"SET LOCAL statement_timeout = {ms}"))
        await conn.execute(text(f"SET LOCAL lock_timeout = {ms}"))


async def _write_probe(store: Store, timeout_s: float) -> float:
    started = time.monotonic()
    async with store.begin() as conn:
        await _bound(conn, timeout_s)
        if store.dialect == "postgresql":
            await conn.execute(text("SELECT pg_current_xact_id()"))
        else:  # begin() took the write lock (BEGIN IMMEDIATE); the COMMIT ends it
            await conn.execute(text("SELECT 1"))
    return time.monotonic() - started


def _record(store: Store, task: asyncio.Task[float]) -> None:
    health = store.health
    if task.cancelled():
        return
    error = task.exception()
    health.probe_ok = error is None
    health.probe_seconds = None if error is not None else task.result()


async def probe(store: Store, timeout_s: float) -> float:
    """Seconds the write probe took; StoreStalled if it has not finished after
    `timeout_s`, or the store's error if it failed."""
    task = _inflight.get(store)
    if task is None or task.done():
        task = asyncio.create_task(_write_probe(store, timeout_s), name="store-probe")
        task.add_done_callback(lambda done: _record(store, done))
        _inflight[store] = task
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        store.health.probe_ok = False
        store.health.probe_seconds = None
        raise StoreStalled(f"the write probe has not finished after {timeout_s:g} s")
    return task.result()


@dataclass(frozen=True, slots=True)
class WorkAges:
    """Seconds the oldest unprocessed inbound SMS has waited and the most overdue outbox
    row is late (None: there is none)."""

    inbound_s: float | None
    outbox_s: float | None


async def work_ages(conn: AsyncConnection, now: datetime) -> WorkAges:
    m = schema.messages
    # ix_messages_state_state_at: the first entry of the "received" range.
    oldest = await conn.scalar(
        select(func.min(m.c.state_at)).where(m.c.state == MessageState.RECEIVED.value)
    )
    due = await next_due(conn)  # two index lookups (store/outbox.py)
    inbound = None if oldest is None else max(0.0, (now - oldest).total_seconds())
    outbox = None if due is None or due > now else (now - due).total_seconds()
    return WorkAges(inbound, outbox)


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reason: str | None = None
    detail: str | None = None

    def body(self) -> dict[str, str]:
        if self.ready:
            return {"status": "ready"}
        return {"status": "unavailable", "reason": self.reason or "", "detail": self.detail or ""}


async def check_ready(
    store: Store, db: DatabaseSettings, now: datetime, *, check_work: bool
) -> Readiness:
    """Whether the store takes a write within `db.probe_timeout_s` and (`check_work`, for
    a hub) its inbound SMS and outbox are not older than the settings allow."""
    try:
        await probe(store, db.probe_timeout_s)
    except StoreStalled as error:
        return Readiness(False, "write_stalled", str(error))
    except (SQLAlchemyError, StoreError, OSError) as error:
        return Readiness(False, "write_failed", _summary(error))
    if not check_work:
        return Readiness(True)
    try:
        async with asyncio.timeout(db.probe_timeout_s), store.read() as conn:
            await _bound(conn, db.probe_timeout_s)
            ages = await work_ages(conn, now)
    except TimeoutError:
        return Readiness(False, "work_unreadable", f"no answer in {db.probe_timeout_s:g} s")
    except (SQLAlchemyError, StoreError, OSError) as error:
        return Readiness(False, "work_unreadable", _summary(error))
    if ages.inbound_s is not None and ages.inbound_s > db.ready_inbound_age_s:
        return Readiness(
            False, "inbound_stalled", f"oldest unprocessed inbound SMS: {ages.inbound_s:.0f} s"
        )
    if ages.outbox_s is not None and ages.outbox_s > db.ready_outbox_age_s:
        return Readiness(False, "outbox_stalled", f"oldest due outbox row: {ages.outbox_s:.0f} s")
    return Readiness(True)


@dataclass(slots=True)
class _Outage:
    started: float
    subject: str
    reminded: float
    back: bool = False  # the store answered again; the outage ends once its incident is in
    incident: int | None = None
    opening: asyncio.Task[int] | None = field(default=None)


class StoreWatch:
    """The hub's store watch: `async with StoreWatch(store, settings.database, ...)`.

    Every `probe_interval_s` it probes the store and reads its call record. A stall (the
    probe failed or took longer than `probe_timeout_s`, a call timed out since the last
    look, or `failures_alarm` calls failed since then) is logged at ERROR once, then
    reminded at most every `alarm_reminder_s`, and opens one helpdesk incident per outage.
    The incident is written in the background and retried on each look until the store
    takes it: the watch itself never waits on the broken store. While it runs, repeated
    identical errors of the hub's loops are logged once with a count (log_dedupe.py).
    """

    def __init__(
        self,
        store: Store,
        settings: DatabaseSettings,
        *,
        worker_id: str = "hub",
    ) -> None:
        self._store = store
        self._settings = settings
        self._worker = worker_id
        self._timeouts_seen = store.health.timeouts
        self._failures_seen = store.health.failures
        self._outage: _Outage | None = None
        self._task: asyncio.Task[None] | None = None
        self.dedupe = RepeatFilter()

    @property
    def stalled(self) -> bool:
        return self._outage is not None

    @property
    def incident(self) -> int | None:
        """The helpdesk item opened for the current (or last) outage, once written."""
        return None if self._outage is None else self._outage.incident

    async def __aenter__(self) -> Self:
        logging.getLogger(HUB_LOGGER).addFilter(self.dedupe)
        self._task = asyncio.create_task(self._run(), name=f"{self._worker}-store-watch")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        logging.getLogger(HUB_LOGGER).removeFilter(self.dedupe)
        tasks = [t for t in (self._task, self._outage and self._outage.opening) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.dedupe.flush()

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # the watch must outlive whatever it watches
                log.exception("store watch: check failed")
            await asyncio.sleep(self._settings.probe_interval_s)

    async def _problem(self) -> str | None:
        db, health = self._settings, self._store.health
        # The calls since the last look, counted before the probe (whose own outcome is
        # judged apart: a probe that works does not undo the calls that failed).
        timeouts, self._timeouts_seen = health.timeouts - self._timeouts_seen, health.timeouts
        failures, self._failures_seen = health.failures - self._failures_seen, health.failures
        last_error = health.last_error
        try:
            await probe(self._store, db.probe_timeout_s)  # StoreStalled past the timeout
        except (SQLAlchemyError, StoreError, OSError) as error:
            return f"write probe failed: {_summary(error)}"
        if timeouts > 0:
            return f"{timeouts} store call(s) timed out; last: {last_error}"
        if failures >= db.failures_alarm:
            return f"{failures} store calls failed since the last look; last: {last_error}"
        return None

    async def check(self) -> str | None:
        """One look: the problem found (None: the store is well)."""
        self.dedupe.flush()
        problem = await self._problem()
        now = time.monotonic()
        health = self._store.health
        outage = self._outage
        if problem is None:
            health.alarm = None
            if outage is not None:
                if not outage.back:
                    outage.back = True
                    log.warning(
                        "store is back on worker %s after %.0f s",
                        self._worker,
                        now - outage.started,
                    )
                self._open_incident(outage)  # still owed: it goes in now the store is back
                if outage.incident is not None:
                    self._outage = None
            return None
        health.alarm = problem
        if outage is not None and outage.back:  # a new stall before the last one's incident
            outage.back = False
            log.error("store stalled again on worker %s: %s", self._worker, problem)
        elif outage is None:
            outage = self._outage = _Outage(now, problem, reminded=now)
            log.error("store stalled on worker %s: %s", self._worker, problem)
        elif now - outage.reminded >= self._settings.alarm_reminder_s:
            outage.reminded = now
            log.error(
                "store still stalled on worker %s (for %.0f s): %s",
                self._worker,
                now - outage.started,
                problem,
            )
        self._open_incident(outage)
        return problem

    def _open_incident(self, outage: _Outage) -> None:
        """Start (or look at) the outage's incident write, without waiting for it."""
        task = outage.opening
        if outage.incident is not None:
            return
        if task is not None and task.done():
            outage.opening = None
            if not task.cancelled() and task.exception() is None:
                outage.incident = task.result()
                log.error("store stall: helpdesk incident %d opened", outage.incident)
                return
            # Failed: the store is still broken; another try on the next look.
        if outage.opening is None:
            outage.opening = asyncio.create_task(self._write_incident(outage.subject))

    async def _write_incident(self, subject: str) -> int:
        from operator_data.hub.helpdesk import open_incident

        async with self._store.begin() as conn:
            return await open_incident(
                conn,
                category=STORE_STALLED,
                subject=f"Database stalled on worker {self._worker}: {subject}",
                at=utcnow(),
                notes=(
                    "The hub's database calls failed or timed out. Work waits meanwhile and "
                    "catches up when the database is back; see docs/runbook.md, "
                    "'When the store stalls'."
                ),
            )
