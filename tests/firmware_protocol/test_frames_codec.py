"""The message catalogue: every message type round-trips, every payload decoder is total.

The strategies here are built from the catalogue's own field kinds, so a new message type
or field is covered without touching the tests; other frame tests import them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_protocol import frames as f
from firmware_protocol.frames.fields import (
    Choice,
    Flags,
    Kind,
    ListOf,
    Scaled,
    StsToken,
    Time,
    UInt,
)

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
METER = "14234567890"


def values_of(kind: Kind) -> st.SearchStrategy[Any]:
    if isinstance(kind, UInt):
        return st.one_of(*(st.integers(low, high) for low, high in kind.valid))
    if isinstance(kind, Scaled):
        top = (1 << 8 * kind.size) - 1
        return st.integers(0, top).map(lambda raw: Decimal(raw).scaleb(-kind.places))
    if isinstance(kind, Time):
        return st.integers(0, 0xFFFF_FFFF).map(lambda s: datetime.fromtimestamp(s, UTC))
    if isinstance(kind, Choice):
        return st.sampled_from(list(kind.enum))
    if isinstance(kind, Flags):
        return st.integers(0, kind.known).map(lambda raw: kind.flags(raw & kind.known))
    if isinstance(kind, StsToken):
        return st.integers(0, (1 << 66) - 1).map(lambda n: f"{n:020d}")
    if isinstance(kind, ListOf):
        return st.lists(values_of(kind.item), max_size=kind.max_items).map(tuple)
    raise AssertionError(f"no strategy for {kind!r}")


def messages_of(spec: f.MessageSpec) -> st.SearchStrategy[f.Message]:
    return st.builds(spec.cls, **{field.name: values_of(field.kind) for field in spec.fields})


any_message = st.one_of(*(messages_of(spec) for spec in f.CATALOGUE))
small_message = st.one_of(
    *(
        messages_of(spec)
        for spec in f.CATALOGUE
        if spec.message_type is not f.MessageType.LOAD_PROFILE
    )
)


def test_catalogue_is_consistent() -> None:
    assert {spec.message_type for spec in f.CATALOGUE} == set(f.MessageType)
    assert len({spec.cls for spec in f.CATALOGUE}) == len(f.CATALOGUE)
    for spec in f.CATALOGUE:
        assert [field.name for field in spec.fields] == list(spec.cls.__dataclass_fields__)
    downs = {s.message_type.name for s in f.CATALOGUE if s.direction is f.Direction.DOWN}
    assert downs == {"TOKEN_DELIVERY", "BALANCE_QUERY", "READ_REQUEST", "SET_CONFIG", "PING"}


@pytest.mark.parametrize("spec", f.CATALOGUE, ids=lambda spec: spec.message_type.name)
@given(data=st.data())
def test_payload_round_trip(spec: f.MessageSpec, data: st.DataObject) -> None:
    message = data.draw(messages_of(spec))
    message_type, payload = f.encode_payload(message)
    assert message_type is spec.message_type
    assert f.decode_payload(message_type, payload) == message


@pytest.mark.parametrize("spec", f.CATALOGUE, ids=lambda spec: spec.message_type.name)
@given(data=st.data())
def test_sealed_round_trip_in_both_forms(spec: f.MessageSpec, data: st.DataObject) -> None:
    message = data.draw(messages_of(spec))
    counter = data.draw(st.integers(0, 1 << 31))
    message_id = data.draw(st.integers(0, 0xFFFF_FFFF))
    for max_frame in (f.MAX_FRAME, f.TEXT_MAX_FRAME):
        frames = f.seal(
            message, key=KEY, key_id=3, meter_number=METER, counter=counter,
            message_id=message_id, max_frame=max_frame,
        )  # fmt: skip
        assert all(len(frame) <= max_frame for frame in frames)
        wire: list[bytes | str] = list(frames)
        if max_frame == f.TEXT_MAX_FRAME:
            wire = [f.to_text(frame) for frame in frames]
            assert all(len(text) <= 160 for text in wire)
        reassembler = f.Reassembler()
        results = [
            reassembler.add(
                f.decode_any(
                    item, keys={3: KEY}, meter_number=METER, direction=spec.direction, replay=None
                )
            )
            for item in wire
        ]
        assert results[:-1] == [None] * (len(results) - 1)
        received = results[-1]
        assert received is not None
        assert received.message == message
        assert received.message_id == message_id
        assert received.counters == tuple(range(counter, counter + len(frames)))


@given(code=st.sampled_from(list(f.MessageType)), payload=st.binary(max_size=64))
def test_payload_decoder_is_total(code: f.MessageType, payload: bytes) -> None:
    try:
        message = f.decode_payload(code, payload)
    except f.FrameError as error:
        assert error.reason in {f.Reason.TRUNCATED, f.Reason.BAD_LENGTH, f.Reason.BAD_VALUE}
        assert error.offset is not None and 0 <= error.offset <= len(payload)
    else:
        assert f.encode_payload(message) == (code, payload)


def _telemetry(**changes: Any) -> f.Telemetry:
    values: dict[str, Any] = {
        "request_id": 0,
        "read_at": datetime(2026, 5, 1, 6, 0, tzinfo=UTC),
        "energy_kwh": Decimal("1234.56"),
        "credit_kwh": Decimal("45.6"),
        "voltage_v": Decimal("221.3"),
        "power_w": 410,
        "status": f.MeterStatus(0),
        "signal_csq": 17,
    }
    values.update(changes)
    return f.Telemetry(**values)


@pytest.mark.parametrize(
    ("changes", "field", "offset"),
    [
        ({"request_id": -1}, "request_id", 0),
        ({"read_at": datetime(2026, 5, 1)}, "read_at", 4),
        ({"read_at": datetime(2026, 5, 1, 0, 0, 0, 5, tzinfo=UTC)}, "read_at", 4),
        ({"read_at": datetime(1969, 12, 31, tzinfo=UTC)}, "read_at", 4),
        ({"energy_kwh": Decimal("0.001")}, "energy_kwh", 8),
        ({"energy_kwh": Decimal("-1")}, "energy_kwh", 8),
        ({"energy_kwh": 1.5}, "energy_kwh", 8),
        ({"credit_kwh": Decimal("42949672.96")}, "credit_kwh", 12),
        ({"voltage_v": Decimal("NaN")}, "voltage_v", 16),
        ({"power_w": True}, "power_w", 18),
        ({"status": 3}, "status", 22),
        ({"signal_csq": 50}, "signal_csq", 24),
    ],
)
def test_encoding_refuses_bad_values(changes: dict[str, Any], field: str, offset: int) -> None:
    with pytest.raises(f.FrameError) as caught:
        f.encode_payload(_telemetry(**changes))
    assert caught.value.reason is f.Reason.BAD_VALUE
    assert (caught.value.field, caught.value.offset) == (field, offset)


def test_times_are_utc_whatever_zone_they_come_in() -> None:
    wib = timezone(timedelta(hours=7))
    local = _telemetry(read_at=datetime(2026, 5, 1, 13, 0, tzinfo=wib))
    decoded = f.decode_payload(*f.encode_payload(local))
    assert isinstance(decoded, f.Telemetry)
    assert decoded.read_at == datetime(2026, 5, 1, 6, 0, tzinfo=UTC)
    assert decoded.read_at.tzinfo is UTC


def test_token_packs_into_nine_bytes() -> None:
    message = f.TokenDelivery(reference=0x01020304, token="73786976294838206463")
    assert f.encode_payload(message)[1] == bytes.fromhex("01020304") + ((1 << 66) - 1).to_bytes(9)
    with pytest.raises(f.FrameError, match="66 bits") as caught:
        f.encode_payload(f.TokenDelivery(reference=1, token="73786976294838206464"))
    assert caught.value.offset == 4
    with pytest.raises(f.FrameError, match="66 bits"):
        f.decode_payload(f.MessageType.TOKEN_DELIVERY, bytes(4) + b"\x04" + bytes(8))


def test_payload_errors_name_field_and_offset() -> None:
    _, payload = f.encode_payload(_telemetry(status=f.MeterStatus.TAMPER))
    with pytest.raises(f.FrameError) as caught:
        f.decode_payload(f.MessageType.TELEMETRY, payload[:20])
    assert (caught.value.reason, caught.value.field, caught.value.offset) == (
        f.Reason.TRUNCATED, "power_w", 18,
    )  # fmt: skip
    reserved = payload[:22] + b"\x80\x00" + payload[24:]
    with pytest.raises(f.FrameError, match="reserved bits") as caught:
        f.decode_payload(f.MessageType.TELEMETRY, reserved)
    assert caught.value.offset == 22
    with pytest.raises(f.FrameError) as caught:
        f.decode_payload(f.MessageType.TELEMETRY, payload + b"\x00")
    assert (caught.value.reason, caught.value.offset) == (f.Reason.BAD_LENGTH, len(payload))
    bad_kind = bytes(4) + b"\x09" + bytes(6)
    with pytest.raises(f.FrameError, match="AlarmKind") as caught:
        f.decode_payload(f.MessageType.ALARM, bad_kind)
    assert caught.value.offset == 4
