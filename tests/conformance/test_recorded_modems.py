"""Our AT driver against real modems' answers, recorded by users of another modem library
(python-gsmmodem-new 0.13.0's tests; tests/conformance/recordings/, LGPL-3.0-or-later).

Each model's recorded answers override a well-behaved scripted modem (tests/gateway/at_device)
on a real pty; what the recording does not cover answers as a conformant modem would. Each
model must start, send by AT+CMGS and by AT+CMGW + AT+CMSS, and receive."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.at.events import (
    InboundPersisted,
    ModemState,
    ModemStateChanged,
    StatusReportReceived,
)
from gateway.at.responses import parse_cpms_test
from gateway.pdu import Deliver, encode_submit
from tests.gateway.at_device import AtDevice, ReplyItem
from tests.gateway.test_at_modem import SENDER, WAIT, Harness, deliver_pdu

pytestmark = pytest.mark.timeout(30)

RECORDINGS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "recordings" / "python-gsmmodem-new.json").read_text()
)
MODELS = sorted(RECORDINGS["models"])
DIALOGUES: dict[str, Any] = RECORDINGS["dialogues"]
# A Wavecom never ends AT+CPIN? with OK: each start waits out one command time limit.
FAST: dict[str, object] = {"command_timeout": 1.0}
SIM_BUSY_ANSWERS = 3  # python-gsmmodem-new's own tests make a busy SIM refuse three times


def replay(device: AtDevice, model: str) -> None:
    recorded = RECORDINGS["models"][model]
    for command, lines in recorded["responses"].items():
        device.on(re.escape(command), list(lines))
    listed = recorded["responses"].get("AT+CPMS=?", [""])[0]
    if listed.startswith("+CPMS:") and len(parse_cpms_test(listed.removeprefix("+CPMS:"))) == 2:
        # AT+CPMS=? lists two memories: such a modem refuses any three-memory form (the
        # recording has the Wavecom refusing "SM","SM","SR" and taking "SM","SM").
        device.on(r'AT\+CPMS="\w+","\w+","\w+"', ["ERROR"])
    for command in recorded["sim_busy_commands"]:
        busy = [0]

        def answer(
            match: re.Match[str], device: AtDevice, busy: list[int] = busy
        ) -> list[ReplyItem]:
            busy[0] += 1
            if busy[0] <= SIM_BUSY_ANSWERS:
                return ["+CME ERROR: 14"]
            return ['+CSCA: "+6281100000",145', "OK"]

        device.on(re.escape(command), answer)


async def ready(harness: Harness) -> None:
    await harness.next(ModemStateChanged, lambda event: event.state is ModemState.READY)


@pytest.fixture(params=MODELS)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async with AtDevice() as device:
        replay(device, request.param)
        yield Harness(device)


async def test_recording_covers_the_models_and_names_its_licence() -> None:
    assert set(MODELS) >= {"WavecomMultiband900E1800", "QualcommM6280", "NokiaN79"}
    assert "LGPL" in RECORDINGS["licence"]
    assert (Path(__file__).parent / "recordings" / "COPYING-python-gsmmodem-new").is_file()


async def test_starts_up(harness: Harness) -> None:
    async with harness.modem(**FAST) as modem:
        await ready(harness)
        assert modem.state is ModemState.READY
        assert modem.info is not None and modem.info.smsc is not None


async def test_sends_by_cmgs_and_by_cmgw_cmss(harness: Harness) -> None:
    (part,) = encode_submit(SENDER, text="Token 1234 5678 9012 3456 7890")
    async with harness.modem(**FAST) as modem:
        await ready(harness)
        assert await modem.send_pdu(part) == 0
        index = await modem.store_pdu(part)
        assert await modem.send_stored(index) == 1
    assert harness.device.sent_pdus == [part.hex, part.hex]


async def test_zte_send_with_unsolicited_lines_around_the_prompt(harness: Harness) -> None:
    dialogue = DIALOGUES["zte_cmgs_with_urcs"]
    device = harness.device
    device.on(r"AT\+CMGS=\d+", [*dialogue["after_command"][:-1], b"\r\n> "])

    def sent(match: re.Match[str], device: AtDevice) -> list[ReplyItem]:
        reference = device.transmit(match.group(1))
        return [line.format(ref=reference) for line in dialogue["after_body"]]

    device.on(r"([0-9A-F]+)\x1a", sent)
    (part,) = encode_submit(SENDER, text="halo")
    async with harness.modem(**FAST) as modem:
        await ready(harness)
        assert await modem.send_pdu(part) == 0
    assert device.sent_pdus == [part.hex]


async def test_receives_announced_and_swept_messages(harness: Harness) -> None:
    device = harness.device
    async with harness.modem(storage_poll_interval=0.05, **FAST) as modem:
        await ready(harness)
        device.store(deliver_pdu("SALDO 14123456789"))
        if modem.info is not None and modem.info.cnmi is not None:
            device.unsolicited('+CMTI: "SM",1')
        # Without AT+CNMI (the Nokia) only the storage sweep finds it.
        persisted = await harness.next(InboundPersisted)
    assert isinstance(persisted.sms.decoded, Deliver)
    assert persisted.sms.decoded.text == "SALDO 14123456789"
    assert device.storage == {}


@pytest.mark.parametrize("name", ["cmgr_deliver", "cmgr_zte_broken", "cmgr_issue_15"])
async def test_recorded_cmgr_answers_are_taken_and_deleted(harness: Harness, name: str) -> None:
    reply = DIALOGUES[name]["reply"]
    device = harness.device
    async with harness.modem(**FAST) as modem:
        await ready(harness)
        index = device.store(reply[1])
        device.on(rf"AT\+CMGR={index}", list(reply))
        modem.request_sweep() if modem.info and modem.info.cnmi is None else device.unsolicited(
            f'+CMTI: "SM",{index}'
        )
        await asyncio.wait_for(device.wait_for(rf"AT\+CMGD={index}"), WAIT)
    kept = [e for e in harness.seen if isinstance(e, InboundPersisted | StatusReportReceived)]
    assert kept or harness.store.items, f"{name}: neither persisted nor reported"
    assert device.storage == {}
