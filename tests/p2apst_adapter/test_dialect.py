"""The dialect on hand-built sample messages: fields, bit 48/62 layouts, codes, framing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from p2apst_adapter import dialect
from p2apst_adapter.dialect import (
    Deframer,
    Framing,
    IsoError,
    IsoMessage,
    Mti,
    ResponseCode,
    frame,
)
from tests.p2apst_adapter import samples


def test_purchase_request_sample_decodes_field_by_field() -> None:
    message = dialect.decode(samples.PURCHASE_REQUEST.encode())
    assert message.mti == "2200"
    assert message.fields[2] == "99502"
    assert message.fields[11] == "000000000123"
    assert message.fields[12] == "20240315103000"
    assert message.fields[32] == "4510017"
    assert message.fields[41] == "TERM000000000001"
    assert dialect.AMOUNT.decode(message.fields[4]) == {
        "currency": "360",
        "amount": Decimal(200000),
    }
    bit48 = dialect.decode_bit48(message.mti, message.fields[48])
    assert bit48["meter_number"] == "14234567890"
    assert bit48["customer_name"] == "BUDI SANTOSO"
    assert bit48["tariff"] == "R1"
    assert bit48["power_va"] == 1300
    assert bit48["admin_fee"] == Decimal(2500)
    assert bit48["switcher_reference"] == "SWREF000000000000000000000000001"


def test_samples_reencode_to_the_same_bytes() -> None:
    for sample in (samples.PURCHASE_REQUEST, samples.PURCHASE_RESPONSE, samples.SIGN_ON):
        assert dialect.encode(dialect.decode(sample.encode())) == sample.encode()


def test_purchase_response_sample_carries_token_and_money() -> None:
    message = dialect.decode(samples.PURCHASE_RESPONSE.encode())
    assert message.response_code == ResponseCode.SUCCESS
    assert dialect.bit48_layout(message.mti, message.fields[48]) is dialect.PURCHASE_RESPONSE
    bit48 = dialect.decode_bit48(message.mti, message.fields[48])
    assert bit48["token"] == "12345678901234567890"
    assert bit48["kwh"] == Decimal("132.73")
    assert bit48["power_purchase"] + bit48["ppj"] + bit48["admin_fee"] == Decimal(200000)  # type: ignore[operator]
    assert dialect.PRIVATE_DATA_2.decode(message.fields[62]) == {
        "distribution_code": "53",
        "service_unit": "53111",
        "service_unit_phone": "0361123456",
        "max_kwh": 0,
        "total_repeat": 1,
        "unsold_amounts": [Decimal(1000)],
    }


def test_sign_on_uses_bit_70_behind_the_secondary_bitmap() -> None:
    message = dialect.decode(samples.SIGN_ON.encode())
    assert message == IsoMessage("2800", {11: "000000000001", 70: "001"})


def test_error_response_carries_the_request_layout() -> None:
    bit48 = samples.PURCHASE_48
    assert dialect.bit48_layout("2210", bit48) is dialect.PURCHASE_REQUEST


@pytest.mark.parametrize(
    ("text", "field", "offset"),
    [
        (samples.PURCHASE_REQUEST[:30], "4", 27),  # cut inside bit 4
        (samples.PURCHASE_REQUEST.replace("3600000000200000", "36000000002000x0"), "4", None),
        ("22", "t", 0),
        (samples.PURCHASE_REQUEST + "9", "p", None),  # trailing byte
    ],
)
def test_bad_messages_name_the_field(text: str, field: str, offset: int | None) -> None:
    with pytest.raises(IsoError) as caught:
        dialect.decode(text.encode())
    if field != "p":
        assert caught.value.field == field
    if offset is not None:
        assert caught.value.offset == offset


def test_bit48_error_names_the_sub_field_and_offset() -> None:
    broken = samples.PURCHASE_48[:10] + "X" + samples.PURCHASE_48[11:]  # inside meter number
    with pytest.raises(IsoError) as caught:
        dialect.PURCHASE_REQUEST.decode(broken)
    assert caught.value.field == "48.meter_number"
    assert caught.value.offset == 7


def test_encode_rejects_letters_in_numeric_fields() -> None:
    with pytest.raises(IsoError) as caught:
        dialect.encode(IsoMessage("2800", {11: "00000000000A", 70: "001"}))
    assert caught.value.field == "11"


def test_money_uses_the_minor_unit_it_needs() -> None:
    kwh = dialect.PURCHASE_RESPONSE.fields[-2]
    assert kwh.name == "kwh"
    assert kwh.encode(Decimal("132.7"), "kwh") == "20000013270"
    assert kwh.encode(Decimal("0.125"), "kwh") == "30000000125"
    with pytest.raises(IsoError):
        kwh.encode(Decimal("99999999999"), "kwh")
    with pytest.raises(IsoError):
        kwh.encode(Decimal(-1), "kwh")


def test_response_codes_have_customer_text_where_it_matters() -> None:
    assert dialect.describe("0046").customer_text is None  # our deposit, not their problem
    assert "tidak terdaftar" in dialect.customer_text("0015")
    assert dialect.customer_text("0046")  # the generic apology
    assert dialect.describe("9999").meaning == "undocumented response code"
    assert all(code.value in dialect.RESPONSE_CODES for code in ResponseCode)


def test_mti_response_pairs() -> None:
    assert Mti.PURCHASE_REQUEST.response() is Mti.PURCHASE_RESPONSE
    assert Mti.ADVICE_REPEAT.response() is Mti.ADVICE_REPEAT_RESPONSE
    assert Mti.REPORT_ADVICE.response() is Mti.REPORT_RESPONSE


@pytest.mark.parametrize("framing", list(Framing))
def test_deframer_fed_byte_by_byte(framing: Framing) -> None:
    messages = [samples.PURCHASE_REQUEST.encode(), samples.SIGN_ON.encode()]
    stream = b"".join(frame(message, framing) for message in messages)
    deframer = Deframer(framing)
    out: list[bytes] = []
    for index in range(len(stream)):
        out += deframer.feed(stream[index : index + 1])
    assert out == messages
    assert deframer.pending == 0


def test_length_prefix_is_big_endian() -> None:
    assert frame(b"2800", Framing.LENGTH_PREFIX) == b"\x00\x042800"
    assert frame(b"2800", Framing.TRAILING_FF) == b"2800\xff"


def test_deframer_rejects_absurd_lengths() -> None:
    with pytest.raises(IsoError):
        Deframer(Framing.LENGTH_PREFIX).feed(b"\xff\xff")
    with pytest.raises(IsoError):
        Deframer(Framing.LENGTH_PREFIX).feed(b"\x00\x00")
