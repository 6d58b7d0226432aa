"""The emulated modem through a real serial client on its pseudo-terminal."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from gateway import pdu
from meter_sim.modem_emulator import Faults, ModemEmulator, TimingProfile
from meter_sim.network import EchoEndpoint, NetworkSms, NetworkStatusReport, SmsNetwork
from tests.meter_sim.at_client import SerialAt

pytestmark = pytest.mark.timeout(20)
MODEM = "+6281200000001"
ECHO = "+6281299999999"


@asynccontextmanager
async def modem_and_client(**options: object) -> AsyncIterator[tuple[ModemEmulator, SerialAt]]:
    async with SmsNetwork() as network:
        EchoEndpoint(network, ECHO)
        async with ModemEmulator(network, MODEM, **options) as modem:  # type: ignore[arg-type]
            client = await asyncio.to_thread(SerialAt, modem.device_path)
            try:
                yield modem, client
            finally:
                client.close()


async def at(client: SerialAt, line: str) -> str:
    return await asyncio.to_thread(client.command, line)


async def test_full_dialogue_send_to_echo_and_read_the_reply() -> None:
    async with modem_and_client() as (modem, client):
        assert (await at(client, "AT")).endswith("\r\nOK\r\n")
        assert (await at(client, "ATZ")).startswith("ATZ\r")  # echo is on after reset
        assert await at(client, "ATE0") == "ATE0\r\r\nOK\r\n"
        assert await at(client, "AT+CMEE=1") == "\r\nOK\r\n"
        assert "+CPIN: READY" in await at(client, "AT+CPIN?")
        assert "+CREG: 0,1" in await at(client, "AT+CREG?")
        assert re.search(r"\+CSQ: \d+,\d+", await at(client, "AT+CSQ"))
        assert await at(client, "AT+CMGF=0") == "\r\nOK\r\n"
        assert await at(client, "AT+CMGF=1") == "\r\n+CMS ERROR: 303\r\n"
        assert '+CSCA: "+62811000000",145' in await at(client, "AT+CSCA?")
        assert "+CPMS: 0,30,0,30,0,30" in await at(client, 'AT+CPMS="SM","SM","SM"')
        assert "(0-2),(0-3)" in await at(client, "AT+CNMI=?")
        assert await at(client, "AT+CNMI=2,1,0,1,0") == "\r\nOK\r\n"
        assert "356938035643809" in await at(client, "AT+CGSN")

        [part] = pdu.encode_submit(ECHO, text="Token 1234-5678 [ok] €", status_report=True)
        answer = await asyncio.to_thread(client.send_pdu, part.tpdu_length, part.hex)
        reference = int(re.search(r"\+CMGS: (\d+)", answer).group(1))  # type: ignore[union-attr]
        assert answer.endswith("\r\nOK\r\n")

        # The status report and the echo's reply arrive in either order.
        lines: list[str] = []
        while not (any(line.startswith("+CMTI") for line in lines) and "+CDS" in "".join(lines)):
            raw = await asyncio.to_thread(client.read_until, b"\r\n")
            if raw.strip():
                lines.append(raw.strip().decode())
        assert '+CMTI: "SM",1' in lines
        cds = next(i for i, line in enumerate(lines) if line.startswith("+CDS: "))
        if cds + 1 == len(lines) or not re.fullmatch(r"[0-9A-F]+", lines[cds + 1]):
            lines.append((await asyncio.to_thread(client.read_until, b"\r\n")).strip().decode())
        report = pdu.decode(lines[cds + 1]).pdu
        assert isinstance(report, pdu.StatusReport)
        assert (report.recipient, report.message_reference, report.status) == (ECHO, reference, 0)
        assert int(lines[cds].split(": ")[1]) == len(lines[cds + 1]) // 2 - 1 - int(
            lines[cds + 1][:2], 16
        )

        listing = await at(client, "AT+CMGR=1")
        header, hex_text = listing.split("\r\n")[1:3]
        assert header.startswith("+CMGR: 0,,")
        decoded = pdu.decode(hex_text)
        assert decoded.smsc_part_assumed
        assert isinstance(decoded.pdu, pdu.Deliver)
        assert (decoded.pdu.sender, decoded.pdu.text) == (ECHO, "Token 1234-5678 [ok] €")
        assert int(header.rsplit(",", 1)[1]) == len(hex_text) // 2 - 1 - int(hex_text[:2], 16)
        assert "+CMGR: 1,," in await at(client, "AT+CMGR=1")  # now read
        assert await at(client, "AT+CMGD=1") == "\r\nOK\r\n"
        assert await at(client, "AT+CMGR=1") == "\r\n+CMS ERROR: 321\r\n"
        assert modem.storage.used == 0


async def test_cmgl_lists_and_text_mode_less_errors_without_cmee() -> None:
    async with modem_and_client() as (modem, client):
        await at(client, "ATE0")
        assert await at(client, "AT+CMGR=1") == "\r\nERROR\r\n"  # no CMEE: plain ERROR
        for text in ("satu", "dua"):
            sms = NetworkSms(0, ECHO, MODEM, text, None, None, modem.network.now())
            assert await modem.receive_sms(sms)
        listing = await at(client, "AT+CMGL=4")
        assert listing.count("+CMGL: ") == 2
        texts = [
            pdu.decode(line).pdu.text  # type: ignore[union-attr]
            for line in listing.split("\r\n")
            if re.fullmatch(r"[0-9A-F]{20,}", line)
        ]
        assert texts == ["satu", "dua"]
        assert "+CMGL: " not in await at(client, "AT+CMGL=0")  # all read now
        assert await at(client, "AT+CMGD=1,4") == "\r\nOK\r\n"
        assert modem.storage.used == 0
        assert await at(client, "AT+NOSUCH") == "\r\nERROR\r\n"


async def test_sim_full_stops_cmti_until_space_is_freed() -> None:
    async with modem_and_client(sim_slots=2) as (modem, client):
        await at(client, "ATE0;+CMEE=1;+CNMI=2,1,0,0,0")
        for n in range(3):
            accepted = await modem.receive_sms(
                NetworkSms(n, ECHO, MODEM, f"m{n}", None, None, modem.network.now())
            )
            assert accepted == (n < 2)
        await asyncio.to_thread(client.read_until, b'+CMTI: "SM",2\r\n')
        assert '+CPMS: "SM",2,2' in await at(client, "AT+CPMS?")
        [part] = pdu.encode_submit(ECHO, text="x")
        answer = await asyncio.to_thread(client.send_pdu, part.tpdu_length, part.hex)
        assert answer.endswith("\r\n+CMS ERROR: 322\r\n")
        await at(client, "AT+CMGD=1")
        assert await modem.receive_sms(
            NetworkSms(9, ECHO, MODEM, "m9", None, None, modem.network.now())
        )
        await asyncio.to_thread(client.read_until, b'+CMTI: "SM",1\r\n')


async def test_injected_send_errors_hang_reset_and_garbage() -> None:
    faults = Faults(send_error_rate=1.0, send_error_codes=(512,))
    async with modem_and_client(faults=faults) as (_, client):
        await at(client, "ATE0;+CMEE=1")
        [part] = pdu.encode_submit(ECHO, text="x")
        answer = await asyncio.to_thread(client.send_pdu, part.tpdu_length, part.hex)
        assert answer.endswith("\r\n+CMS ERROR: 512\r\n")
        faults.send_error_rate = 0.0
        bad = await asyncio.to_thread(client.send_pdu, part.tpdu_length + 1, part.hex)
        assert bad.endswith("\r\n+CMS ERROR: 304\r\n")  # <length> does not match the PDU

        faults.hung = True
        client.port.write(b"AT\r")
        client.port.timeout = 0.3
        assert await asyncio.to_thread(client.port.read, 10) == b""  # no answer while hung
        client.port.timeout = 5
        assert (await at(client, "AT+CFUN=1,1")).endswith("\r\nOK\r\n")
        assert (await at(client, "AT")).startswith("AT\r")  # reset brought echo back

        faults.garbage_rate = 1.0
        raw = await at(client, "AT")
        assert any(ord(char) >= 0x80 for char in raw)


async def test_realistic_send_waits_through_the_injected_sleep() -> None:
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    async with modem_and_client(timing=TimingProfile.REALISTIC, sleep=sleep) as (_, client):
        await at(client, "ATE0")
        [part] = pdu.encode_submit(ECHO, text="x")
        assert "+CMGS: 1" in await asyncio.to_thread(client.send_pdu, part.tpdu_length, part.hex)
    assert len(waited) == 1
    assert 5.0 <= waited[0] <= 10.0


async def test_status_report_stored_with_cdsi() -> None:
    async with modem_and_client() as (modem, client):
        await at(client, "ATE0;+CNMI=2,1,0,2,0")
        now = modem.network.now()
        await modem.receive_status_report(NetworkStatusReport(ECHO, 9, 0, now, now))
        await asyncio.to_thread(client.read_until, b'+CDSI: "SM",1\r\n')
        hex_text = (await at(client, "AT+CMGR=1")).split("\r\n")[2]
        report = pdu.decode(hex_text).pdu
        assert isinstance(report, pdu.StatusReport)
        assert report.message_reference == 9


async def test_closed_port_is_seen_by_the_client() -> None:
    async with modem_and_client() as (modem, client):
        await at(client, "AT")
        modem.close_port()
        with pytest.raises((OSError, TimeoutError)):
            await at(client, "AT")
