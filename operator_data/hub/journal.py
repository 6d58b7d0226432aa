"""The P2APST client's `PurchaseJournal` and `ReportOutbox`, on the hub's own database,
and `PurchaseClaims`: which worker drives (or resumes) which purchase.

Both hold secrets (a paid result and a report name the token), so those are sealed under
the master key with the row's key as AAD; nothing here ever writes a token in clear.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.crypto.master_key import MasterKey
from operator_data.crypto.sealing import open_sealed, seal
from operator_data.hub.coalesce import Coalescer
from operator_data.hub.delivery import reports_acknowledged
from operator_data.hub.lifecycle import PurchaseEvent, step
from operator_data.hub.sla import SlaMonitor
from operator_data.store import Store, schema, utcnow
from operator_data.store.bulk import insert_returning
from operator_data.store.locks import lock_key
from operator_data.store.transitions import TRANSACTIONS, transition_many
from operator_data.store.workflow_schema import hub_purchases, hub_reports
from p2apst_adapter.client.journal import JournalEntry
from p2apst_adapter.model import PurchaseRequest, PurchaseResult, TokenReport

Clock = Callable[[], datetime]
log = logging.getLogger("operator_data.hub.journal")
_JOURNALLED = step(PurchaseEvent.JOURNALLED)
_UNANSWERED = step(PurchaseEvent.UNANSWERED)


class PurchaseClaims:
    """Cluster-wide "this worker drives that purchase": several workers share the journal,
    and without a claim a restarted worker would resume (advise on) purchases another is
    still driving, and two workers could both settle one purchase.

    On PostgreSQL each claim is a session-level advisory lock, all held on one dedicated
    connection per worker: they go when the claim is released, or when the worker dies and
    its connection with it, with nothing to expire or clean up. SQLite is a single-process
    deployment: every claim is granted. Claims are counted per key within the process, so
    the purchase driver and the client's resumption may both hold one.

        async with PurchaseClaims(store) as claims:
            if await claims.claim(key):
                try: ... finally: await claims.release(key)
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._conn: AsyncConnection | None = None
        self._held: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        async with self._lock:
            self._closed = True
            await self._drop()

    @property
    def held(self) -> frozenset[str]:
        return frozenset(self._held)

    async def claim(self, key: str) -> bool:
        """True if this worker now holds `key` (again); False if another worker does."""
        async with self._lock:
            if self._closed:
                return False  # stopping: start nothing new
            if self._store.dialect != "postgresql":
                return True
            if key in self._held:
                self._held[key] += 1
                return True
            try:
                conn = await self._connection()
                got = bool(
                    await conn.scalar(
                        text("SELECT pg_try_advisory_lock(:key)"), {"key": _purchase_lock(key)}
                    )
                )
            except Exception:
                # The claims' connection broke: every claim it held is gone with it. Say no
                # now; the sweep asks again.
                log.exception("purchase claims: connection lost; claims dropped")
                await self._drop()
                return False
            if got:
                self._held[key] = 1
            return got

    async def release(self, key: str) -> None:
        async with self._lock:
            count = self._held.get(key, 0)
            if count > 1:
                self._held[key] = count - 1
                return
            if count == 0:
                return
            del self._held[key]
            if self._conn is None:
                return
            try:
                await self._conn.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": _purchase_lock(key)}
                )
            except Exception:
                log.exception("purchase claims: connection lost; claims dropped")
                await self._drop()

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self._store.engine.connect()
            # AUTOCOMMIT: the locks belong to the session, not to a transaction.
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._held.clear()
        if conn is not None:
            try:
                # Invalidate, not just close: a pooled connection would keep its session,
                # and with it every advisory lock, for whoever checks it out next.
                await conn.invalidate()
                await conn.close()
            except Exception:
                # Closing a broken connection may fail too; the server frees its locks.
                log.debug("purchase claims: closing a broken connection failed")


def _purchase_lock(key: str) -> int:
    return lock_key(f"hub-purchase:{key}")


def _seal_json(master: MasterKey, data: dict[str, object], aad: str) -> bytes:
    return seal(master, json.dumps(data, sort_keys=True).encode("utf-8"), aad=aad)


def seal_report(master: MasterKey, report: TokenReport) -> bytes:
    """A token report as `hub_reports` keeps it: sealed, its id as AAD."""
    return _seal_json(master, report.to_json(), report.report_id)


def _open_json(master: MasterKey, sealed: bytes, aad: str) -> dict[str, object]:
    loaded = json.loads(open_sealed(master, bytes(sealed), aad=aad).decode("utf-8"))
    assert isinstance(loaded, dict)
    return loaded


class HubPurchaseJournal:
    """`PurchaseJournal` over the `hub_purchases` table: the P2APST side of a purchase (the
    request as sent, its STAN, P2APST's answer). Where the purchase stands is
    `transactions.state` alone, moved here in the same units of work (SUBMITTED as the
    request is journalled, ADVISING when its outcome is asked for with advices). The hub
    runs its client with `resume_pending` off: the purchase driver's sweep is the one
    resumer, and claims each purchase it drives (`PurchaseDriver`)."""

    def __init__(
        self,
        store: Store,
        master: MasterKey,
        *,
        clock: Clock = utcnow,
        batch_limit: int = 256,
    ) -> None:
        self._store = store
        self._master = master
        self._clock = clock
        self._begins = Coalescer(self._begin_many, limit=batch_limit, name="journal-begin")
        self._completes = Coalescer(self._complete_many, limit=batch_limit, name="journal-complete")

    async def begin(self, entry: JournalEntry) -> JournalEntry:
        """Record the purchase before its 2200 goes out; the hub's transaction of that
        purchase (the key is its id) moves to SUBMITTED in the same unit of work. A key
        recorded before (by us after a restart, or by another worker) is returned as
        recorded, and nothing is written. Purchases begun meanwhile are recorded together
        (one multi-row statement per table)."""
        return await self._begins.submit(entry)

    async def complete(self, key: str, result: PurchaseResult) -> None:
        """Record P2APST's final answer (with the others answered meanwhile, in one
        statement); an entry completed before keeps its first answer."""
        await self._completes.submit((key, result))

    async def advising(self, key: str) -> None:
        """The 2200 went unanswered: the purchase is ADVISING while its outcome is asked
        for (from SUBMITTED only; a purchase advised on before stays as it is)."""
        async with self._store.begin() as conn:
            await transition_many(
                conn,
                TRANSACTIONS,
                [key],
                _UNANSWERED.target,
                at=self._clock(),
                only_from=sorted(_UNANSWERED.sources),
                detail="2200 unanswered: asking with advices",
            )

    async def _begin_many(self, entries: Sequence[JournalEntry]) -> list[JournalEntry]:
        now = self._clock()
        first: dict[str, JournalEntry] = {}
        for entry in entries:
            first.setdefault(entry.key, entry)
        async with self._store.begin() as conn:
            written = await insert_returning(
                conn,
                hub_purchases,
                [
                    {
                        "key": entry.key,
                        "request": json.dumps(entry.request.to_json(), sort_keys=True),
                        "stan": entry.stan,
                        "sent_at": entry.sent_at,
                        "created_at": now,
                    }
                    for entry in first.values()
                ],
                returning=[hub_purchases.c.key],
                skip_conflicts_on=[hub_purchases.c.key],
            )
            fresh = {str(key) for (key,) in written}
            await transition_many(
                conn,
                TRANSACTIONS,
                sorted(fresh),
                _JOURNALLED.target,
                at=now,
                only_from=sorted(_JOURNALLED.sources),
                extra_values={"switcher_ref": schema.transactions.c.id},
            )
        # Whoever lost a race for its key (or repeats one) gets the entry as stored.
        stored = await self._get_many(
            [e.key for e in entries if e.key not in fresh or first[e.key] is not e]
        )
        return [
            entry if entry.key in fresh and first[entry.key] is entry else stored[entry.key]
            for entry in entries
        ]

    async def _complete_many(self, answers: Sequence[tuple[str, PurchaseResult]]) -> list[None]:
        now = self._clock()
        async with self._store.begin() as conn:
            await conn.execute(
                update(hub_purchases)
                .where(
                    hub_purchases.c.key == bindparam("b_key"),
                    hub_purchases.c.result_sealed.is_(None),
                )
                .values(
                    result_sealed=bindparam("b_sealed"),
                    result_master_id=bindparam("b_master"),
                    completed_at=now,
                ),
                [
                    {
                        "b_key": key,
                        "b_sealed": _seal_json(self._master, result.to_json(), key),
                        "b_master": self._master.key_id,
                    }
                    for key, result in answers
                ],
            )
        return [None] * len(answers)

    async def _get_many(self, keys: Sequence[str]) -> dict[str, JournalEntry]:
        if not keys:
            return {}
        async with self._store.read() as conn:
            rows = await conn.execute(
                select(hub_purchases).where(hub_purchases.c.key.in_(sorted(set(keys))))
            )
            found = {str(row.key): self._entry(row._mapping) for row in rows}
        missing = set(keys) - set(found)
        if missing:  # a journal row is never deleted while its purchase is open
            raise RuntimeError(f"journal entries vanished: {sorted(missing)}")
        return found

    async def get(self, key: str) -> JournalEntry | None:
        async with self._store.read() as conn:
            row = (
                await conn.execute(select(hub_purchases).where(hub_purchases.c.key == key))
            ).first()
        return None if row is None else self._entry(row._mapping)

    async def pending(self) -> Sequence[JournalEntry]:
        async with self._store.read() as conn:
            rows = await conn.execute(
                select(hub_purchases)
                .where(hub_purchases.c.result_sealed.is_(None))
                .order_by(hub_purchases.c.created_at, hub_purchases.c.key)
            )
            return [self._entry(row._mapping) for row in rows]

    def _entry(self, m: RowMapping) -> JournalEntry:
        sealed = m["result_sealed"]
        key = str(m["key"])
        result = (
            None
            if sealed is None
            else PurchaseResult.from_json(_open_json(self._master, sealed, key))
        )
        return JournalEntry(
            request=PurchaseRequest.from_json(json.loads(m["request"])),
            stan=str(m["stan"]),
            sent_at=m["sent_at"],
            result=result,
        )


async def add_report(
    conn: AsyncConnection,
    report: TokenReport,
    master: MasterKey,
    *,
    transaction_id: str | None,
    at: datetime,
) -> bool:
    """Record a token report in the caller's transaction (so it commits with the meter's
    answer that caused it); False if that report id exists."""
    exists = await conn.scalar(
        select(hub_reports.c.report_id).where(hub_reports.c.report_id == report.report_id)
    )
    if exists is not None:
        return False
    try:
        async with conn.begin_nested():
            await conn.execute(
                insert(hub_reports).values(
                    report_id=report.report_id,
                    transaction_id=transaction_id,
                    report_sealed=seal_report(master, report),
                    master_id=master.key_id,
                    acknowledged=False,
                    created_at=at,
                )
            )
    except IntegrityError:
        return False
    return True


class HubReportOutbox:
    """`ReportOutbox` over the `hub_reports` table. An acknowledgement moves the report's
    transaction to REPORTED in the same transaction (its SLA stage checked against `sla`,
    the hub's monitor, so breaches reach the hub's listeners)."""

    def __init__(
        self, store: Store, master: MasterKey, *, sla: SlaMonitor, clock: Clock = utcnow
    ) -> None:
        self._store = store
        self._master = master
        self._clock = clock
        self._sla = sla

    async def add(self, report: TokenReport) -> bool:
        async with self._store.begin() as conn:
            return await add_report(
                conn, report, self._master, transaction_id=None, at=self._clock()
            )

    async def unacknowledged(self) -> Sequence[TokenReport]:
        async with self._store.read() as conn:
            rows = await conn.execute(
                select(hub_reports.c.report_id, hub_reports.c.report_sealed)
                .where(hub_reports.c.acknowledged.is_(False))
                .order_by(hub_reports.c.created_at, hub_reports.c.report_id)
            )
            return [
                TokenReport.from_json(_open_json(self._master, r.report_sealed, r.report_id))
                for r in rows
            ]

    async def acknowledge(self, report_id: str) -> None:
        await self.acknowledge_many([report_id])

    async def acknowledge_many(self, report_ids: Sequence[str]) -> None:
        """Mark the reports acknowledged and move their purchases to REPORTED, in one unit
        of work with one statement per table; breaches are published once committed."""
        if not report_ids:
            return
        now = self._clock()
        async with self._store.begin() as conn:
            result = await conn.execute(
                update(hub_reports)
                .where(
                    hub_reports.c.report_id.in_(sorted(set(report_ids))),
                    hub_reports.c.acknowledged.is_(False),
                )
                .values(acknowledged=True, acknowledged_at=now)
                .returning(hub_reports.c.transaction_id)
            )
            moved = [str(t) for t in result.scalars() if t is not None]
            breaches = await reports_acknowledged(conn, self._sla, moved, now)
        for breach in breaches:
            self._sla.publish(breach)
