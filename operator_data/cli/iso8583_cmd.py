"""`pintar iso8583`: look inside P2APST ISO 8583 messages."""

from __future__ import annotations

from typing import Annotated

import typer

from operator_data.cli.output import emit, fail
from p2apst_adapter import dialect

app = typer.Typer(help="ISO 8583 messages of the P2APST link.", no_args_is_help=True)


def _unframe(data: bytes) -> tuple[bytes, str]:
    """Strips the framing if the bytes carry one; says which was assumed."""
    if len(data) > 2 and int.from_bytes(data[:2], "big") == len(data) - 2:
        return data[2:], str(dialect.Framing.LENGTH_PREFIX)
    if len(data) > 1 and data[-1] == 0xFF:
        return data[:-1], str(dialect.Framing.TRAILING_FF)
    return data, "none"


@app.command("decode")
def decode(
    hex_message: Annotated[
        str | None, typer.Argument(metavar="HEX", help="The message as hex digits.")
    ] = None,
    raw: Annotated[
        str | None, typer.Option("--raw", help="The message as ASCII text instead of hex.")
    ] = None,
) -> None:
    """Decode one message: MTI, every field, bit 48/56/62 sub-fields by name.

    A 2-byte big-endian length prefix that matches the rest, or a trailing 0xFF, is taken
    as framing and stripped; `framing` in the output says which was assumed.
    """
    if (hex_message is None) == (raw is None):
        fail("give the message either as HEX or with --raw TEXT")
    if hex_message is not None:
        try:
            data = bytes.fromhex("".join(hex_message.split()))
        except ValueError:
            fail(f"{hex_message!r} is not hex")
    else:
        assert raw is not None
        try:
            data = raw.encode("ascii")
        except UnicodeEncodeError:
            fail("--raw takes ASCII text")
    message_bytes, framing = _unframe(data)
    try:
        message = dialect.decode(message_bytes)
        document = dialect.message_document(message)
    except dialect.IsoError as error:
        fail(f"framing {framing}: {error}")
    emit({"framing": framing, **document})
