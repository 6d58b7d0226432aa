"""Which hub message an SMSC message id belongs to, kept on disk.

A delivery receipt can arrive days after submit_sm_resp and after any number of restarts, so
the SMSC's ids are written down (SQLite, next to the spool) before the SendResult is given
out. Receipts name only the SMSC's id; this book turns it back into the hub's message_id.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.durable_file import DurableSqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS smsc_ids (
    smsc_id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    part INTEGER NOT NULL,
    submitted_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS smsc_ids_age ON smsc_ids (submitted_at);
"""


class ReceiptBook(DurableSqlite):
    """Use as `async with ReceiptBook(path) as book:`; `path` may be ":memory:"."""

    SCHEMA = _SCHEMA
    NAME = "receipt book"

    async def record(
        self, smsc_id: str, message_id: str, recipient: str, part: int, now: datetime
    ) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO smsc_ids VALUES (?, ?, ?, ?, ?)",
            (smsc_id, message_id, recipient, part, now.isoformat()),
        )

    async def lookup(self, smsc_id: str) -> tuple[str, str, int] | None:
        """(message_id, recipient, part) of an SMSC id, or None."""
        rows = list(
            await self.db.execute_fetchall(
                "SELECT message_id, recipient, part FROM smsc_ids WHERE smsc_id = ?", (smsc_id,)
            )
        )
        if not rows:
            return None
        message_id, recipient, part = rows[0]
        return str(message_id), str(recipient), int(part)

    async def forget_before(self, cutoff: datetime) -> None:
        await self.db.execute("DELETE FROM smsc_ids WHERE submitted_at < ?", (cutoff.isoformat(),))

    async def prune(self, now: datetime, keep: timedelta) -> None:
        await self.forget_before(now - keep)
