"""Authentication, truncated tags, IVs, replay windows, and decoders that never crash."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocol import frames as f
from firmware_protocol.frames import crypto
from firmware_protocol.frames import header as hdr
from tests.firmware_protocol.test_frames_codec import KEY, METER, small_message

ALL_KEYS = dict.fromkeys(range(256), KEY)


def sealed(message: f.Message, counter: int = 5, key_id: int = 1) -> bytes:
    (frame,) = f.seal(
        message, key=KEY, key_id=key_id, meter_number=METER, counter=counter, message_id=77
    )
    return frame


def open_(
    data: bytes | str,
    *,
    keys: Mapping[int, bytes] | None = None,
    meter_number: str = METER,
    direction: f.Direction | None = None,
    replay: f.ReplayWindow | None = None,
) -> f.Frame:
    return f.decode_any(
        data,
        keys={1: KEY} if keys is None else keys,
        meter_number=meter_number,
        direction=direction,
        replay=replay,
    )


PING = f.Ping()
RESULT = f.TokenResult(
    reference=9,
    outcome=f.TokenOutcome.ACCEPTED,
    at=datetime(2026, 5, 1, tzinfo=UTC),
    credit_kwh=Decimal("12.5"),
    added_kwh=Decimal("10"),
)


@given(message=small_message)
@settings(max_examples=50)
def test_truncated_tag_is_the_prefix_of_the_full_gcm_tag(message: f.Message) -> None:
    frame = sealed(message)
    header = f.peek(frame)
    nonce = f.iv(int(METER), header.direction, header.counter)
    _, payload = f.encode_payload(message)
    full = AESGCM(KEY).encrypt(nonce, payload, frame[: hdr.LENGTH])
    assert frame[hdr.LENGTH :] == full[: len(payload) + f.TAG_LENGTH]
    assert f.TAG_LENGTH == 12


def test_iv_is_system_title_and_counter_and_differs_by_sender() -> None:
    assert f.system_title(14234567890, f.Direction.UP) == b"LPM" + bytes.fromhex(
        "0350724 4d2".replace(" ", "")
    )
    up = f.iv(14234567890, f.Direction.UP, 0x01020304)
    down = f.iv(14234567890, f.Direction.DOWN, 0x01020304)
    assert up == b"LPM\x03\x50\x72\x44\xd2\x01\x02\x03\x04"
    assert down[:3] == b"LPH" and down[3:] == up[3:]


@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_open_or_raise_frame_error(data: bytes) -> None:
    try:
        open_(data, keys=ALL_KEYS)
    except f.FrameError as error:
        assert isinstance(error.reason, f.Reason)


valid_prefixes = st.builds(
    lambda message, tail: sealed(message)[: hdr.LENGTH] + tail,
    small_message,
    st.binary(max_size=122),
)


@given(data=valid_prefixes)
def test_well_formed_headers_with_junk_fail_authentication(data: bytes) -> None:
    with pytest.raises(f.FrameError) as caught:
        open_(data, keys=ALL_KEYS)
    assert caught.value.reason in {f.Reason.TRUNCATED, f.Reason.BAD_TAG, f.Reason.TOO_LONG}


base64_text = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=170
)


@given(text=st.one_of(st.text(max_size=200), base64_text.map(lambda s: f.PREFIX + s)))
def test_arbitrary_text_opens_or_raises_frame_error(text: str) -> None:
    try:
        open_(text, keys=ALL_KEYS)
    except f.FrameError as error:
        assert isinstance(error.reason, f.Reason)


@given(data=st.binary(max_size=200).map(lambda b: f.PREFIX.encode() + b))
def test_arbitrary_prefixed_bytes_open_or_raise_frame_error(data: bytes) -> None:
    try:
        open_(data, keys=ALL_KEYS)
    except f.FrameError as error:
        assert isinstance(error.reason, f.Reason)


def _expected_reasons(byte: int, bit: int) -> set[f.Reason]:
    if byte == hdr.OFFSET_VERSION:
        return {f.Reason.BAD_VERSION}
    if byte == hdr.OFFSET_FLAGS:
        return {f.Reason.UNKNOWN_TYPE} if bit == 0 else {f.Reason.BAD_FLAGS}
    if byte == hdr.OFFSET_TYPE:
        return {f.Reason.UNKNOWN_TYPE, f.Reason.BAD_TAG}  # BAD_TAG: another same-way type
    if hdr.OFFSET_METER <= byte < hdr.OFFSET_COUNTER:
        return {f.Reason.WRONG_METER, f.Reason.BAD_METER}
    if byte == hdr.OFFSET_SEGMENT:
        return {f.Reason.BAD_SEGMENT, f.Reason.BAD_TAG}
    return {f.Reason.BAD_TAG}  # key id (all keys held), counter, message id, ciphertext, tag


@given(message=small_message, data=st.data())
@settings(max_examples=150)
def test_every_bit_flip_is_refused(message: f.Message, data: st.DataObject) -> None:
    frame = bytearray(sealed(message))
    position = data.draw(st.integers(0, len(frame) * 8 - 1))
    byte, bit = divmod(position, 8)
    frame[byte] ^= 1 << bit
    with pytest.raises(f.FrameError) as caught:
        open_(bytes(frame), keys=ALL_KEYS)
    assert caught.value.reason in _expected_reasons(byte, bit)
    if caught.value.reason is f.Reason.BAD_TAG:
        assert caught.value.offset == len(frame) - f.TAG_LENGTH
    # the text form of a tampered frame fails the same way
    with pytest.raises(f.FrameError) as again:
        open_(f.to_text(bytes(frame)), keys=ALL_KEYS)
    assert again.value.reason is caught.value.reason


def test_wrong_key_meter_direction_and_key_id() -> None:
    frame = sealed(PING)
    with pytest.raises(f.FrameError) as caught:
        open_(frame, keys={1: bytes(16)})
    assert caught.value.reason is f.Reason.BAD_TAG
    with pytest.raises(f.FrameError) as caught:
        open_(frame, meter_number="14234567891")
    assert (caught.value.reason, caught.value.offset) == (f.Reason.WRONG_METER, 4)
    with pytest.raises(f.FrameError) as caught:
        open_(frame, direction=f.Direction.UP)
    assert (caught.value.reason, caught.value.offset) == (f.Reason.WRONG_DIRECTION, 1)
    with pytest.raises(f.FrameError) as caught:
        open_(frame, keys={2: KEY})
    assert (caught.value.reason, caught.value.offset) == (f.Reason.UNKNOWN_KEY, 3)
    assert open_(frame, direction=f.Direction.DOWN).message == PING


def test_a_frame_cut_or_grown_is_refused_with_its_offset() -> None:
    frame = sealed(RESULT)
    with pytest.raises(f.FrameError) as caught:
        open_(frame[:10])
    assert (caught.value.reason, caught.value.offset) == (f.Reason.TRUNCATED, 10)
    with pytest.raises(f.FrameError) as caught:
        open_(frame[:25])
    assert (caught.value.reason, caught.value.offset) == (f.Reason.TRUNCATED, 25)
    with pytest.raises(f.FrameError) as caught:
        open_(frame + bytes(141 - len(frame)))
    assert (caught.value.reason, caught.value.offset) == (f.Reason.TOO_LONG, 140)
    with pytest.raises(f.FrameError) as caught:
        open_(b"\x02" + frame[1:])
    assert (caught.value.reason, caught.value.offset) == (f.Reason.BAD_VERSION, 0)


def test_text_form_is_strict() -> None:
    frame = sealed(PING)
    text = f.to_text(frame)
    assert text.startswith("LP1:") and f.from_text(f" {text}\r\n") == frame
    encoded = base64.b64encode(frame).decode()
    for bad in ("LP2:" + encoded, "LP1:" + encoded[:-1], "LP1:" + encoded + "====", "LP1:é"):
        with pytest.raises(f.FrameError) as caught:
            f.from_text(bad)
        assert caught.value.reason is f.Reason.BAD_TEXT
    # a non-canonical encoding of the same bytes (unused low bits set) is refused
    padded = base64.b64encode(frame + b"\x00").decode()
    assert padded.endswith("AA==") and base64.b64decode(padded[:-3] + "B==") == frame + b"\x00"
    twisted = padded[:-3] + "B=="
    with pytest.raises(f.FrameError, match="canonical"):
        f.from_text("LP1:" + twisted)
    with pytest.raises(f.FrameError) as caught:
        f.to_text(bytes(118))
    assert caught.value.reason is f.Reason.TOO_LONG


def test_replay_window_through_open_frame() -> None:
    window = f.ReplayWindow()
    frames = {n: sealed(PING, counter=n) for n in (100, 99, 164, 30)}
    open_(frames[100], replay=window)
    open_(frames[99], replay=window)
    with pytest.raises(f.FrameError) as caught:
        open_(frames[99], replay=window)
    assert (caught.value.reason, caught.value.offset) == (f.Reason.REPLAYED, 9)
    open_(frames[164], replay=window)
    with pytest.raises(f.FrameError) as caught:
        open_(frames[100], replay=window)
    assert caught.value.reason is f.Reason.TOO_OLD
    # a forged frame does not move the window
    forged = bytearray(sealed(PING, counter=5000))
    forged[-1] ^= 1
    with pytest.raises(f.FrameError, match="bad tag"):
        open_(bytes(forged), replay=window)
    assert window.highest == 164


@given(counters=st.lists(st.integers(0, 300) | st.integers(0, 0xFFFF_FFFF), max_size=60))
def test_replay_window_matches_a_model(counters: list[int]) -> None:
    window = f.ReplayWindow()
    seen: set[int] = set()
    for counter in counters:
        highest = max(seen, default=None)
        if highest is None or counter > highest:
            expected = None
        elif highest - counter >= 64:
            expected = f.Reason.TOO_OLD
        elif counter in seen:
            expected = f.Reason.REPLAYED
        else:
            expected = None
        try:
            window.accept(counter)
        except f.FrameError as error:
            assert error.reason is expected
        else:
            assert expected is None
            seen.add(counter)
        assert window.highest == max(seen, default=None)
        assert f.ReplayWindow.from_bytes(window.to_bytes()) == window


@given(data=st.binary(min_size=0, max_size=20))
def test_replay_window_state_decoder_is_total(data: bytes) -> None:
    try:
        window = f.ReplayWindow.from_bytes(data)
    except f.FrameError as error:
        assert error.reason in {f.Reason.BAD_LENGTH, f.Reason.BAD_VALUE}
    else:
        assert window.to_bytes() == data


def test_replay_window_state_layout() -> None:
    window = f.ReplayWindow()
    assert window.to_bytes() == bytes(13)
    window.accept(0x10)
    window.accept(0x0E)
    assert window.to_bytes().hex() == "01" + "00000010" + "0000000000000005"


def test_an_authentic_frame_with_a_bad_payload_still_uses_its_counter() -> None:

    header = f.Header(
        type=f.MessageType.TELEMETRY, key_id=1, meter_number=METER, counter=40, message_id=1
    )
    aad = header.pack()
    short_payload = bytes(24)  # TELEMETRY needs 25
    frame = aad + crypto.encrypt(KEY, f.iv(int(METER), f.Direction.UP, 40), aad, short_payload)
    window = f.ReplayWindow()
    with pytest.raises(f.FrameError) as caught:
        open_(frame, direction=f.Direction.UP, replay=window)
    assert (caught.value.reason, caught.value.field, caught.value.offset) == (
        f.Reason.TRUNCATED, "signal_csq", 24,
    )  # fmt: skip
    assert window.seen(40)
