"""The SMPP carrier against the SMSC simulator, over real TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from gateway.smpp import PartStore, ReceiptBook, SmppCarrier, SmppSettings, SmscSimulator
from gateway.smpp.message import ESM_UDHI, DataCoding
from gateway.smpp.pdu import Command, Status
from gateway.spool import OutboundState, Spool
from gateway.spooled import SpooledGateway
from gateway.transport import (
    DeliveryReport,
    InboundSms,
    ModemStateChanged,
    ModemStatus,
    OutboundSms,
    SendResult,
    SendStatus,
    TransportEvent,
)

pytestmark = pytest.mark.timeout(15)
E = TypeVar("E", bound=TransportEvent)
METER = "+6281100000001"


def link_settings(smsc: SmscSimulator, **overrides: object) -> SmppSettings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": smsc.port,
        "system_id": "pintar",
        "password": "secret",
        "name": "smsc-a",
        "reconnect_backoff": 0.01,
        "reconnect_backoff_max": 0.05,
        "throttle_backoff": 0.01,
        "response_timeout": 5.0,
    }
    values.update(overrides)
    return SmppSettings(**values)  # type: ignore[arg-type]


class Events:
    def __init__(self, stream: AsyncIterator[TransportEvent]) -> None:
        self._stream = stream
        self.seen: list[TransportEvent] = []

    async def any(self) -> TransportEvent:
        event = await anext(self._stream)
        self.seen.append(event)
        return event

    async def next(self, kind: type[E], where: Callable[[E], bool] = lambda _: True) -> E:
        while True:
            event = await anext(self._stream)
            self.seen.append(event)
            if isinstance(event, kind) and where(event):
                return event


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


async def started(
    stack: AsyncExitStack, **overrides: object
) -> tuple[SmscSimulator, SmppCarrier, Events]:
    smsc = await stack.enter_async_context(SmscSimulator())
    book = await stack.enter_async_context(ReceiptBook(":memory:"))
    link = await stack.enter_async_context(SmppCarrier(link_settings(smsc, **overrides), book))
    return smsc, link, Events(link.carrier_events())


async def test_send_then_receipt_matched_to_the_message(stack: AsyncExitStack) -> None:
    smsc, link, events = await started(stack)
    state = await events.next(ModemStateChanged)
    assert state.status is ModemStatus.READY and state.modem == "smsc-a"
    await link.submit(OutboundSms("msg-1", METER, text="Token 1234-5678"))
    result = await events.next(SendResult)
    assert (result.message_id, result.status, result.modem) == ("msg-1", SendStatus.SENT, "smsc-a")
    report = await events.next(DeliveryReport)
    assert report.message_id == "msg-1" and report.delivered and report.final
    assert report.recipient == METER
    [submitted] = smsc.submitted
    assert submitted.destination_addr == "6281100000001"
    assert submitted.registered_delivery == 1
    assert submitted.data_coding == DataCoding.DEFAULT
    assert submitted.short_message == b"Token 1234-5678"


async def test_long_ucs2_text_goes_in_concatenated_parts(stack: AsyncExitStack) -> None:
    smsc, link, events = await started(stack)
    text = "Pulsa listrik: " + "ë" * 150
    await link.submit(OutboundSms("msg-long", METER, text=text, status_report=False))
    result = await events.next(SendResult)
    assert result.status is SendStatus.SENT
    assert len(smsc.submitted) == 3
    assert all(s.esm_class & ESM_UDHI and s.data_coding == DataCoding.UCS2 for s in smsc.submitted)
    assert b"".join(s.short_message[6:] for s in smsc.submitted).decode("utf-16-be") == text
    assert all(s.registered_delivery == 0 for s in smsc.submitted)


async def test_mobile_originated_sms_is_answered_only_after_it_is_stored(
    stack: AsyncExitStack,
) -> None:
    smsc, link, events = await started(stack)
    await link.bound.wait()
    await smsc.inject_mo("+6281200000009", b"SALDO 12345678901", destination="8123")
    sms = await events.next(InboundSms)
    assert (sms.sender, sms.text, sms.modem) == ("+6281200000009", "SALDO 12345678901", "smsc-a")
    # Until the consumer asks for the next event (it has stored this one), no deliver_sm_resp.
    assert smsc.pending_deliveries() == 1
    waiting = asyncio.create_task(events.next(SendResult))
    await smsc.wait_until(lambda: smsc.pending_deliveries() == 0)
    waiting.cancel()


async def test_throttling_backs_off_and_the_same_message_goes_through(
    stack: AsyncExitStack,
) -> None:
    smsc, link, events = await started(stack)
    smsc.script.extend([Status.ESME_RTHROTTLED, Status.ESME_RMSGQFUL])
    await link.submit(OutboundSms("msg-t", METER, data=b"\x01\x02"))
    result = await events.next(SendResult)
    assert result.status is SendStatus.SENT and result.attempts == 3
    submits = [p for p in smsc.received if p.command is Command.SUBMIT_SM]
    assert len(submits) == 3 and len(smsc.submitted) == 1
    assert smsc.submitted[0].data_coding == DataCoding.OCTETS


async def test_a_permanent_error_fails_the_message(stack: AsyncExitStack) -> None:
    smsc, link, events = await started(stack)
    smsc.script.append(Status.ESME_RINVDSTADR)
    await link.submit(OutboundSms("msg-bad", METER, text="x"))
    result = await events.next(SendResult)
    assert result.status is SendStatus.FAILED
    assert result.error is not None and "ESME_RINVDSTADR" in result.error


async def test_window_bounds_outstanding_submits(stack: AsyncExitStack) -> None:
    smsc, link, events = await started(stack, window=2)
    smsc.hold = asyncio.Event()
    for n in range(5):
        await link.submit(OutboundSms(f"msg-{n}", METER, text=f"t{n}", status_report=False))
    await smsc.wait_until(lambda: smsc.outstanding == 2)
    smsc.hold.set()
    results = [await events.next(SendResult) for _ in range(5)]
    assert sorted(r.message_id for r in results) == [f"msg-{n}" for n in range(5)]
    assert smsc.max_outstanding == 2


async def test_enquire_link_keeps_the_link_checked(stack: AsyncExitStack) -> None:
    smsc, _link, _ = await started(stack, enquire_link_interval=0.02)
    await smsc.wait_until(
        lambda: sum(p.command is Command.ENQUIRE_LINK for p in smsc.received) >= 3
    )
    assert smsc.binds == 1


async def test_a_refused_bind_is_retried_with_back_off(stack: AsyncExitStack) -> None:
    smsc, link, _ = await started(stack, password="wrong")
    await smsc.wait_until(
        lambda: sum(p.command is Command.BIND_TRANSCEIVER for p in smsc.received) >= 3
    )
    assert smsc.binds == 0 and not link.bound.is_set()


async def test_reconnect_after_a_dropped_connection_loses_nothing(
    stack: AsyncExitStack, tmp_path: Path
) -> None:
    smsc = await stack.enter_async_context(SmscSimulator())
    book = await stack.enter_async_context(ReceiptBook(tmp_path / "smsc-ids.db"))
    link = await stack.enter_async_context(SmppCarrier(link_settings(smsc), book))
    spool = await stack.enter_async_context(Spool(tmp_path / "spool.db"))
    gateway = await stack.enter_async_context(SpooledGateway("gw-smpp", link, spool))
    events = Events(gateway.events())
    smsc.drop_on_submit = 2  # the 2nd submit_sm kills the connection, unanswered
    ids = [f"msg-{n}" for n in range(4)]
    for message_id in ids:
        assert await gateway.send(OutboundSms(message_id, METER, text=f"token {message_id}"))
    # A receipt may overtake its SendResult (the SMSC is fast): wait for both kinds.
    while sum(isinstance(e, DeliveryReport) for e in events.seen) < len(ids) or sum(
        isinstance(e, SendResult) for e in events.seen
    ) < len(ids):
        await events.any()
    results = [e for e in events.seen if isinstance(e, SendResult)]
    reports = [e for e in events.seen if isinstance(e, DeliveryReport)]
    assert sorted(r.message_id for r in results) == ids
    assert all(r.status is SendStatus.SENT for r in results)
    assert {r.message_id for r in reports} == set(ids), (reports, smsc.submitted, smsc.received)
    assert all(r.delivered for r in reports)
    assert smsc.binds == 2
    assert sorted(s.short_message.decode() for s in smsc.submitted) == [f"token {i}" for i in ids]
    for message_id in ids:
        stored = await spool.outbound_state(message_id)
        assert stored is not None and stored.state is OutboundState.SENT
    assert any(
        isinstance(e, ModemStateChanged) and e.status is ModemStatus.OUT_OF_SERVICE
        for e in events.seen
    )


async def test_a_receipt_after_a_restart_is_still_matched(tmp_path: Path) -> None:
    async with SmscSimulator() as smsc:
        smsc.hold_receipts = True
        async with (
            ReceiptBook(tmp_path / "ids.db") as book,
            SmppCarrier(link_settings(smsc), book) as link,
        ):
            events = Events(link.carrier_events())
            await link.submit(OutboundSms("msg-r", METER, text="token"))
            assert (await events.next(SendResult)).status is SendStatus.SENT
        # a new process: new carrier, the book reopened from disk
        async with (
            ReceiptBook(tmp_path / "ids.db") as book,
            SmppCarrier(link_settings(smsc), book) as link,
        ):
            events = Events(link.carrier_events())
            await link.bound.wait()
            await smsc.release_receipts()
            report = await events.next(DeliveryReport)
            assert report.message_id == "msg-r" and report.recipient == METER
            assert report.event_id == f"smsc-a-receipt-{smsc.submitted[0].message_id}-DELIVRD"


async def test_an_unmatched_receipt_still_reaches_the_hub(stack: AsyncExitStack) -> None:
    smsc, link, events = await started(stack)
    await link.bound.wait()
    text = b"id:ffff0000 sub:001 dlvrd:000 submit date:2611210800 done date:2611210805 stat:UNDELIV"
    await smsc.inject_mo(METER, text, esm_class=0x04)
    report = await events.next(DeliveryReport)
    assert report.message_id is None and report.recipient == METER
    assert report.final and not report.delivered and report.status == 0x41


def udh_part(reference: int, total: int, seq: int, text: str) -> bytes:
    return bytes((5, 0, 3, reference, total, seq)) + text.encode("ascii")


async def test_a_multipart_mo_message_survives_a_restart_between_its_parts(
    tmp_path: Path,
) -> None:
    async with SmscSimulator() as smsc:
        for first in (True, False):
            async with (
                ReceiptBook(tmp_path / "ids.db") as book,
                PartStore(tmp_path / "ids.db") as parts,
                SmppCarrier(link_settings(smsc), book, parts=parts) as link,
            ):
                events = Events(link.carrier_events())
                await link.bound.wait()
                if first:
                    await smsc.inject_mo(METER, udh_part(7, 2, 1, "Token 1234 "), esm_class=0x40)
                    # answered once on disk, with no event yet
                    await smsc.wait_until(lambda: smsc.pending_deliveries() == 0)
                    continue
                await smsc.inject_mo(METER, udh_part(7, 2, 2, "5678"), esm_class=0x40)
                sms = await events.next(InboundSms)
                assert (sms.text, sms.complete, sms.sender) == ("Token 1234 5678", True, METER)
                waiting = asyncio.create_task(events.any())  # the consumer stored it
                await smsc.wait_until(lambda: smsc.pending_deliveries() == 0)
                waiting.cancel()
                assert await parts.expired(sms.received_at, timedelta(0)) == []


async def test_a_multipart_mo_message_missing_parts_goes_out_incomplete(
    stack: AsyncExitStack,
) -> None:
    smsc = await stack.enter_async_context(SmscSimulator())
    book = await stack.enter_async_context(ReceiptBook(":memory:"))
    parts = await stack.enter_async_context(PartStore(":memory:"))
    settings = link_settings(smsc, reassembly_timeout=timedelta(milliseconds=50))
    link = await stack.enter_async_context(SmppCarrier(settings, book, parts=parts))
    events = Events(link.carrier_events())
    await link.bound.wait()
    await smsc.inject_mo(METER, udh_part(9, 3, 1, "half"), esm_class=0x40)
    sms = await events.next(InboundSms)
    assert (sms.text, sms.complete) == ("half", False)


def _raw_pdu(command_id: int, sequence: int, body: bytes = b"") -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, 0, sequence) + body


#: alert_notification (SMPP 3.4 §4.12.1): a handset became reachable. Our codec does not
#: know it; an SMSC may send it unasked and repeat it.
ALERT_NOTIFICATION = _raw_pdu(0x00000102, 77, b"\x01\x01628110000000\x00\x01\x01pintar\x00")


async def test_an_unknown_command_from_the_smsc_is_nacked_and_the_link_stays(
    stack: AsyncExitStack,
) -> None:
    smsc, link, events = await started(stack)
    await events.next(ModemStateChanged)
    for _ in range(3):  # repeated, as SMSCs do
        await smsc.send_raw(ALERT_NOTIFICATION)
    await smsc.wait_until(
        lambda: (
            sum(
                p.command is Command.GENERIC_NACK
                and p.sequence == 77
                and p.status == Status.ESME_RINVCMDID
                for p in smsc.received
            )
            == 3
        )
    )
    await link.submit(OutboundSms("msg-after", METER, text="still here"))
    result = await events.next(SendResult)
    assert result.message_id == "msg-after" and result.status is SendStatus.SENT
    assert smsc.binds == 1 and link.binds == 1  # never dropped, never rebound


async def test_an_unknown_response_is_dropped_without_an_answer(stack: AsyncExitStack) -> None:
    smsc, link, events = await started(stack)
    await events.next(ModemStateChanged)
    await smsc.send_raw(_raw_pdu(0x80000103, 5))  # data_sm_resp nobody asked for
    await link.submit(OutboundSms("msg-next", METER, text="next"))
    assert (await events.next(SendResult)).status is SendStatus.SENT
    assert not [p for p in smsc.received if p.command is Command.GENERIC_NACK]
    assert smsc.binds == 1


async def test_closing_the_carrier_unbinds_first(tmp_path: Path) -> None:
    async with SmscSimulator() as smsc, ReceiptBook(":memory:") as book:
        async with SmppCarrier(link_settings(smsc), book) as link:
            await link.bound.wait()
        # The last thing the SMSC heard: an unbind (answered with unbind_resp), not a
        # connection dropped mid-session.
        assert [p.command for p in smsc.received][-1] is Command.UNBIND


async def test_the_simulator_shuts_down_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="asyncio")
    async with SmscSimulator() as smsc, ReceiptBook(":memory:") as book:
        link = SmppCarrier(link_settings(smsc), book)
        await link.__aenter__()
        await link.bound.wait()
        # The simulator closes first, with the ESME's session still open on it.
    await link.__aexit__(None, None, None)
    assert [r for r in caplog.records if r.name == "asyncio"] == []
