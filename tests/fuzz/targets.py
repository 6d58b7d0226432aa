"""One fuzz target per decoder of bytes from outside: each feeds the input to the decoder
and lets through only the decoder's documented error. Any other exception is a crash —
the kind that killed the P2APST supervisor (a bare KeyError out of iso8583)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from firmware_protocol.frames import FrameError
from firmware_protocol.frames.catalogue import MessageType, decode_payload
from firmware_protocol.frames.frame import peek
from firmware_protocol.frames.text import to_binary
from gateway import pdu
from gateway.smpp import pdu as smpp_pdu
from operator_data.commands.grammar import CommandError, parse
from p2apst_adapter.dialect import P2APST, IsoError, decode, decode_bit48

_TYPES = tuple(MessageType)


def sms_pdu(data: bytes) -> None:
    """A TP-PDU as a modem hands it over: hex text, with or without an SMSC part."""
    text = data.decode("latin-1")
    for has_smsc in (None, True, False):
        with contextlib.suppress(pdu.PduError):
            pdu.decode(text, has_smsc=has_smsc)


def firmware_frame(data: bytes) -> None:
    """A meter frame: either wire form, its header, and every payload layout (the payload
    decoder runs after authentication in service, so it is fed directly here)."""
    with contextlib.suppress(FrameError):
        peek(to_binary(data))
    if data:
        with contextlib.suppress(FrameError):
            decode_payload(_TYPES[data[0] % len(_TYPES)], data[1:])


def iso8583(data: bytes) -> None:
    """One unframed P2APST message, then its bit 48 read with every MTI's layouts."""
    try:
        message = decode(data, P2APST)
    except IsoError:
        message = None
    text = data.decode("latin-1")
    for mti in ("2110", "2210", "2410"):
        with contextlib.suppress(IsoError):
            decode_bit48(mti, text, P2APST)
    if message is not None:
        for layout in P2APST.layouts:
            value = message.fields.get(layout.bit)
            if isinstance(value, str):
                with contextlib.suppress(IsoError):
                    layout.decode(value)


def smpp(data: bytes) -> None:
    """One SMPP frame as the stream hands it over (length prefix included)."""
    with contextlib.suppress(smpp_pdu.SmppError):
        smpp_pdu.decode(data)


def customer_command(data: bytes) -> None:
    """An SMS text from a customer, as bytes (any encoding) and as text."""
    for raw in (data, data.decode("utf-8", "replace")):
        with contextlib.suppress(CommandError):
            parse(raw)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "sms_pdu": sms_pdu,
    "firmware_frame": firmware_frame,
    "iso8583": iso8583,
    "smpp": smpp,
    "customer_command": customer_command,
}
