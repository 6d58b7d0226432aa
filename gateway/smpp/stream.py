"""Reading and writing whole PDUs on an asyncio stream."""

from __future__ import annotations

import asyncio

from gateway.smpp.pdu import HEADER, Pdu, decode, encode, frame_length


async def read_pdu(reader: asyncio.StreamReader) -> Pdu:
    """The next PDU; IncompleteReadError at end of stream, SmppError for a broken one."""
    head = await reader.readexactly(HEADER.size)
    rest = await reader.readexactly(frame_length(head) - HEADER.size)
    return decode(head + rest)


async def write_pdu(writer: asyncio.StreamWriter, pdu: Pdu) -> None:
    writer.write(encode(pdu))
    await writer.drain()
