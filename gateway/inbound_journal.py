"""Delete-after-persist for a modem pool: raw PDUs are journalled before the SIM forgets them.

The pool hands every PDU it takes from a modem to `persist` and deletes it from the SIM only
after that returns; the pool then reassembles and emits a transport event, which the
SpooledGateway writes to the spool. Between the two a crash would lose the message, so
`persist` writes the PDU here first (SQLite, synchronous=FULL), and a row is dropped only
once the spool holds the event made of it. On start, rows still here (the process died in
between) are turned into their events and written to the spool directly, with the event ids
the pool would have given them (so nothing is doubled if the spool had them already).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable
from datetime import datetime

from gateway.at.events import InboundSms as TakenPdu
from gateway.at.multipart import AssembledMessage, Reassembler
from gateway.durable_file import DurableSqlite
from gateway.pdu import Deliver, PduError, StatusReport, decode
from gateway.pool import ModemPool
from gateway.spool import Spool
from gateway.transport import DeliveryReport, InboundSms, OutboundSms, TransportEvent

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS taken (
    fingerprint TEXT PRIMARY KEY,
    modem TEXT NOT NULL,
    pdu TEXT NOT NULL,
    received_at TEXT NOT NULL,
    storage TEXT
);
"""


def fingerprint(pdu: str) -> str:
    """As `gateway.at.events.InboundSms.fingerprint`: the key the pool's event ids use."""
    return hashlib.sha256(pdu.upper().encode("ascii", "replace")).hexdigest()


class InboundJournal(DurableSqlite):
    """`async with InboundJournal(path) as journal:`; `journal.persist` is the pool's callback."""

    SCHEMA = _SCHEMA
    NAME = "inbound journal"

    async def persist(self, taken: TakenPdu) -> None:
        await self.db.execute(
            "INSERT OR IGNORE INTO taken VALUES (?, ?, ?, ?, ?)",
            (
                taken.fingerprint,
                taken.modem,
                taken.pdu,
                taken.received_at.isoformat(),
                taken.storage,
            ),
        )

    async def forget(self, fingerprints: Iterable[str]) -> None:
        rows = [(f,) for f in fingerprints]
        if not rows:
            return

        def delete(db: sqlite3.Connection) -> None:
            # One transaction (one fsync) for a batch's rows, not one per row.
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("DELETE FROM taken WHERE fingerprint = ?", rows)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

        await self.run(delete)

    async def count(self) -> int:
        rows = list(await self.db.execute_fetchall("SELECT count(*) FROM taken"))
        return int(rows[0][0])

    async def leftovers(self) -> list[TakenPdu]:
        rows = await self.db.execute_fetchall(
            "SELECT modem, pdu, received_at, storage FROM taken ORDER BY received_at"
        )
        taken = []
        for modem, pdu, received_at, storage in rows:
            at = datetime.fromisoformat(received_at)
            try:
                decoded = decode(pdu).pdu
            except PduError as error:
                taken.append(TakenPdu(modem, pdu, None, str(error), at, storage))
                continue
            taken.append(TakenPdu(modem, pdu, decoded, None, at, storage))
        return taken

    async def recover(self, spool: Spool, now: datetime) -> int:
        """Writes the events of every leftover PDU to the spool; how many events."""
        events: list[tuple[TransportEvent, list[str]]] = []
        reassembler = Reassembler(timeout=0.0)
        for taken in await self.leftovers():
            if isinstance(taken.decoded, StatusReport):
                events.append((_report(taken, taken.decoded, now), [taken.fingerprint]))
            elif isinstance(taken.decoded, Deliver):
                message = reassembler.add(taken)
                if message is not None:
                    events.append(_message(message))
            else:
                log.error(
                    "journal: PDU from %s kept, it does not decode: %s", taken.modem, taken.error
                )
        # Parts whose siblings never reached the journal go out as an incomplete message.
        events.extend(_message(message) for message in reassembler.expire())
        for event, fingerprints in events:
            await spool.record_event(event, now)
            await self.forget(fingerprints)
        return len(events)


def _report(taken: TakenPdu, report: StatusReport, now: datetime) -> DeliveryReport:
    # The same event the pool builds from StatusReportReceived.
    return DeliveryReport(
        event_id=f"report:{taken.fingerprint}",
        message_id=None,
        recipient=report.recipient,
        message_reference=report.message_reference,
        status=report.status,
        discharge_time=report.discharge_time,
        at=now,
        modem=taken.modem,
    )


def _message(message: AssembledMessage) -> tuple[InboundSms, list[str]]:
    # The same event the pool's `_inbound` builds, so the spool deduplicates it.
    key = "|".join(p.fingerprint for p in message.parts)
    delivers = message.delivers
    event = InboundSms(
        event_id="sms:" + hashlib.sha256(key.encode()).hexdigest(),
        sender=message.sender,
        received_at=max(p.received_at for p in message.parts),
        text=message.text,
        data=None if message.text is not None else message.data,
        smsc_timestamp=delivers[0].timestamp if delivers else None,
        modem=message.parts[0].modem,
        complete=message.complete,
        raw_pdus=tuple(p.pdu for p in message.parts),
    )
    return event, [p.fingerprint for p in message.parts]


class JournalledPool:
    """The pool as a Carrier whose events, once the spool has them, clear the journal."""

    def __init__(self, pool: ModemPool, journal: InboundJournal) -> None:
        self.pool = pool
        self._journal = journal

    async def submit(self, sms: OutboundSms) -> None:
        await self.pool.submit(sms)

    async def carrier_events(self) -> AsyncIterator[TransportEvent]:
        async for event in self.pool.carrier_events():
            yield event
            # The consumer (SpooledGateway) asks for the next event only once it stored this.
            await self._journal.forget(_fingerprints(event))

    async def carrier_event_batches(self) -> AsyncIterator[list[TransportEvent]]:
        """As `carrier_events`, a batch at a time (gateway.spooled.BatchingCarrier): the
        journal rows of the whole batch go once the spool holds all of it."""
        async for batch in self.pool.carrier_event_batches():
            yield batch
            await self._journal.forget(f for event in batch for f in _fingerprints(event))


def _fingerprints(event: TransportEvent) -> list[str]:
    """The journal rows an event was made of (none for events of the pool's own)."""
    if isinstance(event, InboundSms):
        return [fingerprint(pdu) for pdu in event.raw_pdus]
    if isinstance(event, DeliveryReport) and event.event_id.startswith("report:"):
        return [event.event_id.removeprefix("report:")]
    return []
