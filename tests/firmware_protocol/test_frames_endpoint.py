"""A hub and a meter talking through `Endpoint`s: counters, replay, segments, key rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocol import frames as f
from tests.firmware_protocol.test_frames_codec import KEY, METER

NEW_KEY = bytes.fromhex("f0e0d0c0b0a090807060504030201000")
T0 = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)


def pair() -> tuple[f.Endpoint, f.Endpoint]:
    hub = f.Endpoint(role=f.Role.HUB, meter_number=METER, keys={1: KEY}, key_id=1)
    meter = f.Endpoint(role=f.Role.METER, meter_number=METER, keys={1: KEY}, key_id=1)
    return hub, meter


def profile(count: int) -> f.LoadProfile:
    return f.LoadProfile(
        request_id=41,
        start=T0,
        interval_min=15,
        energy_kwh=tuple(Decimal(1000 + n).scaleb(-2) for n in range(count)),
    )


def test_token_round_trip_between_hub_and_meter() -> None:
    hub, meter = pair()
    delivery = f.TokenDelivery(reference=31337, token="26456622012185850752")
    (down,) = hub.seal(delivery, message_id=1)
    received = meter.receive(down)
    assert received is not None and received.message == delivery
    assert received.type is f.MessageType.TOKEN_DELIVERY and received.counters == (0,)
    result = f.TokenResult(
        reference=31337,
        outcome=f.TokenOutcome.ACCEPTED,
        at=T0,
        credit_kwh=Decimal("37.85"),
        added_kwh=Decimal("25.60"),
    )
    (up,) = meter.seal_text(result, message_id=1)
    answer = hub.receive(up)
    assert answer is not None and answer.message == result and answer.direction is f.Direction.UP
    assert (hub.next_counter, meter.next_counter) == (1, 1)
    # the same SMS delivered twice is refused the second time
    with pytest.raises(f.FrameError) as caught:
        meter.receive(down)
    assert caught.value.reason is f.Reason.REPLAYED


def test_an_endpoint_refuses_its_own_direction() -> None:
    hub, _ = pair()
    with pytest.raises(f.FrameError) as caught:
        hub.seal(f.Pong(request_id=1, meter_time=T0, signal_csq=99, firmware=0x0102), message_id=2)
    assert caught.value.reason is f.Reason.WRONG_DIRECTION
    (down,) = hub.seal(f.Ping(), message_id=3)
    with pytest.raises(f.FrameError) as caught:
        hub.receive(down)  # a hub frame reflected back at the hub
    assert caught.value.reason is f.Reason.WRONG_DIRECTION
    other = f.Endpoint(role=f.Role.METER, meter_number="14234567891", keys={1: KEY}, key_id=1)
    with pytest.raises(f.FrameError) as caught:
        other.receive(down)
    assert caught.value.reason is f.Reason.WRONG_METER


@given(count=st.sampled_from([180, 255]), data=st.data())
@settings(max_examples=30)
def test_segments_reassemble_in_any_order(count: int, data: st.DataObject) -> None:
    hub, meter = pair()
    message = profile(count)
    frames = meter.seal_text(message, message_id=41)
    assert len(frames) == {180: 9, 255: 12}[count]  # 11 + 4 × count bytes, 87 per text frame
    assert all(len(frame) <= 160 for frame in frames)
    order = data.draw(st.permutations(range(len(frames))))
    results = [hub.receive(frames[i]) for i in order]
    assert results[:-1] == [None] * (len(frames) - 1)
    done = results[-1]
    assert done is not None and done.message == message
    assert done.counters == tuple(range(len(frames)))
    assert [h.segment_index for h in done.headers] == list(range(len(frames)))


def test_binary_segments_and_the_segment_limit() -> None:
    _, meter = pair()
    frames = meter.seal(profile(255), message_id=5)
    assert [len(frame) for frame in frames][:-1] == [140] * (len(frames) - 1)
    assert len(frames) == 10
    assert meter.next_counter == 10
    too_big = f.LoadProfile(request_id=0, start=T0, interval_min=1, energy_kwh=())
    assert len(meter.seal(too_big, message_id=6)) == 1
    with pytest.raises(f.FrameError) as caught:
        f.seal(profile(255), key=KEY, key_id=1, meter_number=METER, counter=0,
               message_id=1, max_frame=94)  # fmt: skip
    assert caught.value.reason is f.Reason.TOO_LARGE


def test_reassembler_detects_inconsistent_segments_and_bounds_memory() -> None:
    _, meter = pair()
    frames_a = meter.seal(profile(60), message_id=9)
    frames_b = meter.seal(profile(61), message_id=9)  # same id, different content
    open_up = {
        "keys": {1: KEY}, "meter_number": METER, "direction": f.Direction.UP, "replay": None,
    }  # fmt: skip
    reassembler = f.Reassembler(max_pending=2)
    assert reassembler.add(f.open_frame(frames_a[0], **open_up)) is None  # type: ignore[arg-type]
    assert reassembler.missing(METER, f.Direction.UP, 9) == [1, 2, 3][: len(frames_a) - 1]
    with pytest.raises(f.FrameError) as caught:
        reassembler.add(f.open_frame(frames_b[0], **open_up))  # type: ignore[arg-type]
    assert caught.value.reason is f.Reason.SEGMENT_MISMATCH
    for message_id in (10, 11):
        first = meter.seal(profile(60), message_id=message_id)[0]
        reassembler.add(f.open_frame(first, **open_up))  # type: ignore[arg-type]
    assert reassembler.pending == 2
    assert reassembler.missing(METER, f.Direction.UP, 9) == []  # evicted, oldest first


def test_state_survives_a_restart() -> None:
    hub, meter = pair()
    for message_id in range(3):
        (down,) = hub.seal(f.BalanceQuery(), message_id=message_id)
        meter.receive(down)
    state = meter.state()
    assert state == f.EndpointState(key_id=1, next_counter=0, replay=meter.replay.to_bytes())
    restarted = f.Endpoint.restore(state, role=f.Role.METER, meter_number=METER, keys={1: KEY})
    with pytest.raises(f.FrameError) as caught:
        restarted.receive(down)
    assert caught.value.reason is f.Reason.REPLAYED
    hub_again = f.Endpoint.restore(hub.state(), role=f.Role.HUB, meter_number=METER, keys={1: KEY})
    (fresh,) = hub_again.seal(f.BalanceQuery(), message_id=3)
    assert f.peek(fresh).counter == 3
    assert restarted.receive(fresh) is not None


def test_key_rotation() -> None:
    both = {1: KEY, 2: NEW_KEY}
    meter = f.Endpoint(role=f.Role.METER, meter_number=METER, keys=both, key_id=1)
    hub = f.Endpoint(role=f.Role.HUB, meter_number=METER, keys=both, key_id=1)
    (old,) = hub.seal(f.Ping(), message_id=1)
    hub.use_key(2)
    (new,) = hub.seal(f.Ping(), message_id=2)
    assert (f.peek(old).key_id, f.peek(new).key_id) == (1, 2)
    assert meter.receive(new) is not None and meter.receive(old) is not None
    retired = f.Endpoint(role=f.Role.METER, meter_number=METER, keys={2: NEW_KEY}, key_id=2)
    with pytest.raises(f.FrameError) as caught:
        retired.receive(old)
    assert caught.value.reason is f.Reason.UNKNOWN_KEY
    with pytest.raises(f.FrameError):
        hub.use_key(3)


def test_counter_exhaustion_refuses_to_reuse_an_iv() -> None:
    last = f.Endpoint(
        role=f.Role.HUB, meter_number=METER, keys={1: KEY}, key_id=1, next_counter=0xFFFF_FFFF
    )
    (frame,) = last.seal(f.Ping(), message_id=1)
    assert f.peek(frame).counter == 0xFFFF_FFFF
    with pytest.raises(f.FrameError) as caught:
        last.seal(f.Ping(), message_id=2)
    assert caught.value.reason is f.Reason.COUNTER_EXHAUSTED


def test_bad_keys_and_meter_numbers_are_refused() -> None:
    with pytest.raises(f.FrameError) as caught:
        f.Endpoint(role=f.Role.HUB, meter_number=METER, keys={1: bytes(15)}, key_id=1)
    assert caught.value.reason is f.Reason.BAD_KEY
    with pytest.raises(f.FrameError) as caught:
        f.Endpoint(role=f.Role.HUB, meter_number="1423456789", keys={1: KEY}, key_id=1)
    assert caught.value.reason is f.Reason.BAD_METER


def test_config_exchange_carries_request_id() -> None:
    hub, meter = pair()
    config = f.SetConfig(
        reporting_interval_min=1440, low_credit_threshold_kwh=Decimal("5"), clock=T0
    )
    (down,) = hub.seal(config, message_id=77)
    got = meter.receive(down)
    assert got is not None and isinstance(got.message, f.SetConfig)
    ack = f.ConfigAck(
        request_id=got.message_id,
        status=f.ConfigStatus.APPLIED,
        reporting_interval_min=got.message.reporting_interval_min,
        low_credit_threshold_kwh=got.message.low_credit_threshold_kwh,
        clock=T0 + timedelta(seconds=2),
    )
    (up,) = meter.seal(ack, message_id=1)
    back = hub.receive(up)
    assert back is not None and back.message == ack and back.message.request_id == 77
