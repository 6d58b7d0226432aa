"""The P2APST client's `PurchaseJournal` and `ReportOutbox`, on the hub's own database.

Both hold secrets (a paid result and a report name the token), so those are sealed under
the master key with the row's key as AAD; nothing here ever writes a token in clear.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.crypto.master_key import MasterKey
from operator_data.crypto.sealing import open_sealed, seal
from operator_data.store import Store, utcnow
from operator_data.store.workflow_schema import hub_purchases, hub_reports
from p2apst_adapter.client.journal import JournalEntry
from p2apst_adapter.model import PurchaseRequest, PurchaseResult, TokenReport

Clock = Callable[[], datetime]


def _seal_json(master: MasterKey, data: dict[str, object], aad: str) -> bytes:
    return seal(master, json.dumps(data, sort_keys=True).encode("utf-8"), aad=aad)


def _open_json(master: MasterKey, sealed: bytes, aad: str) -> dict[str, object]:
    loaded = json.loads(open_sealed(master, bytes(sealed), aad=aad).decode("utf-8"))
    assert isinstance(loaded, dict)
    return loaded


class HubPurchaseJournal:
    """`PurchaseJournal` over the `hub_purchases` table."""

    def __init__(self, store: Store, master: MasterKey, *, clock: Clock = utcnow) -> None:
        self._store = store
        self._master = master
        self._clock = clock

    async def begin(self, entry: JournalEntry) -> JournalEntry:
        try:
            async with self._store.begin() as conn:
                await conn.execute(
                    insert(hub_purchases).values(
                        key=entry.key,
                        request=json.dumps(entry.request.to_json(), sort_keys=True),
                        stan=entry.stan,
                        sent_at=entry.sent_at,
                        created_at=self._clock(),
                    )
                )
        except IntegrityError:
            pass  # recorded before (by us after a restart, or by another worker)
        stored = await self.get(entry.key)
        assert stored is not None
        return stored

    async def complete(self, key: str, result: PurchaseResult) -> None:
        async with self._store.begin() as conn:
            await conn.execute(
                update(hub_purchases)
                .where(hub_purchases.c.key == key, hub_purchases.c.result_sealed.is_(None))
                .values(
                    result_sealed=_seal_json(self._master, result.to_json(), key),
                    result_master_id=self._master.key_id,
                    completed_at=self._clock(),
                )
            )

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
                    report_sealed=_seal_json(master, report.to_json(), report.report_id),
                    master_id=master.key_id,
                    acknowledged=False,
                    created_at=at,
                )
            )
    except IntegrityError:
        return False
    return True


class HubReportOutbox:
    """`ReportOutbox` over the `hub_reports` table. `on_acknowledged(transaction_id, at)`
    lets the hub move the transaction to REPORTED once P2APST has confirmed."""

    def __init__(
        self,
        store: Store,
        master: MasterKey,
        *,
        clock: Clock = utcnow,
        on_acknowledged: Callable[[AsyncConnection, str, datetime], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._master = master
        self._clock = clock
        self.on_acknowledged = on_acknowledged

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
        now = self._clock()
        async with self._store.begin() as conn:
            result = await conn.execute(
                update(hub_reports)
                .where(hub_reports.c.report_id == report_id, hub_reports.c.acknowledged.is_(False))
                .values(acknowledged=True, acknowledged_at=now)
                .returning(hub_reports.c.transaction_id)
            )
            transaction_id = result.scalar()
            if transaction_id is not None and self.on_acknowledged is not None:
                await self.on_acknowledged(conn, str(transaction_id), now)
