"""bench/token_e2e's own pieces: the hub process's P2APST tap records what it forwards, and
the benchmark joins the recorded chunks (split anywhere, from several workers) into
request → answer times by meter."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime

from bench import token_e2e_hub
from bench.token_e2e import Stamps
from p2apst_adapter.dialect import ResponseCode, encode, frame
from p2apst_adapter.messages import inquiry_request, response
from p2apst_adapter.model import LinkIdentity

WHEN = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def _inquiry(stan: str, meter: str) -> tuple[bytes, bytes]:
    request = inquiry_request(LinkIdentity(), stan, WHEN, meter_number=meter)
    return frame(encode(request)), frame(encode(response(request, ResponseCode.SUCCESS)))


def _chunk(conn: int, outbound: bool, at: float, data: bytes) -> list[object]:
    return [conn, outbound, at, base64.b64encode(data).decode()]


def test_stamps_join_chunks_split_anywhere_and_keep_workers_apart() -> None:
    out_a, back_a = _inquiry("000000000001", "14123456789")
    out_b, back_b = _inquiry("000000000001", "14987654321")  # same STAN, the other worker
    stamps = Stamps()
    stamps.add(
        "hub-0",
        {
            "handed_in": {"e1": 5.0},
            "handed_out": {"m1": 6.0},
            # The request split over two reads: it left when its last byte did.
            "p2apst": [_chunk(1, True, 1.0, out_a[:7]), _chunk(1, True, 1.5, out_a[7:])],
        },
    )
    stamps.add(
        "hub-1",
        {"handed_in": {}, "handed_out": {}, "p2apst": [_chunk(1, True, 2.0, out_b)]},
    )
    stamps.add(
        "hub-0",
        {
            "handed_in": {"e1": 9.0},  # seen again later: the first time counts
            "handed_out": {},
            "p2apst": [_chunk(1, False, 3.0, back_a)],
        },
    )
    stamps.add(
        "hub-1",
        {"handed_in": {}, "handed_out": {}, "p2apst": [_chunk(1, False, 4.0, back_b)]},
    )
    assert stamps.handed_in == {"e1": 5.0} and stamps.handed_out == {"m1": 6.0}
    assert {m: (e.sent, e.answered) for m, e in stamps.inquiries.items()} == {
        "14123456789": (1.5, 3.0),
        "14987654321": (2.0, 4.0),
    }
    assert stamps.purchases == {}


async def test_the_hub_process_tap_forwards_first_and_records_every_chunk() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(100):
            writer.write(data)
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    token_e2e_hub.RECORD.take()
    async with server, token_e2e_hub.Tap("127.0.0.1", port) as tap:
        reader, writer = await asyncio.open_connection("127.0.0.1", tap.port)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        writer.close()
        await writer.wait_closed()
    taken = token_e2e_hub.RECORD.take()
    chunks = [(outbound, base64.b64decode(data)) for _, outbound, _, data in taken["p2apst"]]
    assert chunks == [(True, b"ping"), (False, b"ping")]
    assert token_e2e_hub.RECORD.take()["p2apst"] == []
