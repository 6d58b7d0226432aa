"""Mobile-originated messages that arrive as several deliver_sm (concatenation UDH).

Each part is written to disk (SQLite, next to the SMSC id book) before its deliver_sm is
answered, so the SMSC may forget it; when the last part arrives the whole message becomes
one InboundSms, and the parts are deleted only after the spool holds it. A message whose
parts stop coming is given out incomplete after `timeout`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.durable_file import DurableSqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mo_parts (
    sender TEXT NOT NULL,
    reference INTEGER NOT NULL,
    total INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT,
    data BLOB,
    received_at TEXT NOT NULL,
    PRIMARY KEY (sender, reference, total, seq)
);
"""

GroupKey = tuple[str, int, int]  # sender, reference, total


@dataclass(frozen=True, slots=True)
class Assembled:
    key: GroupKey
    event_id_suffix: str  # stable for the same parts, whenever assembled
    text: str | None
    data: bytes | None
    received_at: datetime
    complete: bool


class PartStore(DurableSqlite):
    """`async with PartStore(path) as parts:`."""

    SCHEMA = _SCHEMA
    NAME = "part store"

    async def add(
        self,
        key: GroupKey,
        seq: int,
        text: str | None,
        data: bytes | None,
        now: datetime,
    ) -> Assembled | None:
        """Stores one part; the whole message once every part is here, else None."""
        sender, reference, total = key
        await self.db.execute(
            "INSERT OR IGNORE INTO mo_parts VALUES (?, ?, ?, ?, ?, ?, ?)",
            (sender, reference, total, seq, text, data, now.isoformat()),
        )
        return await self._assemble(key, require_complete=True)

    async def expired(self, now: datetime, max_age: timedelta) -> list[Assembled]:
        """Groups whose first part is older than `max_age`, assembled as they are."""
        rows = await self.db.execute_fetchall(
            "SELECT sender, reference, total FROM mo_parts GROUP BY sender, reference, total "
            "HAVING min(received_at) < ?",
            ((now - max_age).isoformat(),),
        )
        found = []
        for sender, reference, total in rows:
            message = await self._assemble((str(sender), int(reference), int(total)), False)
            if message is not None:
                found.append(message)
        return found

    async def forget(self, key: GroupKey) -> None:
        await self.db.execute(
            "DELETE FROM mo_parts WHERE sender = ? AND reference = ? AND total = ?", key
        )

    async def _assemble(self, key: GroupKey, require_complete: bool) -> Assembled | None:
        rows = list(
            await self.db.execute_fetchall(
                "SELECT seq, text, data, received_at FROM mo_parts "
                "WHERE sender = ? AND reference = ? AND total = ? ORDER BY seq",
                key,
            )
        )
        complete = len(rows) == key[2]
        if not rows or (require_complete and not complete):
            return None
        texts = [text for _, text, _, _ in rows]
        if all(text is not None for text in texts):
            text, data = "".join(str(t) for t in texts), None
        else:
            text = None
            data = b"".join(bytes(d) if d is not None else str(t).encode() for _, t, d, _ in rows)
        fingerprint = hashlib.sha256(
            repr((key, [(seq, received) for seq, _, _, received in rows])).encode()
        ).hexdigest()
        return Assembled(
            key,
            fingerprint,
            text,
            data,
            max(datetime.fromisoformat(str(r[3])) for r in rows),
            complete,
        )
