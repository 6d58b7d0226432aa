"""A switcher's dialect file is the one the live link speaks: the hub passes it to its
P2APST client, the link encodes and decodes with it, and the message readers take their
bit 48 layouts from it."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from operator_data.hub.service import client_settings
from operator_data.settings import P2apstSettings, Settings
from p2apst_adapter import dialect, messages
from p2apst_adapter.client.link import Link
from p2apst_adapter.dialect import Deframer, Framing, IsoError, IsoMessage, frame, load_dialect
from p2apst_adapter.model import PurchaseRequest


def _file(tmp_path: Path, old: str, new: str) -> Path:
    text = dialect.default_dialect_text()
    assert text.count(old) == 1, old
    path = tmp_path / "switcher.toml"
    path.write_text(text.replace(old, new))
    return path


def test_the_hub_gives_its_client_the_dialect_file(tmp_path: Path) -> None:
    path = _file(tmp_path, 'name = "pln-default"', 'name = "st145"')
    settings = Settings(p2apst=P2apstSettings(host="127.0.0.1", dialect_file=path))
    assert client_settings(settings).dialect.name == "st145"
    assert client_settings(Settings()).dialect is dialect.P2APST


async def test_the_link_speaks_the_switchers_field_table(tmp_path: Path) -> None:
    # This switcher sends letters in bit 33, which the shipped table has as digits.
    wide = load_dialect(_file(tmp_path, 'bit = 33\nkind = "n"', 'bit = 33\nkind = "ans"'))
    request = IsoMessage(
        "2800", {11: "000000000001", 12: "20261204090000", 33: "ST145S3", 70: "001"}
    )

    async def switcher(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        deframer = Deframer(Framing.LENGTH_PREFIX)
        while True:
            chunk = await reader.read(4096)
            if not chunk:
                return
            for raw in deframer.feed(chunk):
                asked = dialect.decode(raw, wide)
                answer = messages.response(asked, "0000")
                writer.write(frame(dialect.encode(answer, wide), Framing.LENGTH_PREFIX))
                await writer.drain()

    server = await asyncio.start_server(switcher, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        link = await Link.open("127.0.0.1", port, Framing.LENGTH_PREFIX, 5.0, dialect=wide)
        try:
            answer = await link.request(request, 5.0)
        finally:
            await link.close()
    assert answer.fields[33] == "ST145S3" and answer.response_code == "0000"
    with pytest.raises(IsoError):
        dialect.encode(request)  # the shipped table refuses what this switcher sends


def test_the_readers_take_bit_48_from_the_dialect(tmp_path: Path) -> None:
    # A switcher whose vending receipt number is 10 characters, not 8.
    longer = load_dialect(
        _file(
            tmp_path,
            '{ name = "vending_receipt", width = 8, kind = "text" }',
            '{ name = "vending_receipt", width = 10, kind = "text" }',
        )
    )
    request = PurchaseRequest(
        meter_number="14012345678",
        customer_id="512345678901",
        amount=Decimal("100000"),
        switcher_reference="0BMS210Z8F7C9D2E4A6B1C3D5E7F9A1B",
    )
    layout = longer.layout("purchase response")
    values = {sub.name: _sample(sub.name, sub.width, sub.kind.value) for sub in layout.fields}
    values["switcher_reference"] = request.switcher_reference
    values["vending_receipt"] = "VR12345678"
    values["token"] = "12345678901234567890"
    bit48 = layout.encode(values)
    answer = IsoMessage("2210", {11: "000000000002", 39: "0000", 48: bit48})
    result = messages.read_purchase_response(answer, request, via_advice=False, dialect=longer)
    assert result.token == "12345678901234567890"
    assert result.vending_receipt == "VR12345678"
    with pytest.raises(IsoError):  # the shipped layout cannot read this switcher's bit 48
        messages.read_purchase_response(answer, request, via_advice=False)


def _sample(name: str, width: int, kind: str) -> object:
    if kind in ("money", "number"):
        return Decimal(1) if kind == "money" else 1
    if kind == "digits":
        return "1" * width
    return name[:width]
