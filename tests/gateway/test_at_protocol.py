"""Command/response correlation over a real pty: echo, URCs in between, errors, timeouts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest

from gateway.at.errors import CommandTimeout, ModemHung, NetworkError, StorageFullError
from gateway.at.port import AtPort
from gateway.at.protocol import Urc
from tests.gateway.at_device import PROMPT, AtDevice

pytestmark = pytest.mark.timeout(10)
T = 2.0  # generous: only reached when something is broken


@pytest.fixture
async def device() -> AsyncIterator[AtDevice]:
    async with AtDevice() as device:
        yield device


@pytest.fixture
async def port(device: AtDevice) -> AsyncIterator[AtPort]:
    async with AtPort(device.path, name="test") as port:
        yield port


async def test_echo_is_dropped_and_response_collected(device: AtDevice, port: AtPort) -> None:
    assert device.echo
    response = await port.protocol.command("AT+CSQ", time_limit=T, expect=["+CSQ:"])
    assert response.lines == ("+CSQ: 21,99",)
    assert response.final == "OK"
    assert device.commands == ["AT+CSQ"]


async def test_urc_between_command_and_answer_is_routed(device: AtDevice, port: AtPort) -> None:
    device.on(
        r"AT\+CSQ",
        ['+CMTI: "SM",3', "+CSQ: 20,99", "RING", "+CMT: ,23", "07911326040000F0", "OK"],
    )
    seen: list[Urc] = []
    port.protocol.subscribe(seen.append)
    response = await port.protocol.command("AT+CSQ", time_limit=T, expect=["+CSQ:"])
    assert response.lines == ("+CSQ: 20,99",)
    assert seen == [
        Urc("+CMTI", '+CMTI: "SM",3'),
        Urc("RING", "RING"),
        Urc("+CMT", "+CMT: ,23", "07911326040000F0"),
    ]
    assert seen[0].args == '"SM",3'


async def test_creg_urc_during_creg_query_is_not_the_answer(device: AtDevice, port: AtPort) -> None:
    device.on(r"AT\+CREG\?", ["+CREG: 5", "+CREG: 0,5", "OK"])
    seen: list[Urc] = []
    port.protocol.subscribe(seen.append)
    response = await port.protocol.command(
        "AT+CREG?", time_limit=T, expect=[re.compile(r"\+CREG: \d,\d")]
    )
    assert response.lines == ("+CREG: 0,5",)
    assert seen == [Urc("+CREG", "+CREG: 5")]


async def test_unsolicited_lines_while_idle(device: AtDevice, port: AtPort) -> None:
    queue: asyncio.Queue[Urc] = asyncio.Queue()
    port.protocol.subscribe(queue.put_nowait)
    device.emit(b"\xff\x00garbage\r\n")
    device.unsolicited("^RSSI: 17", "+CDS: 25", "0791AABB", '+CDSI: "SM",2')
    got = [await asyncio.wait_for(queue.get(), T) for _ in range(4)]
    assert got == [
        Urc("", "\xffgarbage"),
        Urc("^RSSI", "^RSSI: 17"),
        Urc("+CDS", "+CDS: 25", "0791AABB"),
        Urc("+CDSI", '+CDSI: "SM",2'),
    ]


async def test_command_with_prompt_writes_pdu_and_ctrl_z(device: AtDevice, port: AtPort) -> None:
    response = await port.protocol.command_with_prompt(
        "AT+CMGS=5", "0001000A81", prompt_time_limit=T, time_limit=T, expect=["+CMGS:"]
    )
    assert response.first("+CMGS:") == "0"
    assert device.commands == ["AT+CMGS=5", "0001000A81\x1a"]


async def test_error_instead_of_prompt(device: AtDevice, port: AtPort) -> None:
    device.on(r"AT\+CMGS=\d+", ["+CMS ERROR: 331"])
    with pytest.raises(NetworkError) as caught:
        await port.protocol.command_with_prompt(
            "AT+CMGS=5", "0001000A81", prompt_time_limit=T, time_limit=T
        )
    assert caught.value.code == 331
    assert device.commands == ["AT+CMGS=5"]


async def test_typed_error_from_final_result(device: AtDevice, port: AtPort) -> None:
    device.on(r"AT\+CMGW", ["+CMS ERROR: 322"])
    with pytest.raises(StorageFullError):
        await port.protocol.command("AT+CMGW", time_limit=T)
    # The line is still usable afterwards.
    assert (await port.protocol.command("AT", time_limit=T)).final == "OK"


async def test_timeout_marks_hung_until_forced(device: AtDevice, port: AtPort) -> None:
    device.hang()
    with pytest.raises(CommandTimeout):
        await port.protocol.command("AT", time_limit=0.2)
    assert port.protocol.hung
    with pytest.raises(ModemHung):
        await port.protocol.command("AT", time_limit=T)
    device.unhang()
    assert (await port.protocol.command("AT", time_limit=T, force=True)).final == "OK"


async def test_prompt_timeout_abandons_the_pdu(device: AtDevice, port: AtPort) -> None:
    device.on(r"AT\+CMGS=\d+", [])
    with pytest.raises(CommandTimeout, match="prompt"):
        await port.protocol.command_with_prompt(
            "AT+CMGS=5", "00", prompt_time_limit=0.2, time_limit=T
        )
    await device.wait_for("\x1b")
    assert device.commands == ["AT+CMGS=5", "\x1b"]


async def test_commands_are_serialised(device: AtDevice, port: AtPort) -> None:
    device.on(r"AT\+CGMI", ["Huawei", "OK"])
    results = await asyncio.gather(
        port.protocol.command("AT+CGMI", time_limit=T),
        port.protocol.command("AT+CSQ", time_limit=T, expect=["+CSQ:"]),
        port.protocol.command("AT+CGMI", time_limit=T),
    )
    assert [r.lines for r in results] == [("Huawei",), ("+CSQ: 21,99",), ("Huawei",)]
    assert device.commands == ["AT+CGMI", "AT+CSQ", "AT+CGMI"]


async def test_prompt_then_echoed_body_with_echo_on(device: AtDevice, port: AtPort) -> None:
    device.on(r"AT\+CMGS=\d+", ["RING", PROMPT])
    response = await port.protocol.command_with_prompt(
        "AT+CMGS=1", "00AA", prompt_time_limit=T, time_limit=T, expect=["+CMGS:"]
    )
    assert response.lines == ("+CMGS: 0",)
