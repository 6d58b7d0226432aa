"""SQLite implementations of the purchase journal and the report outbox (aiosqlite).

Used by the tests and by a stand-alone adapter; the hub implements the same protocols on
its own database.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import aiosqlite

from p2apst_adapter.client.journal import JournalEntry
from p2apst_adapter.model import PurchaseRequest, PurchaseResult, TokenReport

_SCHEMA = """
CREATE TABLE IF NOT EXISTS p2apst_purchases (
    key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    stan TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    result TEXT,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS p2apst_reports (
    report_id TEXT PRIMARY KEY,
    report TEXT NOT NULL,
    acknowledged INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL
);
"""


class SqliteStore:
    """One SQLite file holding both tables; `journal` and `outbox` share its connection."""

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._db: aiosqlite.Connection | None = None
        self.journal = SqlitePurchaseJournal(self)
        self.outbox = SqliteReportOutbox(self)

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db

    async def open(self) -> None:
        self._db = await aiosqlite.connect(self._path, isolation_level=None)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")
        await self._db.executescript(_SCHEMA)

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _entry(row: aiosqlite.Row | tuple[object, ...]) -> JournalEntry:
    request, stan, sent_at, result = row
    return JournalEntry(
        request=PurchaseRequest.from_json(json.loads(str(request))),
        stan=str(stan),
        sent_at=datetime.fromisoformat(str(sent_at)),
        result=None if result is None else PurchaseResult.from_json(json.loads(str(result))),
    )


class SqlitePurchaseJournal:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def begin(self, entry: JournalEntry) -> JournalEntry:
        db = self._store.db
        await db.execute(
            "INSERT OR IGNORE INTO p2apst_purchases (key, request, stan, sent_at, seq)"
            " VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM p2apst_purchases))",
            (entry.key, json.dumps(entry.request.to_json()), entry.stan, entry.sent_at.isoformat()),
        )
        stored = await self.get(entry.key)
        assert stored is not None
        return stored

    async def complete(self, key: str, result: PurchaseResult) -> None:
        await self._store.db.execute(
            "UPDATE p2apst_purchases SET result = ? WHERE key = ? AND result IS NULL",
            (json.dumps(result.to_json()), key),
        )

    async def advising(self, key: str) -> None:
        return None  # an entry without a result is PENDING, advised on or not

    async def get(self, key: str) -> JournalEntry | None:
        async with self._store.db.execute(
            "SELECT request, stan, sent_at, result FROM p2apst_purchases WHERE key = ?", (key,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _entry(row)

    async def pending(self) -> Sequence[JournalEntry]:
        async with self._store.db.execute(
            "SELECT request, stan, sent_at, result FROM p2apst_purchases"
            " WHERE result IS NULL ORDER BY seq"
        ) as cursor:
            rows = await cursor.fetchall()
        return [_entry(row) for row in rows]


class SqliteReportOutbox:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def add(self, report: TokenReport) -> bool:
        cursor = await self._store.db.execute(
            "INSERT OR IGNORE INTO p2apst_reports (report_id, report, seq)"
            " VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM p2apst_reports))",
            (report.report_id, json.dumps(report.to_json())),
        )
        return cursor.rowcount == 1

    async def unacknowledged(self) -> Sequence[TokenReport]:
        async with self._store.db.execute(
            "SELECT report FROM p2apst_reports WHERE acknowledged = 0 ORDER BY seq"
        ) as cursor:
            rows = await cursor.fetchall()
        return [TokenReport.from_json(json.loads(str(row[0]))) for row in rows]

    async def acknowledge(self, report_id: str) -> None:
        await self._store.db.execute(
            "UPDATE p2apst_reports SET acknowledged = 1 WHERE report_id = ?", (report_id,)
        )

    async def acknowledge_many(self, report_ids: Sequence[str]) -> None:
        await self._store.db.executemany(
            "UPDATE p2apst_reports SET acknowledged = 1 WHERE report_id = ?",
            [(report_id,) for report_id in report_ids],
        )
