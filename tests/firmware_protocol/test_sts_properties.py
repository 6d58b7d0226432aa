"""Properties of the STS codec over its whole value space."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_protocol import sts
from firmware_protocol.sts import amount, ea07
from firmware_protocol.sts.tid import TID_MAX

keys = st.integers(min_value=0, max_value=(1 << 64) - 1)
token_fields = st.builds(
    sts.TokenFields,
    token_class=st.sampled_from([sts.TokenClass.CREDIT, sts.TokenClass.MANAGEMENT]),
    subclass=st.integers(0, 15),
    rnd=st.integers(0, 15),
    tid=st.integers(0, TID_MAX),
    field=st.integers(0, 0xFFFF),
)


@given(block=keys, key=keys)
def test_ea07_decrypt_inverts_encrypt(block: int, key: int) -> None:
    assert ea07.decrypt(ea07.encrypt(block, key), key) == block


@given(fields=token_fields, key=keys)
def test_decode_inverts_encode_for_every_token(fields: sts.TokenFields, key: int) -> None:
    token = sts.encode(fields, key)
    assert len(token) == 20 and token.isdigit()
    decoded = sts.decode(token, key)
    assert decoded.crc_ok
    assert decoded.fields == fields


@given(field=st.integers(0, 0xFFFF))
def test_every_amount_field_value_round_trips(field: int) -> None:
    tenths = amount.field_to_tenths(field)
    # Fields with exponent > 0 and mantissa 0 share no value with another field, so the
    # encoder gives back the same field.
    assert amount.field_to_tenths(amount.tenths_to_field(tenths)) == tenths


@given(tenths=st.integers(0, sts.MAX_TENTHS))
def test_amounts_round_up_never_down_and_to_the_nearest_representable(tenths: int) -> None:
    field = amount.tenths_to_field(tenths)
    delivered = amount.field_to_tenths(field)
    assert delivered >= tenths
    if field & 0x3FFF:
        # One mantissa step less would have delivered too little.
        assert amount.field_to_tenths(field - 1) < tenths


@given(
    kwh=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1820162.4"), places=2),
    subclass=st.integers(0, 15),
    rnd=st.integers(0, 15),
    minutes=st.integers(0, TID_MAX),
    key=keys,
)
def test_credit_tokens_round_trip_with_the_standard_rounding(
    kwh: Decimal, subclass: int, rnd: int, minutes: int, key: int
) -> None:
    base = sts.BaseDate.Y2014
    issued_at = base.start + timedelta(minutes=minutes)
    token = sts.encode(sts.credit(subclass, rnd, issued_at, kwh, base), key)
    fields = sts.decode(token, key).fields
    assert fields.amount_kwh == sts.round_kwh(kwh)
    assert fields.amount_kwh >= kwh
    assert fields.issued_at(base) == issued_at


@given(text=st.text(max_size=30), key=keys)
def test_decode_accepts_any_text_and_raises_only_its_own_error(text: str, key: int) -> None:
    with contextlib.suppress(sts.StsError):
        sts.decode(text, key)


def test_known_rounding_example_from_the_standard() -> None:
    assert sts.round_kwh(Decimal("2000.0")) == Decimal("2000.4")
    assert sts.round_kwh(Decimal("0.01")) == Decimal("0.1")
    assert sts.round_kwh(Decimal("1638.3")) == Decimal("1638.3")


def test_tid_ranges_per_base_date() -> None:
    assert sts.tid_from_datetime(datetime(2014, 1, 1, 0, 1), sts.BaseDate.Y2014) == 1
    # 1993-based TIDs ran out on 2024-11-24.
    with pytest.raises(sts.StsError, match="outside the TID range"):
        sts.tid_from_datetime(datetime(2024, 11, 25), sts.BaseDate.Y1993)
    with pytest.raises(sts.StsError):
        sts.tid_from_datetime(datetime(2013, 12, 31, 23, 59), sts.BaseDate.Y2014)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key_type": 10}, "key_type"),
        ({"supply_group_code": "12345"}, "supply_group_code"),
        ({"tariff_index": "1"}, "tariff_index"),
        ({"drn": "0000000000a"}, "drn"),
        ({"iin": "60072"}, "iin"),
    ],
)
def test_key_data_is_validated(kwargs: dict[str, object], message: str) -> None:
    good: dict[str, object] = {
        "key_type": 2,
        "supply_group_code": "123456",
        "tariff_index": "01",
        "key_revision_number": 1,
        "iin": "600727",
        "drn": "00000000000",
    }
    with pytest.raises(sts.StsError, match=message):
        sts.KeyData(**{**good, **kwargs})  # type: ignore[arg-type]


def test_amount_limits() -> None:
    with pytest.raises(sts.StsError, match="positive"):
        sts.credit(0, 0, datetime(2020, 1, 1), Decimal(0), sts.BaseDate.Y2014)
    with pytest.raises(sts.StsError, match="largest"):
        sts.credit(0, 0, datetime(2020, 1, 1), Decimal("1820162.5"), sts.BaseDate.Y2014)


@given(text=st.from_regex(r"[0-9]{20}", fullmatch=True), key=keys)
def test_any_twenty_digits_decode_or_raise_the_codec_error(text: str, key: int) -> None:
    try:
        decoded = sts.decode(text, key)
    except sts.StsError as error:
        assert "class" in str(error) or "66 bits" in str(error)
    else:
        assert sts.encode(decoded.fields, key) == text or not decoded.crc_ok
