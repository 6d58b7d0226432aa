"""What every workflow step needs: settings, store, registry, keys, clock, SLA monitor, and
a unit of work whose side effects (acks, wake-ups, spawned work) run only after commit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.commands.replies import Lang
from operator_data.crypto.master_key import MasterKey
from operator_data.hub.sla import SlaMonitor
from operator_data.registry import Registry
from operator_data.settings import Settings
from operator_data.store import Store
from operator_data.store.outbox import take_queued_mark
from p2apst_adapter.client import P2apstClient

log = logging.getLogger("operator_data.hub")

Clock = Callable[[], datetime]
AfterCommit = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class Unit:
    """Effects to run once the unit's database transaction has committed."""

    after: list[AfterCommit] = field(default_factory=list)

    def later(self, effect: AfterCommit) -> None:
        self.after.append(effect)


@dataclass(slots=True)
class HubContext:
    settings: Settings
    store: Store
    registry: Registry
    master: MasterKey
    clock: Clock
    sla: SlaMonitor
    p2apst: P2apstClient | None
    wake_dispatcher: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    busy: int = 0  # units of database work in progress (see `guard`)
    quiet: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def lang(self) -> Lang:
        return Lang(self.settings.service.default_language)

    def now(self) -> datetime:
        return self.clock()

    def event_time(self, at: datetime, *, after: datetime | None = None) -> datetime:
        """When an event happened, by its gateway's clock: the stage it ends is stamped
        then, not when a busy hub got round to it (which made the SLA blame the network
        for the hub's backlog). Never later than now (a clock ahead must not stamp the
        future) nor before `after`, the start of the stage it ends (a clock behind must
        not end a stage before it began)."""
        when = min(at, self.clock())
        return when if after is None else max(when, after)

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run `work` as one of the hub's tasks: cancelled with the hub's workers, at the
        same moment (when no unit of work is in progress), and its failure logged."""
        task = asyncio.create_task(work, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("hub task %s failed", task.get_name(), exc_info=task.exception())

    async def notify(self) -> None:
        """Wake whoever waits for the hub's state to change (tests, the demo)."""
        async with self.changed:
            self.changed.notify_all()

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """Mark database work the hub must not be cancelled in the middle of: a task
        cancelled inside a SQLite write transaction can leave the database locked for the
        next process. `Hub.__aexit__` waits until no guarded work is running."""
        self.busy += 1
        self.quiet.clear()
        try:
            yield
        finally:
            self.busy -= 1
            if self.busy == 0:
                self.quiet.set()

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[tuple[AsyncConnection, Unit]]:
        async with self.guard(), self._unit() as pair:
            yield pair

    @asynccontextmanager
    async def _unit(self) -> AsyncIterator[tuple[AsyncConnection, Unit]]:
        work = Unit()
        async with self.store.begin() as conn:
            take_queued_mark(conn)  # left by an earlier user of this pooled connection
            yield conn, work
            queued = take_queued_mark(conn)
        # Woken only now (a dispatcher woken before the commit would not see the new rows),
        # and only if this unit put something in the outbox: a wake costs a claim.
        if queued:
            self.wake_dispatcher.set()
        for effect in work.after:
            await effect()
        await self.notify()
