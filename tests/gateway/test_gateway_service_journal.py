"""The inbound journal: PDUs taken from a SIM survive a crash before the spool had them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from gateway.at.events import InboundSms as TakenPdu
from gateway.inbound_journal import InboundJournal
from gateway.pdu import Concat, decode, encode_deliver, encode_status_report
from gateway.spool import Spool
from gateway.transport import DeliveryReport, InboundSms

WHEN = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
METER = "+6281100000001"


def taken(pdu: str, modem: str = "m0") -> TakenPdu:
    return TakenPdu(modem, pdu, decode(pdu).pdu, None, WHEN, "SM", 1, 0)


async def test_leftover_pdus_become_the_events_the_pool_would_have_made(tmp_path: Path) -> None:
    single = taken(encode_deliver(METER, text="SALDO", timestamp=WHEN))
    parts = [
        taken(encode_deliver(METER, text=text, timestamp=WHEN, concat=Concat(7, 2, seq)))
        for seq, text in ((1, "Token 1234 "), (2, "5678"))
    ]
    lonely = taken(encode_deliver(METER, text="half", timestamp=WHEN, concat=Concat(9, 2, 1)))
    report = taken(
        encode_status_report(METER, message_reference=42, status=0, submitted=WHEN, discharged=WHEN)
    )
    async with InboundJournal(tmp_path / "j.db") as journal, Spool(tmp_path / "s.db") as spool:
        for pdu in (single, *parts, lonely, report):
            await journal.persist(pdu)
        await journal.persist(single)  # read twice (the delete failed): kept once
        assert await journal.count() == 5
        assert await journal.recover(spool, WHEN) == 4
        assert await journal.count() == 0
        events = {e.event_id: e for _, e in await spool.unacknowledged()}
        first = events["sms:" + hashlib.sha256(single.fingerprint.encode()).hexdigest()]
        assert isinstance(first, InboundSms) and first.text == "SALDO" and first.complete
        joined = "|".join(p.fingerprint for p in parts)
        whole = events["sms:" + hashlib.sha256(joined.encode()).hexdigest()]
        assert isinstance(whole, InboundSms) and whole.text == "Token 1234 5678"
        assert whole.raw_pdus == tuple(p.pdu for p in parts)
        half = [e for e in events.values() if isinstance(e, InboundSms) and not e.complete]
        assert [e.text for e in half] == ["half"]
        dr = events[f"report:{report.fingerprint}"]
        assert isinstance(dr, DeliveryReport) and dr.message_reference == 42 and dr.delivered
        # Recovering again (a crash right after) adds nothing: the spool has these ids.
        for pdu in (single, report):
            await journal.persist(pdu)
        await journal.recover(spool, WHEN)
        assert len(await spool.unacknowledged()) == 4


async def test_undecodable_pdus_stay_in_the_journal(tmp_path: Path) -> None:
    async with InboundJournal(tmp_path / "j.db") as journal, Spool(tmp_path / "s.db") as spool:
        await journal.persist(TakenPdu("m0", "00FF", None, "truncated", WHEN))
        assert await journal.recover(spool, WHEN) == 0
        assert await journal.count() == 1
