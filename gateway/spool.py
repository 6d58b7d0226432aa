"""The gateway's durable spool (SQLite): nothing the gateway has taken on is ever lost.

- An inbound event (an SMS read from a SIM, a status report, a send result) is written here
  before the SIM slot is freed, and stays until the consumer acknowledges it; after a
  restart every unacknowledged event is delivered again. An ack deletes it (its text,
  PIN and raw PDUs with it: freed pages are zeroed, and `purge` empties the WAL).
- An outbound SMS is written here when the gateway accepts it and stays until it reaches a
  final state; one `message_id` is accepted once. The statement that makes it final blanks
  its text (a receipt's token); the row itself goes at `purge`.
- Each part a modem stores before sending it (store-then-send, gateway/pool/journal.py) is
  written here with its storage slot, then marked sent; these rows go when the message's
  outcome is recorded, in the same transaction, so a part sent is never sent again.
- The message references a modem got for each sent part are kept, so that a status report
  (which carries only the reference, 0–255, wrapping) can be matched to its message by
  (modem, reference, recipient) within a time window.

Like every durable gateway file (gateway/durable_file.py) it runs with synchronous=FULL.
Writes are group-committed (gateway/group_commit.py): whatever concurrent callers write
while a commit is under way goes in the next transaction together, one fsync for all, and
each call returns only once its own transaction has committed. A write that fails (a
trigger refusing a row...) fails alone; a transaction that fails fails only its writes.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import TracebackType

from gateway import payload
from gateway.durable_file import DurableSqlite
from gateway.group_commit import MAX_BATCH, GroupCommit
from gateway.pool.journal import JournalledPart
from gateway.transport import OutboundSms, TransportEvent

log = logging.getLogger(__name__)

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

    def __init__(self, path: Path | str, *, max_batch: int = MAX_BATCH) -> None:
        super().__init__(path)
        # Every write goes through this one writer, in its transactions: reads run between
        # them on the same connection, and never see half of one.
        self.writer = GroupCommit(self, max_batch=max_batch)

    @property
    def commits(self) -> int:
        """Write transactions committed since the spool was opened."""
        return self.writer.commits

    async def _opened(self) -> None:
        # A crash while sending leaves SMS in SENDING: offer them to a modem again.
        await self.db.execute(
            "UPDATE outbound SET state = ? WHERE state = ?",
            (OutboundState.QUEUED, OutboundState.SENDING),
        )
        self.writer.start()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.writer.close()  # commits what callers are still waiting for
        finally:
            await super().__aexit__(kind, error, tb)

    # -- events ---------------------------------------------------------------------------

    async def record_event(self, event: TransportEvent, now: datetime) -> int | None:
        """Stores an event durably; its sequence number, or None if it was already there."""
        row = _event_row(event, now)
        return await self.writer.write(lambda db: _insert_event(db, row))

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
        row = _event_row(event, now)
        mark = _mark_row(message_id, state, now, error=error, count_attempt=False)
        parts = _sent_part_rows(message_id, modem, references, recipient, now)

        def outcome(db: sqlite3.Connection) -> int | None:
            # One write, so one savepoint: all of it or none of it.
            seq = _insert_event(db, row)
            db.execute(_MARK, mark)
            db.execute("DELETE FROM stored_parts WHERE message_id = ?", (message_id,))
            db.executemany(_SENT_PART, parts)
            return seq

        return await self.writer.write(outcome)

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
        """Forget acknowledged events, all in one transaction (with other writers')."""
        if not event_ids:
            return
        rows = [(i,) for i in event_ids]

        def forget(db: sqlite3.Connection) -> None:
            db.executemany("DELETE FROM events WHERE event_id = ?", rows)

        await self.writer.write(forget)

    # -- outbound -------------------------------------------------------------------------

    async def accept(self, sms: OutboundSms, now: datetime, *, sending: bool = False) -> bool:
        """Takes an SMS on; False if this message_id was accepted before (it is not re-sent).
        `sending`: it goes to a carrier at once, so it is written as SENDING (one write
        instead of accept + mark; after a crash it is QUEUED again like any other)."""
        row = (
            sms.message_id,
            payload.dumps(sms).decode(),
            OutboundState.SENDING if sending else OutboundState.QUEUED,
            now.isoformat(),
        )

        def insert(db: sqlite3.Connection) -> bool:
            # OR IGNORE: a message_id seen before (committed, or earlier in this very
            # transaction) is refused without an error that would cost a savepoint.
            cursor = db.execute(
                "INSERT OR IGNORE INTO outbound (message_id, body, state, updated_at) "
                "VALUES (?, ?, ?, ?)",
                row,
            )
            return cursor.rowcount == 1

        return await self.writer.write(insert)

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

    async def backlog(self) -> dict[str, int]:
        """What waits here: outbound SMS not yet final, by state, and events the hub has
        not acknowledged (an ack deletes one). Final rows, kept until `purge`, are not
        counted: a range of the (state, seq) index and the events table, so the cost
        follows the backlog, not the history (the bridge reports it: gateway/mqtt/bridge.py)."""
        counts = {f"outbound_{OutboundState.QUEUED}": 0, f"outbound_{OutboundState.SENDING}": 0}
        for state, rows in await self.db.execute_fetchall(
            "SELECT state, count(*) FROM outbound WHERE state IN (?, ?) GROUP BY state",
            (OutboundState.QUEUED, OutboundState.SENDING),
        ):
            counts[f"outbound_{state}"] = int(rows)
        events = await self.db.execute_fetchall("SELECT count(*) FROM events")
        counts["events_unacked"] = int(next(iter(events))[0])
        return counts

    async def mark(
        self,
        message_id: str,
        state: OutboundState,
        now: datetime,
        *,
        error: str | None = None,
        count_attempt: bool = False,
    ) -> None:
        row = _mark_row(message_id, state, now, error=error, count_attempt=count_attempt)

        def update(db: sqlite3.Connection) -> None:
            db.execute(_MARK, row)

        await self.writer.write(update)

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
        def insert(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO stored_parts (message_id, part, modem, slot, pdu) "
                "VALUES (?, ?, ?, ?, ?)",
                (message_id, part, modem, slot, pdu),
            )

        await self.writer.write(insert)

    async def part_sent(
        self, message_id: str, part: int, reference: int | None, *, modem: str, slot: int
    ) -> None:
        def update(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE stored_parts SET sent = 1, reference = ? "
                "WHERE message_id = ? AND part = ? AND modem = ? AND slot = ?",
                (reference, message_id, part, modem, slot),
            )

        await self.writer.write(update)

    async def part_dropped(self, message_id: str, part: int, *, modem: str, slot: int) -> None:
        def delete(db: sqlite3.Connection) -> None:
            db.execute(
                "DELETE FROM stored_parts "
                "WHERE message_id = ? AND part = ? AND modem = ? AND slot = ?",
                (message_id, part, modem, slot),
            )

        await self.writer.write(delete)

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
        rows = _sent_part_rows(message_id, modem, references, recipient, now)

        def insert(db: sqlite3.Connection) -> None:
            db.executemany(_SENT_PART, rows)

        await self.writer.write(insert)

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
        """Forgets final outbound SMS and sent parts older than `older_than`, then empties
        the WAL, which still holds the text of rows blanked or deleted since the last time
        (the gateway service runs this on a schedule: gateway/housekeeping.py)."""
        cutoff = older_than.isoformat()

        def delete(db: sqlite3.Connection) -> None:
            db.execute(
                "DELETE FROM outbound WHERE state IN (?, ?) AND updated_at < ?", (*_FINAL, cutoff)
            )
            db.execute("DELETE FROM sent_parts WHERE sent_at < ?", (cutoff,))

        await self.writer.write(delete)
        if not await self.checkpoint():
            log.info("spool: WAL busy, emptied at the next purge")


_PART_COLUMNS = "message_id, part, modem, slot, pdu, sent, reference"

# The writes' statements run on the connection's thread (gateway/group_commit.py); their
# parameters (JSON bodies included) are made beforehand, on the event loop, as before.
# A final SMS keeps its recipient and id (report matching, accept-once) but not its text
# or data (a receipt's token): blanked in the very statement that makes it final.
# (A body that is not JSON, a corrupt row, is blanked whole rather than fail the mark.)
_BLANKED = (
    "CASE WHEN json_valid(body) THEN json_set(body, "
    "'$.text', CASE WHEN json_type(body, '$.text') = 'text' THEN '' END, "
    "'$.data', CASE WHEN json_type(body, '$.data') = 'text' THEN '' END) ELSE '' END"
)
_MARK = (
    "UPDATE outbound SET state = ?1, error = ?2, updated_at = ?3, attempts = attempts + ?4, "
    f"body = CASE WHEN ?1 IN ('{OutboundState.SENT}', '{OutboundState.FAILED}') "
    f"THEN {_BLANKED} ELSE body END "
    "WHERE message_id = ?5"
)
_SENT_PART = (
    "INSERT INTO sent_parts (message_id, modem, reference, recipient, sent_at) "
    "VALUES (?, ?, ?, ?, ?)"
)


def _event_row(event: TransportEvent, now: datetime) -> tuple[str, str, str]:
    return (event.event_id, payload.dumps(event).decode(), now.isoformat())


def _insert_event(db: sqlite3.Connection, row: tuple[str, str, str]) -> int | None:
    cursor = db.execute(
        "INSERT OR IGNORE INTO events (event_id, body, stored_at) VALUES (?, ?, ?)", row
    )
    return cursor.lastrowid if cursor.rowcount == 1 else None


def _mark_row(
    message_id: str, state: OutboundState, now: datetime, *, error: str | None, count_attempt: bool
) -> tuple[str, str | None, str, int, str]:
    return (state, error, now.isoformat(), int(count_attempt), message_id)


def _sent_part_rows(
    message_id: str, modem: str, references: Sequence[int], recipient: str, now: datetime
) -> list[tuple[str, str, int, str, str]]:
    return [(message_id, modem, ref, recipient, now.isoformat()) for ref in references]


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
