"""`NetworkSmsc`: the SMPP SMSC on the simulated network, with the gateway's own SMPP carrier
as the ESME (over real TCP on 127.0.0.1): MO texts and parts reach the ESME, submits reach
the network's endpoints as data or text parts, and receipts follow the network's reports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TypeVar

import pytest

from gateway.pdu import Concat, Encoding
from gateway.smpp import LongMessages, PartStore, ReceiptBook, SmppCarrier, SmppSettings
from gateway.smpp.message import ESM_UDHI, DataCoding, ReceiptState
from gateway.transport import (
    DeliveryReport,
    InboundSms,
    OutboundSms,
    SendResult,
    SendStatus,
    TransportEvent,
)
from meter_sim.network import (
    STATUS_DELIVERED,
    STATUS_NOT_DELIVERED,
    STATUS_UNKNOWN_RECIPIENT,
    NetworkSms,
    NetworkSmsc,
    NetworkStatusReport,
    SmsNetwork,
)
from meter_sim.network.smpp_bridge import mo_body, receipt_state

pytestmark = pytest.mark.timeout(15)
E = TypeVar("E", bound=TransportEvent)
SHORT_CODE = "87000"
PHONE = "+6281300000001"
METER = "+6281100000001"


class Handset:
    """A network endpoint that keeps what it gets."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[NetworkSms] = asyncio.Queue()

    async def receive_sms(self, sms: NetworkSms) -> bool:
        await self.inbox.put(sms)
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        return None


class Events:
    def __init__(self, stream: AsyncIterator[TransportEvent]) -> None:
        self._stream = stream

    async def next(self, kind: type[E], where: Callable[[E], bool] = lambda _: True) -> E:
        while True:
            event = await anext(self._stream)
            if isinstance(event, kind) and where(event):
                return event


async def world(
    stack: AsyncExitStack, tmp_path: Path, **settings: object
) -> tuple[SmsNetwork, NetworkSmsc, SmppCarrier, Events]:
    network = await stack.enter_async_context(SmsNetwork())
    smsc = await stack.enter_async_context(NetworkSmsc(network, SHORT_CODE))
    book = await stack.enter_async_context(ReceiptBook(":memory:"))
    parts = await stack.enter_async_context(PartStore(tmp_path / "parts.db"))
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": smsc.port,
        "system_id": "pintar",
        "password": "secret",
        "name": "smsc",
        "source_addr": SHORT_CODE,
        "reconnect_backoff": 0.01,
    }
    values.update(settings)
    link = await stack.enter_async_context(
        SmppCarrier(SmppSettings(**values), book, parts=parts)  # type: ignore[arg-type]
    )
    return network, smsc, link, Events(link.carrier_events())


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


async def test_a_phone_texting_the_short_code_reaches_the_esme(
    stack: AsyncExitStack, tmp_path: Path
) -> None:
    network, _, _, events = await world(stack, tmp_path)
    network.submit(PHONE, SHORT_CODE, text="BELI 50000 1234")
    sms = await events.next(InboundSms)
    assert (sms.sender, sms.text, sms.data, sms.complete) == (PHONE, "BELI 50000 1234", None, True)


async def test_a_long_ucs2_message_in_parts_is_reassembled_by_the_esme(
    stack: AsyncExitStack, tmp_path: Path
) -> None:
    network, _, _, events = await world(stack, tmp_path)
    first, second = "Saldo ë " + "x" * 60, "sisa 12 kWh"
    # A phone encodes every part alike: the GSM-7-only second part still travels as UCS-2.
    for seq, text in enumerate((first, second), start=1):
        network.submit(
            PHONE, SHORT_CODE, text=text, concat=Concat(7, 2, seq), encoding=Encoding.UCS2
        )
    sms = await events.next(InboundSms)
    assert (sms.sender, sms.text, sms.complete) == (PHONE, first + second, True)


async def test_a_meter_frame_goes_out_as_data_and_its_receipt_comes_back(
    stack: AsyncExitStack, tmp_path: Path
) -> None:
    network, smsc, link, events = await world(stack, tmp_path)
    meter = Handset()
    network.attach(METER, meter)
    frame = bytes(range(0x80, 0x80 + 40))
    await link.submit(OutboundSms("msg-frame", METER, data=frame))
    got = await meter.inbox.get()
    assert (got.sender, got.data, got.text, got.encoding) == (
        SHORT_CODE,
        frame,
        None,
        Encoding.DATA8,
    )
    assert got.concat is None
    result = await events.next(SendResult)
    assert (result.message_id, result.status) == ("msg-frame", SendStatus.SENT)
    report = await events.next(DeliveryReport)
    assert report.message_id == "msg-frame" and report.delivered and report.final
    [submitted] = smsc.smsc.submitted
    assert submitted.data_coding == DataCoding.OCTETS


async def test_a_long_text_arrives_in_parts_each_with_its_receipt(
    stack: AsyncExitStack, tmp_path: Path
) -> None:
    network, smsc, link, events = await world(stack, tmp_path)
    phone = Handset()
    network.attach(PHONE, phone)
    text = "Token 1234-5678-9012-3456-7890 untuk meter 12345678901. " * 4
    await link.submit(OutboundSms("msg-long", PHONE, text=text))
    parts = [await phone.inbox.get(), await phone.inbox.get()]
    assert all(p.concat is not None and p.concat.total == 2 for p in parts)
    assert all(p.encoding is Encoding.GSM7 and p.data is None for p in parts)
    parts.sort(key=lambda p: p.concat.seq if p.concat else 0)
    assert "".join(p.text or "" for p in parts) == text
    assert len({p.concat.ref for p in parts if p.concat}) == 1
    assert all(s.esm_class & ESM_UDHI for s in smsc.smsc.submitted)
    reports = [await events.next(DeliveryReport), await events.next(DeliveryReport)]
    assert {r.message_id for r in reports} == {"msg-long"}
    assert sorted(r.message_reference for r in reports) == [0, 1]  # the part numbers
    assert all(r.delivered for r in reports)


async def test_a_message_payload_is_split_for_the_air_as_an_smsc_does(
    stack: AsyncExitStack, tmp_path: Path
) -> None:
    network, smsc, link, events = await world(stack, tmp_path, long_messages=LongMessages.PAYLOAD)
    phone = Handset()
    network.attach(PHONE, phone)
    text = "Listrik pintar: " + "ë" * 100  # UCS-2, 116 characters: two parts of 67
    await link.submit(OutboundSms("msg-payload", PHONE, text=text))
    parts = [await phone.inbox.get(), await phone.inbox.get()]
    assert len(smsc.smsc.submitted) == 1
    assert all(p.encoding is Encoding.UCS2 for p in parts)
    parts.sort(key=lambda p: p.concat.seq if p.concat else 0)
    assert "".join(p.text or "" for p in parts) == text
    # One submit_sm, one receipt: after both parts are delivered.
    report = await events.next(DeliveryReport)
    assert report.message_id == "msg-payload" and report.delivered
    assert phone.inbox.empty()


async def test_an_unknown_recipient_gets_a_failed_receipt(
    stack: AsyncExitStack, tmp_path: Path
) -> None:
    _, _, link, events = await world(stack, tmp_path)
    await link.submit(OutboundSms("msg-nobody", "+6289999999999", text="halo"))
    report = await events.next(DeliveryReport)
    assert report.message_id == "msg-nobody"
    assert report.final and not report.delivered
    assert report.status == 0x41  # UNDELIV


async def test_a_submit_from_a_number_not_the_services_is_refused(
    stack: AsyncExitStack, tmp_path: Path
) -> None:
    network, smsc, link, events = await world(stack, tmp_path, source_addr="99999")
    phone = Handset()
    network.attach(PHONE, phone)
    await link.submit(OutboundSms("msg-spoof", PHONE, text="halo"))
    result = await events.next(SendResult)
    assert result.status is SendStatus.FAILED and "ESME_RINVSRCADR" in (result.error or "")
    assert smsc.smsc.submitted == [] and phone.inbox.empty()
    [(_, why)] = smsc.refused
    assert "99999" in why


async def test_mo_waits_for_the_esme_to_bind(stack: AsyncExitStack, tmp_path: Path) -> None:
    network = await stack.enter_async_context(SmsNetwork())
    smsc = await stack.enter_async_context(NetworkSmsc(network, SHORT_CODE))
    # Handed over as the network hands it (awaited here, so nothing races the bind).
    taken = await smsc.receive_sms(
        NetworkSms(1, PHONE, SHORT_CODE, "CEK", None, None, network.now())
    )
    assert taken and smsc.smsc.pending_deliveries() == 1
    book = await stack.enter_async_context(ReceiptBook(":memory:"))
    settings = SmppSettings("127.0.0.1", smsc.port, "pintar", "secret", name="smsc")
    link = await stack.enter_async_context(SmppCarrier(settings, book))
    sms = await Events(link.carrier_events()).next(InboundSms)
    assert (sms.sender, sms.text) == (PHONE, "CEK")


def test_mo_bodies_carry_the_senders_alphabet_and_concatenation() -> None:
    def sms(**fields: object) -> NetworkSms:
        values: dict[str, object] = {
            "message_id": 1,
            "sender": PHONE,
            "recipient": SHORT_CODE,
            "text": None,
            "data": None,
            "concat": None,
            "submitted_at": None,
        }
        values.update(fields)
        return NetworkSms(**values)  # type: ignore[arg-type]

    assert mo_body(sms(text="CEK @")) == (DataCoding.DEFAULT, 0, b"CEK \x00")
    assert mo_body(sms(text="CEK", encoding=Encoding.UCS2)) == (
        DataCoding.UCS2,
        0,
        "CEK".encode("utf-16-be"),
    )
    assert mo_body(sms(text="ë")) == (DataCoding.UCS2, 0, b"\x00\xeb")
    assert mo_body(sms(data=b"\x01\x02", concat=Concat(0x1234, 3, 2))) == (
        DataCoding.OCTETS,
        ESM_UDHI,
        b"\x06\x08\x04\x12\x34\x03\x02\x01\x02",
    )
    assert mo_body(sms(text="A", concat=Concat(9, 2, 1)))[2] == b"\x05\x00\x03\x09\x02\x01A"


def test_network_statuses_become_receipt_states() -> None:
    assert receipt_state(STATUS_DELIVERED) is ReceiptState.DELIVERED
    assert receipt_state(STATUS_UNKNOWN_RECIPIENT) is ReceiptState.UNDELIVERABLE
    assert receipt_state(STATUS_NOT_DELIVERED) is ReceiptState.EXPIRED
    assert receipt_state(0x20) is ReceiptState.UNKNOWN
