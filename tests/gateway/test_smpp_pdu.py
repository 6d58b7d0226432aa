"""The SMPP PDU codec: known bytes, round trips, and arbitrary bytes never crash it."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.smpp.message import (
    ESM_UDHI,
    DataCoding,
    LongMessages,
    ReceiptState,
    decode_content,
    parse_receipt,
    receipt_text,
    split,
)
from gateway.smpp.pdu import Command, Pdu, SmppError, Status, Tag, decode, encode
from gateway.transport import OutboundSms


def test_enquire_link_is_a_bare_header() -> None:
    raw = bytes.fromhex("00000010 00000015 00000000 00000007")
    assert encode(Pdu(Command.ENQUIRE_LINK, 7)) == raw
    assert decode(raw) == Pdu(Command.ENQUIRE_LINK, 7)


def test_bind_transceiver_bytes() -> None:
    pdu = Pdu(
        Command.BIND_TRANSCEIVER,
        1,
        params={"system_id": "pintar", "password": "pw", "interface_version": 0x34},
    )
    raw = encode(pdu)
    body = b"pintar\x00" + b"pw\x00" + b"\x00" + b"\x34\x00\x00" + b"\x00"
    assert (
        raw
        == (16 + len(body)).to_bytes(4, "big") + bytes.fromhex("00000009 00000000 00000001") + body
    )
    assert decode(raw).text("system_id") == "pintar"


def test_failed_response_has_no_body() -> None:
    raw = encode(Pdu(Command.SUBMIT_SM_RESP, 3, Status.ESME_RTHROTTLED))
    assert raw == bytes.fromhex("00000010 80000004 00000058 00000003")
    assert decode(raw).status == Status.ESME_RTHROTTLED


def test_submit_sm_with_tlv_round_trips() -> None:
    pdu = Pdu(
        Command.SUBMIT_SM,
        9,
        params={
            "destination_addr": "6281100000001",
            "dest_addr_ton": 1,
            "data_coding": 8,
            "registered_delivery": 1,
            "short_message": b"",
        },
        tlvs={Tag.MESSAGE_PAYLOAD: "Halo ☺".encode("utf-16-be")},
    )
    back = decode(encode(pdu))
    assert back.text("destination_addr") == "6281100000001"
    assert back.number("registered_delivery") == 1
    assert back.tlvs[Tag.MESSAGE_PAYLOAD].decode("utf-16-be") == "Halo ☺"


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (bytes.fromhex("0000000f 00000015 00000000 00000001"), "command_length"),
        (bytes.fromhex("00000010 00000099 00000000 00000001"), "command_id at offset 4"),
        (bytes.fromhex("00000014 80000004 00000000 00000001") + b"abcd", "message_id at offset 16"),
        (bytes.fromhex("00000012 00000015 00000000 00000001") + b"xx", "ENQUIRE_LINK"),
    ],
)
def test_errors_name_field_and_offset(raw: bytes, where: str) -> None:
    with pytest.raises(SmppError, match=where):
        decode(raw)


_cstring = st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=15)


@settings(max_examples=150)
@given(
    st.sampled_from([Command.SUBMIT_SM, Command.DELIVER_SM]),
    st.integers(1, 0x7FFFFFFF),
    _cstring,
    _cstring,
    st.integers(0, 255),
    st.binary(max_size=254),
    st.dictionaries(st.integers(0, 0xFFFF), st.binary(max_size=30), max_size=3),
)
def test_short_message_pdus_round_trip(
    command: Command,
    sequence: int,
    source: str,
    destination: str,
    esm_class: int,
    message: bytes,
    tlvs: dict[int, bytes],
) -> None:
    pdu = Pdu(
        command,
        sequence,
        params={
            "source_addr": source,
            "destination_addr": destination,
            "esm_class": esm_class,
            "short_message": message,
        },
        tlvs=tlvs,
    )
    back = decode(encode(pdu))
    assert (back.command, back.sequence, back.tlvs) == (command, sequence, tlvs)
    assert back.octets("short_message") == message
    assert back.text("source_addr") == source and back.number("esm_class") == esm_class


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_decode_accepts_any_bytes(raw: bytes) -> None:
    with contextlib.suppress(SmppError):
        decode(raw)


@settings(max_examples=200)
@given(
    st.sampled_from(list(Command)),
    st.integers(0, 0xFFFFFFFF),
    st.binary(max_size=120),
)
def test_decode_accepts_any_body_behind_a_valid_header(
    command: Command, status: int, body: bytes
) -> None:
    raw = (16 + len(body)).to_bytes(4, "big") + int(command).to_bytes(4, "big")
    raw += status.to_bytes(4, "big") + (1).to_bytes(4, "big") + body
    with contextlib.suppress(SmppError):
        decode(raw)


@settings(max_examples=200)
@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=160))
def test_decode_content_accepts_any_body(coding: int, esm: int, body: bytes) -> None:
    with contextlib.suppress(SmppError):
        decode_content(coding, esm, body)


# -- splitting and coding -------------------------------------------------------------------


def _joined(sms: OutboundSms, mode: LongMessages = LongMessages.UDH) -> str | bytes | None:
    parts = split(sms, 42, mode)
    pieces = [decode_content(p.data_coding, p.esm_class, p.short_message) for p in parts]
    if len(parts) > 1:
        assert [c.concat for c in pieces] == [(42, len(parts), i + 1) for i in range(len(parts))]
    if pieces[0].data is not None:
        return b"".join(c.data or b"" for c in pieces)
    return "".join(c.text or "" for c in pieces)


def test_short_gsm7_text_is_one_part_unpacked() -> None:
    [part] = split(OutboundSms("m", "+6281", text="Token 1234 €"), 1)
    assert part.data_coding is DataCoding.DEFAULT and part.esm_class == 0
    assert part.short_message == b"Token 1234 \x1be"  # € is ESC e, one septet an octet


def test_long_text_is_split_with_a_concatenation_header() -> None:
    text = "Sisa kWh anda " * 30
    parts = split(OutboundSms("m", "+6281", text=text), 7)
    assert len(parts) == 3 and all(p.esm_class & ESM_UDHI for p in parts)
    assert all(len(p.short_message) <= 160 for p in parts)
    assert _joined(OutboundSms("m", "+6281", text=text)) == text


def test_payload_mode_sends_one_pdu() -> None:
    text = "ä" * 20 + "日本" * 100
    [part] = split(OutboundSms("m", "+6281", text=text), 7, LongMessages.PAYLOAD)
    assert part.data_coding is DataCoding.UCS2 and part.short_message == b""
    assert part.tlvs[Tag.MESSAGE_PAYLOAD].decode("utf-16-be") == text


@settings(max_examples=100)
@given(st.text(max_size=700))
def test_any_text_survives_splitting(text: str) -> None:
    sms = OutboundSms("m", "+6281", text=text)
    for part in split(sms, 42):
        assert len(part.short_message) <= 160
    assert _joined(sms) == text


@settings(max_examples=50)
@given(st.binary(max_size=600))
def test_any_data_survives_splitting(data: bytes) -> None:
    sms = OutboundSms("m", "+6281", data=data)
    assert all(p.data_coding is DataCoding.OCTETS for p in split(sms, 1))
    assert _joined(sms) == data


def test_receipt_text_and_tlvs() -> None:
    from datetime import UTC, datetime

    at = datetime(2026, 11, 21, 8, 30, tzinfo=UTC)
    text = receipt_text("00001a2b", ReceiptState.DELIVERED, at, at)
    receipt = parse_receipt(text, {})
    assert (receipt.message_id, receipt.state, receipt.done) == (
        "00001a2b",
        ReceiptState.DELIVERED,
        at,
    )
    assert receipt.tp_status == 0
    # the TLVs win over the text
    tlv = parse_receipt(text, {Tag.RECEIPTED_MESSAGE_ID: b"ff\x00", Tag.MESSAGE_STATE: b"\x05"})
    assert (tlv.message_id, tlv.state, tlv.tp_status) == ("ff", ReceiptState.UNDELIVERABLE, 0x41)
    with pytest.raises(SmppError, match="without id"):
        parse_receipt("hello", {})
