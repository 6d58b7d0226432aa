"""The gateway's durable spool (SQLite): nothing the gateway has taken on is ever lost.

- An inbound event (an SMS read from a SIM, a status report, a send result) is written here
  before the SIM slot is freed, and stays until the consumer acknowledges it; after a
  restart every unacknowledged event is delivered again.
- An outbound SMS is written here when the gateway accepts it and stays until it reaches a
  final state; one `message_id` is accepted once.
- Each part a modem stores before sending it (store-then-send, gateway/pool/journal.py) is
  written here with its storage slot, then marked sent; these rows go when the message's
  outcome is recorded, in the same transaction, so a part sent is never sent again.
- The message references a modem got for each sent part are kept, so that a status report
  (which carries only the reference, 0–255, wrapping) can be matched to its message by
  (modem, reference, recipient) within a time window.

Like every durable gateway file (gateway/durable_file.py) it runs with synchronous=FULL.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from gateway import payload
from gateway.durable_file import DurableSqlite
from gateway.pool.journal import JournalledPart
from gateway.transport import OutboundSms, TransportEvent

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    stored_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbound (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbound_state ON outbound (state, seq);
CREATE TABLE IF NOT EXISTS sent_parts (
    message_id TEXT NOT NULL,
    modem TEXT NOT NULL,
    reference INTEGER NOT NULL,
    recipient TEXT NOT NULL,
    sent_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sent_parts_ref ON sent_parts (modem, reference, recipient, sent_at);
CREATE TABLE IF NOT EXISTS stored_parts (
    message_id TEXT NOT NULL,
    part INTEGER NOT NULL,
    modem TEXT NOT NULL,
    slot INTEGER NOT NULL,
    pdu TEXT NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    reference INTEGER,
    PRIMARY KEY (message_id, part)
);
CREATE INDEX IF NOT EXISTS stored_parts_modem ON stored_parts (modem, sent);
"""


class OutboundState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


_FINAL = (OutboundState.SENT, OutboundState.FAILED)


@dataclass(frozen=True, slots=True)
class SpooledOutbound:
    sms: OutboundSms
    state: OutboundState
    attempts: int


class Spool(DurableSqlite):
    """Use as `async with Spool(path) as spool:`."""

    SCHEMA = _SCHEMA
    NAME = "spool"

    def __init__(self, path: Path | str) -> None:
        super().__init__(path)
        # One connection serves every task: writes take turns so that a multi-statement
        # transaction never takes in another task's statement.
        self._write = asyncio.Lock()

    async def _opened(self) -> None:
        # A crash while sending leaves SMS in SENDING: offer them to a modem again.
        await self.db.execute(
            "UPDATE outbound SET state = ? WHERE state = ?",
            (OutboundState.QUEUED, OutboundState.SENDING),
        )

    # -- events ---------------------------------------------------------------------------

    async def record_event(self, event: TransportEvent, now: datetime) -> int | None:
        """Stores an event durably; its sequence number, or None if it was already there."""
        async with self._write:
            return await self._insert_event(event, now)

    async def _insert_event(self, event: TransportEvent, now: datetime) -> int | None:
        cursor = await self.db.execute(
            "INSERT OR IGNORE INTO events (event_id, body, stored_at) VALUES (?, ?, ?)",
            (event.event_id, payload.dumps(event).decode(), now.isoformat()),
        )
        return cursor.lastrowid if cursor.rowcount == 1 else None

    async def record_outcome(
        self,
        event: TransportEvent,
        message_id: str,
        state: OutboundState,
        now: datetime,
        *,
        error: str | None = None,
        modem: str = "",
        references: Sequence[int] = (),
        recipient: str = "",
    ) -> int | None:
        """A send's outcome in one transaction: the event for the hub, the message's final
        state and its parts' references. Apart, a crash between them could leave a message
        final whose result the hub never hears of."""
        async with self._write:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                seq = await self._insert_event(event, now)
                await self._mark(message_id, state, now, error=error, count_attempt=False)
                await self.db.execute(
                    "DELETE FROM stored_parts WHERE message_id = ?", (message_id,)
                )
                if references:
                    await self._sent_parts(message_id, modem, references, recipient, now)
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            await self.db.execute("COMMIT")
            return seq

    async def unacknowledged(self, after_seq: int = 0) -> list[tuple[int, TransportEvent]]:
        rows = await self.db.execute_fetchall(
            "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq", (after_seq,)
        )
        events: list[tuple[int, TransportEvent]] = []
        for seq, body in rows:
            item = payload.loads(body)
            if isinstance(item, OutboundSms):  # never written as an event; a corrupt row
                continue
            events.append((seq, item))
        return events

    async def ack(self, event_id: str) -> None:
        await self.ack_many([event_id])

    async def ack_many(self, event_ids: Sequence[str]) -> None:
        """Forget acknowledged events, in one transaction (one fsync for a hub's batch)."""
        if not event_ids:
            return
        async with self._write:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                await self.db.executemany(
                    "DELETE FROM events WHERE event_id = ?", [(i,) for i in event_ids]
                )
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            await self.db.execute("COMMIT")

    # -- outbound -------------------------------------------------------------------------

    async def accept(self, sms: OutboundSms, now: datetime) -> bool:
        """Takes an SMS on; False if this message_id was accepted before (it is not re-sent)."""
        try:
            await self.db.execute(
                "INSERT INTO outbound (message_id, body, state, updated_at) VALUES (?, ?, ?, ?)",
                (
                    sms.message_id,
                    payload.dumps(sms).decode(),
                    OutboundState.QUEUED,
                    now.isoformat(),
                ),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    async def pending(self, limit: int | None = None) -> list[SpooledOutbound]:
        """Outbound SMS not yet handed to a carrier, oldest first (all of them by default)."""
        rows = await self.db.execute_fetchall(
            "SELECT body, state, attempts FROM outbound WHERE state = ? ORDER BY seq LIMIT ?",
            (OutboundState.QUEUED, -1 if limit is None else limit),
        )
        result = []
        for body, state, attempts in rows:
            sms = payload.loads(body)
            assert isinstance(sms, OutboundSms)
            result.append(SpooledOutbound(sms, OutboundState(state), attempts))
        return result

    async def mark(
        self,
        message_id: str,
        state: OutboundState,
        now: datetime,
        *,
        error: str | None = None,
        count_attempt: bool = False,
    ) -> None:
        async with self._write:
            await self._mark(message_id, state, now, error=error, count_attempt=count_attempt)

    async def _mark(
        self,
        message_id: str,
        state: OutboundState,
        now: datetime,
        *,
        error: str | None,
        count_attempt: bool,
    ) -> None:
        await self.db.execute(
            "UPDATE outbound SET state = ?, error = ?, updated_at = ?, attempts = attempts + ? "
            "WHERE message_id = ?",
            (state, error, now.isoformat(), int(count_attempt), message_id),
        )

    async def outbound_state(self, message_id: str) -> SpooledOutbound | None:
        rows = list(
            await self.db.execute_fetchall(
                "SELECT body, state, attempts FROM outbound WHERE message_id = ?", (message_id,)
            )
        )
        if not rows:
            return None
        body, state, attempts = rows[0]
        sms = payload.loads(body)
        assert isinstance(sms, OutboundSms)
        return SpooledOutbound(sms, OutboundState(state), attempts)

    # -- store-then-send journal (gateway.pool.journal.SendJournal) -------------------------

    async def part_stored(
        self, message_id: str, part: int, modem: str, slot: int, pdu: str
    ) -> None:
        async with self._write:
            await self.db.execute(
                "INSERT OR REPLACE INTO stored_parts (message_id, part, modem, slot, pdu) "
                "VALUES (?, ?, ?, ?, ?)",
                (message_id, part, modem, slot, pdu),
            )

    async def part_sent(
        self, message_id: str, part: int, reference: int | None, *, modem: str, slot: int
    ) -> None:
        async with self._write:
            await self.db.execute(
                "UPDATE stored_parts SET sent = 1, reference = ? "
                "WHERE message_id = ? AND part = ? AND modem = ? AND slot = ?",
                (reference, message_id, part, modem, slot),
            )

    async def part_dropped(self, message_id: str, part: int, *, modem: str, slot: int) -> None:
        async with self._write:
            await self.db.execute(
                "DELETE FROM stored_parts "
                "WHERE message_id = ? AND part = ? AND modem = ? AND slot = ?",
                (message_id, part, modem, slot),
            )

    async def parts_of(self, message_id: str) -> dict[int, JournalledPart]:
        rows = await self.db.execute_fetchall(
            f"SELECT {_PART_COLUMNS} FROM stored_parts WHERE message_id = ?", (message_id,)
        )
        return {int(row[1]): _journalled(row) for row in rows}

    async def stored_on(self, modem: str) -> list[JournalledPart]:
        rows = await self.db.execute_fetchall(
            f"SELECT {_PART_COLUMNS} FROM stored_parts WHERE modem = ? AND sent = 0 "
            "ORDER BY message_id, part",
            (modem,),
        )
        return [_journalled(row) for row in rows]

    async def record_sent_parts(
        self, message_id: str, modem: str, references: Sequence[int], recipient: str, now: datetime
    ) -> None:
        async with self._write:
            await self._sent_parts(message_id, modem, references, recipient, now)

    async def _sent_parts(
        self, message_id: str, modem: str, references: Sequence[int], recipient: str, now: datetime
    ) -> None:
        await self.db.executemany(
            "INSERT INTO sent_parts (message_id, modem, reference, recipient, sent_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(message_id, modem, ref, recipient, now.isoformat()) for ref in references],
        )

    async def next_reference(self, modem: str) -> int | None:
        """The reference after the last one `modem` used (wrapping at 256), for a carrier
        that numbers its own parts and must not start over after a restart; None if the
        modem has sent nothing (that the spool still remembers)."""
        rows = list(
            await self.db.execute_fetchall(
                # rowid order is insertion order: the newest row always has the largest.
                "SELECT reference FROM sent_parts WHERE modem = ? ORDER BY rowid DESC LIMIT 1",
                (modem,),
            )
        )
        return (int(rows[0][0]) + 1) % 256 if rows else None

    async def match_report(
        self, modem: str, reference: int, recipient: str, now: datetime, window: timedelta
    ) -> str | None:
        """The message a status report belongs to: the newest part with this reference sent
        by this modem to this recipient within the window (references wrap at 256)."""
        rows = list(
            await self.db.execute_fetchall(
                "SELECT message_id FROM sent_parts WHERE modem = ? AND reference = ? "
                "AND recipient = ? AND sent_at >= ? ORDER BY sent_at DESC LIMIT 1",
                (modem, reference, recipient, (now - window).isoformat()),
            )
        )
        return str(rows[0][0]) if rows else None

    async def purge(self, older_than: datetime) -> None:
        """Forgets final outbound SMS and sent parts older than `older_than`."""
        cutoff = older_than.isoformat()
        async with self._write:
            await self.db.execute(
                "DELETE FROM outbound WHERE state IN (?, ?) AND updated_at < ?", (*_FINAL, cutoff)
            )
            await self.db.execute("DELETE FROM sent_parts WHERE sent_at < ?", (cutoff,))


_PART_COLUMNS = "message_id, part, modem, slot, pdu, sent, reference"


def _journalled(row: sqlite3.Row | tuple[object, ...]) -> JournalledPart:
    message_id, part, modem, slot, pdu, sent, reference = tuple(row)
    return JournalledPart(
        str(message_id),
        int(str(part)),
        str(modem),
        int(str(slot)),
        str(pdu),
        bool(sent),
        None if reference is None else int(str(reference)),
    )
