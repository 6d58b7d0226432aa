"""The text form of a frame, for networks that only pass GSM-7 text: `LP1:` + base64.

The base64 alphabet (A–Z a–z 0–9 + / =) lies inside the GSM 03.38 default alphabet with
no escape characters, so a frame survives any text path as it is. 160 characters leave 156
for base64, which carry 117 bytes: senders size segments with `TEXT_MAX_FRAME` when they
will send text. Decoding is strict (canonical base64 only) so one frame has one text form.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Final

from firmware_protocol.frames.direction import Direction
from firmware_protocol.frames.errors import FrameError, Reason
from firmware_protocol.frames.frame import MIN_FRAME, Frame, open_frame
from firmware_protocol.frames.replay import ReplayWindow

PREFIX: Final = "LP1:"
MAX_TEXT: Final = 160
TEXT_MAX_FRAME: Final = (MAX_TEXT - len(PREFIX)) // 4 * 3
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def to_text(frame: bytes) -> str:
    if len(frame) > TEXT_MAX_FRAME:
        raise FrameError(
            Reason.TOO_LONG,
            f"{len(frame)} bytes do not fit one text SMS (at most {TEXT_MAX_FRAME})",
            offset=TEXT_MAX_FRAME,
        )
    return PREFIX + base64.b64encode(frame).decode("ascii")


def from_text(text: str) -> bytes:
    """The binary frame in a text-form SMS; surrounding whitespace is ignored."""
    body = text.strip(" \t\r\n")
    if not body.startswith(PREFIX):
        raise FrameError(Reason.BAD_TEXT, f"text form starts with {PREFIX!r}", offset=0)
    if len(body) > MAX_TEXT:
        raise FrameError(
            Reason.BAD_TEXT, f"{len(body)} characters, one SMS has {MAX_TEXT}", offset=MAX_TEXT
        )
    encoded = body[len(PREFIX) :]
    if not _BASE64.fullmatch(encoded) or len(encoded) % 4:
        raise FrameError(Reason.BAD_TEXT, "not base64", offset=len(PREFIX))
    try:
        frame = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise FrameError(Reason.BAD_TEXT, "not base64", offset=len(PREFIX)) from None
    if base64.b64encode(frame).decode("ascii") != encoded:
        raise FrameError(Reason.BAD_TEXT, "base64 is not in canonical form", offset=len(PREFIX))
    if len(frame) < MIN_FRAME:
        raise FrameError(
            Reason.TRUNCATED, f"text form holds {len(frame)} bytes, a frame is at least {MIN_FRAME}"
        )
    return frame


def to_binary(data: bytes | str) -> bytes:
    """A binary frame from either wire form: str or ASCII bytes starting with the prefix are
    text; other bytes are binary (a binary frame starts with 0x01, never `L`)."""
    if isinstance(data, str):
        return from_text(data)
    if data.startswith(PREFIX.encode("ascii")):
        try:
            return from_text(data.decode("ascii"))
        except UnicodeDecodeError as error:
            raise FrameError(Reason.BAD_TEXT, "not ASCII", offset=error.start) from None
    return bytes(data)


def decode_any(
    data: bytes | str,
    *,
    keys: Mapping[int, bytes],
    meter_number: str,
    direction: Direction | None,
    replay: ReplayWindow | None,
) -> Frame:
    """`open_frame` for a frame in either wire form."""
    return open_frame(
        to_binary(data), keys=keys, meter_number=meter_number, direction=direction, replay=replay
    )
