"""`pintar frame`: open and build meter ⇄ hub SMS frames (docs/protocol.md).

An engineering tool: the key is given on the command line, so tokens print in full.
"""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer

from firmware_protocol import frames
from operator_data.cli.output import emit, fail

app = typer.Typer(help="Meter ⇄ hub SMS frames (protocol version 1).", no_args_is_help=True)

KeyOption = Annotated[str, typer.Option("--key", help="The meter's AES-128 key, 32 hex digits.")]
MeterOption = Annotated[str, typer.Option("--meter", help="Meter number, 11 digits.")]


def _key(text: str) -> bytes:
    cleaned = re.sub(r"[\s:]", "", text)
    if not re.fullmatch(r"[0-9a-fA-F]{32}", cleaned):
        fail(f"a key is 32 hex digits, got {text!r}")
    return bytes.fromhex(cleaned)


def _wire(item: str) -> bytes:
    """One frame as given: the `LP1:` text form, or hex (spaces and colons ignored)."""
    if item.strip().startswith(frames.PREFIX):
        return frames.from_text(item)
    cleaned = re.sub(r"[\s:]", "", item)
    if not cleaned or not re.fullmatch(r"(?:[0-9a-fA-F]{2})+", cleaned):
        fail(f"{item[:40]!r} is neither hex nor a {frames.PREFIX} text frame")
    return bytes.fromhex(cleaned)


@app.command("decode")
def decode(
    items: Annotated[
        list[str],
        typer.Argument(
            metavar="HEX_OR_TEXT",
            help="One frame, or every segment of one message (any order).",
        ),
    ],
    key: KeyOption,
    meter: MeterOption,
    direction: Annotated[
        frames.Direction | None,
        typer.Option(help="Expected direction; by default whatever the frame says."),
    ] = None,
) -> None:
    """Authenticate and decode frames; print the message and every field as JSON."""
    secret = _key(key)
    reassembler = frames.Reassembler(max_pending=1)
    received: frames.Received | None = None
    opened: list[frames.Frame] = []
    try:
        for item in items:
            data = _wire(item)
            header = frames.peek(data)  # the one key given serves whatever key id the frame names
            frame = frames.open_frame(
                data,
                keys={header.key_id: secret},
                meter_number=meter,
                direction=direction,
                replay=None,
            )
            if opened and frame.header.message_id != opened[0].header.message_id:
                fail("all frames given must be segments of one message (same message id)")
            opened.append(frame)
            received = reassembler.add(frame)
            if received is not None and len(opened) < len(items):
                fail("frames left over after the message was complete")
    except frames.FrameError as error:
        fail(str(error))
    if received is not None:
        emit(frames.describe(received))
        return
    first = opened[0].header
    emit(
        {
            "type": first.type.name,
            "direction": first.direction.value,
            "meter_number": first.meter_number,
            "message_id": first.message_id,
            "complete": False,
            "segments": [frames.header_fields(frame.header) for frame in opened],
            "missing_segments": reassembler.missing(
                first.meter_number, first.direction, first.message_id
            ),
        }
    )


@app.command("encode")
def encode(
    message_type: Annotated[
        str, typer.Argument(metavar="TYPE", help="Message type name, e.g. TOKEN_DELIVERY.")
    ],
    fields: Annotated[
        str, typer.Argument(metavar="FIELDS_JSON", help="Payload fields as JSON, e.g. '{}'.")
    ],
    key: KeyOption,
    meter: MeterOption,
    counter: Annotated[int, typer.Option(help="Invocation counter of the first frame.")],
    message_id: Annotated[int, typer.Option(help="Message id.")],
    key_id: Annotated[int, typer.Option(help="Key id, 0–255.")] = 1,
    text: Annotated[bool, typer.Option("--text", help="Text form, sized for 160 chars.")] = False,
) -> None:
    """Seal a message into frame(s); prints hex and text forms."""
    secret = _key(key)
    try:
        values = json.loads(fields)
    except json.JSONDecodeError as error:
        fail(f"fields are not JSON: {error}")
    if not isinstance(values, dict):
        fail("fields must be a JSON object")
    try:
        message = frames.message_from_json(message_type.upper(), values)
        sealed = frames.seal(
            message,
            key=secret,
            key_id=key_id,
            meter_number=meter,
            counter=counter,
            message_id=message_id,
            max_frame=frames.TEXT_MAX_FRAME if text else frames.MAX_FRAME,
        )
    except frames.FrameError as error:
        fail(str(error))
    emit(
        {
            "frames": [
                {
                    "counter": frames.peek(frame).counter,
                    "hex": frame.hex(),
                    **({"text": frames.to_text(frame)} if text else {}),
                }
                for frame in sealed
            ]
        }
    )
