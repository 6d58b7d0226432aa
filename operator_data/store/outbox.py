"""The outbox: durable queue of SMS to hand to a gateway, claimed with a lease.

One statement claims a batch: `UPDATE outbox ... WHERE id IN (SELECT ... FOR UPDATE SKIP
LOCKED) RETURNING ...`. On PostgreSQL SKIP LOCKED lets concurrent claimers pass over each
other's rows; on SQLite the clause is not rendered and the single UPDATE is atomic under
the database write lock (Store.begin() takes it up front with BEGIN IMMEDIATE). A worker
that dies leaves its rows to be re-claimed when the lease runs out (the sender renews the
lease while it is still sending, so the lease can be short), or at once when it restarts
under its name (`release_abandoned`); the message log's idempotency key makes the re-send
safe to deduplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.store import schema
from operator_data.store.types import utcnow

o = schema.outbox

#: Set in a connection's `info` when a row is put in the outbox in its transaction, so the
#: unit of work that commits it wakes the dispatcher (and only such a unit does).
_QUEUED_MARK = "pintar.outbox_queued"


def mark_queued(conn: AsyncConnection) -> None:
    conn.info[_QUEUED_MARK] = True


def take_queued_mark(conn: AsyncConnection) -> bool:
    """Whether rows were queued on `conn` since the mark was last taken (and clear it).
    Taken at the start of a unit too: `info` lives as long as the pooled connection."""
    return bool(conn.info.pop(_QUEUED_MARK, False))


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    message_id: str
    destination: str
    payload: bytes
    gateway_hint: str | None
    priority: int
    attempts: int
    lease_until: datetime


async def claim(
    conn: AsyncConnection,
    worker: str,
    *,
    limit: int = 10,
    lease: timedelta = timedelta(seconds=60),
    now: datetime | None = None,
) -> list[OutboxItem]:
    """Claim up to `limit` due, unleased rows for `worker` (priority, then age, first)."""
    when = now or utcnow()
    until = when + lease
    due = (
        select(o.c.id)
        .where(
            o.c.available_at <= when,
            or_(o.c.lease_until.is_(None), o.c.lease_until < when),
        )
        .order_by(o.c.priority, o.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await conn.execute(
        update(o)
        .where(o.c.id.in_(due.scalar_subquery()))
        .values(claimed_by=worker, lease_until=until, attempts=o.c.attempts + 1)
        .returning(
            o.c.id,
            o.c.message_id,
            o.c.destination,
            o.c.payload,
            o.c.gateway_hint,
            o.c.priority,
            o.c.attempts,
            o.c.lease_until,
        )
    )
    items = [
        OutboxItem(
            id=r.id,
            message_id=r.message_id,
            destination=r.destination,
            payload=r.payload,
            gateway_hint=r.gateway_hint,
            priority=r.priority,
            attempts=r.attempts,
            lease_until=until,
        )
        for r in result
    ]
    items.sort(key=lambda item: (item.priority, item.id))
    return items


async def complete(conn: AsyncConnection, outbox_id: int, worker: str) -> bool:
    """Drop a claimed row (its message needs no sending any more). False if the lease was
    lost meanwhile."""
    result = await conn.execute(delete(o).where(o.c.id == outbox_id, o.c.claimed_by == worker))
    return result.rowcount == 1


async def complete_many(conn: AsyncConnection, outbox_ids: Sequence[int], worker: str) -> None:
    """`complete` for several claimed rows, in one statement."""
    if outbox_ids:
        await conn.execute(delete(o).where(o.c.id.in_(list(outbox_ids)), o.c.claimed_by == worker))


async def hand_over(
    conn: AsyncConnection,
    outbox_ids: Sequence[int],
    worker: str,
    *,
    check_at: datetime,
    gateway: str | None = None,
) -> int:
    """The transport took these SMS: keep their rows, unclaimed, until a send result
    settles each (`settle`); one that has none by `check_at` is claimed and offered again
    (to `gateway`, the one that took it, when given). One statement; returns how many
    rows `worker` still held."""
    if not outbox_ids:
        return 0
    values: dict[str, object] = {"claimed_by": None, "lease_until": None, "available_at": check_at}
    if gateway is not None:
        values["gateway_hint"] = gateway
    result = await conn.execute(
        update(o).where(o.c.id.in_(list(outbox_ids)), o.c.claimed_by == worker).values(**values)
    )
    return int(result.rowcount)


async def route(
    conn: AsyncConnection, outbox_ids: Sequence[int], worker: str, gateway: str
) -> None:
    """Write down the gateway claimed rows go to, before they are sent."""
    await conn.execute(
        update(o)
        .where(o.c.id.in_(list(outbox_ids)), o.c.claimed_by == worker)
        .values(gateway_hint=gateway)
    )


async def settle(conn: AsyncConnection, message_id: str) -> None:
    """The transport answered for the message (sent, failed or delivered): its row goes."""
    await conn.execute(delete(o).where(o.c.message_id == message_id))


async def release(
    conn: AsyncConnection, outbox_id: int, worker: str, *, retry_at: datetime
) -> bool:
    """Give a claimed row back, to be tried again at `retry_at`."""
    result = await conn.execute(
        update(o)
        .where(o.c.id == outbox_id, o.c.claimed_by == worker)
        .values(claimed_by=None, lease_until=None, available_at=retry_at)
    )
    return result.rowcount == 1


async def renew(
    conn: AsyncConnection, outbox_ids: Sequence[int], worker: str, *, until: datetime
) -> int:
    """Extend `worker`'s lease on the rows it is still sending; returns how many it holds."""
    if not outbox_ids:
        return 0
    result = await conn.execute(
        update(o)
        .where(o.c.id.in_(list(outbox_ids)), o.c.claimed_by == worker)
        .values(lease_until=until)
    )
    return int(result.rowcount)


async def release_abandoned(
    conn: AsyncConnection, *, prefix: str, keep: str, also: Sequence[str] = ()
) -> int:
    """Free rows claimed under `prefix` (or exactly as one of `also`) except by `keep`: a
    worker restarting under its name frees what its dead former self held, instead of
    leaving it until the lease runs out. Returns how many rows were freed.

    Rows another worker has locked are passed over (SKIP LOCKED): it is settling or
    claiming them, and waiting for it could deadlock with its transaction, which may wait
    for a row this statement locked (seen in the chaos test: the restarting worker died)."""
    abandoned = (
        select(o.c.id)
        .where(
            or_(o.c.claimed_by.startswith(prefix, autoescape=True), o.c.claimed_by.in_(also)),
            o.c.claimed_by != keep,
        )
        .with_for_update(skip_locked=True)
    )
    result = await conn.execute(
        update(o).where(o.c.id.in_(abandoned)).values(claimed_by=None, lease_until=None)
    )
    return int(result.rowcount)


async def pending_count(conn: AsyncConnection) -> int:
    return int(await conn.scalar(select(func.count()).select_from(o)) or 0)


async def next_due(conn: AsyncConnection) -> datetime | None:
    """When the next row becomes claimable: the earliest `available_at` of unleased rows or
    `lease_until` of leased ones (a read, no lock: the dispatcher sleeps until then instead
    of claiming in a write transaction to find nothing). Both are index searches."""
    free = await conn.scalar(select(func.min(o.c.available_at)).where(o.c.lease_until.is_(None)))
    leased = await conn.scalar(select(func.min(o.c.lease_until)))
    # A leased row is due at max(available_at, lease_until); taking lease_until can only
    # wake the dispatcher early, for one claim that finds nothing.
    times = [t for t in (free, leased) if t is not None]
    return min(times) if times else None
