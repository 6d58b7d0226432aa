"""data_sm (SMPP 3.4 §4.7): decoded, and an MO or receipt in one is an MO or a receipt.

The SMSC simulator injects the PDUs as bytes; some of those bytes come from `smpplib`'s
encoder, an implementation nobody here wrote.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
import smpplib.smpp  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st

from gateway.smpp import ReceiptBook, SmppCarrier, SmscSimulator
from gateway.smpp.message import ESM_DELIVERY_RECEIPT, DataCoding
from gateway.smpp.pdu import Command, Pdu, SmppError, Status, Tag, decode, encode
from gateway.transport import DeliveryReport, InboundSms, ModemStateChanged, OutboundSms, SendResult
from tests.gateway.test_smpp_link import Events, link_settings

pytestmark = pytest.mark.timeout(15)
METER = "+6281100000001"


def data_sm(sequence: int, payload: bytes, **params: int | str) -> Pdu:
    values: dict[str, int | str | bytes] = {
        "source_addr_ton": 1,
        "source_addr_npi": 1,
        "source_addr": "6281100000001",
        "destination_addr": "87000",
        "esm_class": 0,
        "data_coding": DataCoding.DEFAULT,
    }
    values.update(params)
    return Pdu(Command.DATA_SM, sequence, params=values, tlvs={Tag.MESSAGE_PAYLOAD: payload})


def test_data_sm_round_trips_with_its_65_octet_addresses() -> None:
    pdu = data_sm(9, b"BELI 50000", source_addr="A" * 64, destination_addr="8" * 64)
    decoded = decode(encode(pdu))
    assert decoded.command is Command.DATA_SM and decoded.sequence == 9
    assert decoded.text("source_addr") == "A" * 64
    assert decoded.tlvs == {Tag.MESSAGE_PAYLOAD: b"BELI 50000"}
    with pytest.raises(SmppError, match="source_addr"):
        encode(data_sm(9, b"", source_addr="A" * 65))
    resp = decode(encode(Pdu(Command.DATA_SM_RESP, 9, params={"message_id": "m1"})))
    assert resp.text("message_id") == "m1"


def test_smpplib_data_sm_bytes_decode_to_the_same_values() -> None:
    made = smpplib.smpp.make_pdu(
        "data_sm",
        client=None,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="6281100000001",
        destination_addr="87000",
        esm_class=0,
        registered_delivery=0,
        data_coding=0,
        message_payload=b"CEK 14234567890",
        sequence=41,
    )
    made.sequence = 41
    pdu = decode(made.generate())
    assert pdu.command is Command.DATA_SM and pdu.sequence == 41
    assert (pdu.text("source_addr"), pdu.text("destination_addr")) == ("6281100000001", "87000")
    assert pdu.tlvs[Tag.MESSAGE_PAYLOAD] == b"CEK 14234567890"


def test_a_truncated_data_sm_names_what_is_missing() -> None:
    frame = encode(data_sm(3, b"x"))
    cut = frame[:30]
    with pytest.raises(SmppError, match=r"at offset \d+"):
        decode(struct.pack(">I", len(cut)) + cut[4:])


@given(body=st.binary(max_size=200), command=st.sampled_from([0x00000103, 0x80000103]))
def test_arbitrary_data_sm_bodies_decode_or_raise_smpp_error(body: bytes, command: int) -> None:
    frame = struct.pack(">IIII", 16 + len(body), command, 0, 1) + body
    try:
        pdu = decode(frame)
    except SmppError:
        return
    assert pdu.command in (Command.DATA_SM, Command.DATA_SM_RESP)
    again = decode(encode(pdu))  # a body-less response gains its (empty) message_id once
    assert decode(encode(again)) == again
    assert again.tlvs == pdu.tlvs


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


async def started(stack: AsyncExitStack) -> tuple[SmscSimulator, SmppCarrier, Events]:
    smsc = await stack.enter_async_context(SmscSimulator())
    book = await stack.enter_async_context(ReceiptBook(":memory:"))
    link = await stack.enter_async_context(SmppCarrier(link_settings(smsc), book))
    events = Events(link.carrier_events())
    await events.next(ModemStateChanged)
    return smsc, link, events


def answered(smsc: SmscSimulator, sequence: int) -> list[Pdu]:
    return [
        p for p in smsc.received if p.command is Command.DATA_SM_RESP and p.sequence == sequence
    ]


async def acknowledged(smsc: SmscSimulator, events: Events, sequence: int) -> Pdu:
    """The data_sm_resp for `sequence`, sent once the event was stored: asking for the next
    event is how a consumer says it stored the last one."""
    consumer = asyncio.ensure_future(events.any())
    try:
        await smsc.wait_until(lambda: bool(answered(smsc, sequence)))
    finally:
        consumer.cancel()
    [resp] = answered(smsc, sequence)
    return resp


async def test_an_mo_in_a_data_sm_is_an_inbound_sms_and_is_answered(stack: AsyncExitStack) -> None:
    smsc, link, events = await started(stack)
    await smsc.send_raw(encode(data_sm(501, b"BELI 14234567890 50000")))
    sms = await events.next(InboundSms)
    assert (sms.sender, sms.text, sms.complete) == (METER, "BELI 14234567890 50000", True)
    resp = await acknowledged(smsc, events, 501)
    assert resp.status == Status.ESME_ROK
    assert not [p for p in smsc.received if p.command is Command.GENERIC_NACK]
    assert smsc.binds == 1 and link.binds == 1


async def test_an_mo_data_sm_encoded_by_smpplib_arrives(stack: AsyncExitStack) -> None:
    smsc, _, events = await started(stack)
    made = smpplib.smpp.make_pdu(
        "data_sm",
        client=None,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="6281100000001",
        destination_addr="87000",
        esm_class=0,
        registered_delivery=0,
        data_coding=8,  # UCS-2
        message_payload="SALDO ✓".encode("utf-16-be"),
        sequence=502,
    )
    made.sequence = 502
    await smsc.send_raw(made.generate())
    sms = await events.next(InboundSms)
    assert (sms.sender, sms.text) == (METER, "SALDO ✓")
    assert (await acknowledged(smsc, events, made.sequence)).status == Status.ESME_ROK


async def test_a_receipt_in_a_data_sm_is_matched_to_its_message(stack: AsyncExitStack) -> None:
    smsc, link, events = await started(stack)
    smsc.hold_receipts = True  # the simulator's own deliver_sm receipt stays back
    await link.submit(OutboundSms("msg-ds", METER, text="Token 1111-2222"))
    assert (await events.next(SendResult)).message_id == "msg-ds"
    [submitted] = smsc.submitted
    receipt = Pdu(
        Command.DATA_SM,
        503,
        params={
            "source_addr_ton": 1,
            "source_addr_npi": 1,
            "source_addr": "6281100000001",
            "destination_addr": "87000",
            "esm_class": ESM_DELIVERY_RECEIPT,
        },
        tlvs={
            Tag.RECEIPTED_MESSAGE_ID: submitted.message_id.encode() + b"\x00",
            Tag.MESSAGE_STATE: bytes((2,)),  # DELIVERED
        },
    )
    await smsc.send_raw(encode(receipt))
    report = await events.next(DeliveryReport)
    assert report.message_id == "msg-ds" and report.delivered and report.final
    assert report.recipient == METER
    assert (await acknowledged(smsc, events, 503)).status == Status.ESME_ROK
    assert not [e for e in events.seen if isinstance(e, InboundSms)]
