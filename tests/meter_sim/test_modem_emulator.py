"""The emulated modem through a real serial client on its pseudo-terminal."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from gateway import pdu
from meter_sim.modem_emulator import Faults, ModemEmulator, Stat, TimingProfile
from meter_sim.network import EchoEndpoint, NetworkSms, NetworkStatusReport, SmsNetwork
from tests.meter_sim.at_client import ESCAPE, SerialAt

pytestmark = pytest.mark.timeout(20)
MODEM = "+6281200000001"
ECHO = "+6281299999999"


class ArrivalsEcho(EchoEndpoint):
    """The echo, also queueing what reaches it: a test awaits an arrival instead of polling."""

    def __init__(self, network: SmsNetwork, msisdn: str) -> None:
        super().__init__(network, msisdn)
        self.arrivals: asyncio.Queue[NetworkSms] = asyncio.Queue()

    async def receive_sms(self, sms: NetworkSms) -> bool:
        self.arrivals.put_nowait(sms)
        return await super().receive_sms(sms)


@asynccontextmanager
async def modem_echo_and_client(
    **options: object,
) -> AsyncIterator[tuple[ModemEmulator, ArrivalsEcho, SerialAt]]:
    async with SmsNetwork() as network:
        echo = ArrivalsEcho(network, ECHO)
        async with ModemEmulator(network, MODEM, **options) as modem:  # type: ignore[arg-type]
            client = await asyncio.to_thread(SerialAt, modem.device_path)
            try:
                yield modem, echo, client
            finally:
                client.close()


@asynccontextmanager
async def modem_and_client(**options: object) -> AsyncIterator[tuple[ModemEmulator, SerialAt]]:
    async with modem_echo_and_client(**options) as (modem, _, client):
        yield modem, client


async def at(client: SerialAt, line: str) -> str:
    return await asyncio.to_thread(client.command, line)


async def store(client: SerialAt, part: pdu.SubmitPart, stat: int | None = None) -> str:
    """`AT+CMGW=<length>[,<stat>]` with the PDU after the prompt."""
    line = f"AT+CMGW={part.tpdu_length}" + ("" if stat is None else f",{stat}")
    return await asyncio.to_thread(client.command_with_body, line, part.hex)


async def stored(client: SerialAt, index: int) -> tuple[int, int, str]:
    """`AT+CMGR=<index>` as (stat, length, PDU hex)."""
    answer = await at(client, f"AT+CMGR={index}")
    match = re.fullmatch(r"\r\n\+CMGR: (\d),,(\d+)\r\n([0-9A-F]+)\r\n\r\nOK\r\n", answer)
    assert match is not None, answer
    return int(match.group(1)), int(match.group(2)), match.group(3)


async def listing(client: SerialAt, stat: int) -> list[tuple[int, int, str]]:
    """`AT+CMGL=<stat>` as (index, stat, PDU hex) per message."""
    answer = await at(client, f"AT+CMGL={stat}")
    assert answer.endswith("\r\nOK\r\n"), answer
    found = re.findall(r"\+CMGL: (\d+),(\d),,\d+\r\n([0-9A-F]+)\r\n", answer)
    return [(int(index), int(stat), hex_text) for index, stat, hex_text in found]


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


async def test_cmgw_stores_unsent_and_cmss_sends_it_marking_it_sent() -> None:
    async with modem_echo_and_client() as (modem, echo, client):
        await at(client, "ATE0;+CMEE=1")
        assert await at(client, "AT+CMGW=?") == "\r\nOK\r\n"
        assert await at(client, "AT+CMSS=?") == "\r\nOK\r\n"
        [part] = pdu.encode_submit(ECHO, text="simpan dulu")
        assert await store(client, part) == "\r\n+CMGW: 1\r\n\r\nOK\r\n"
        assert await stored(client, 1) == (2, part.tpdu_length, part.hex)
        assert await listing(client, 2) == [(1, 2, part.hex)]
        assert await listing(client, 3) == []
        assert echo.received == []  # stored, not sent

        assert await at(client, "AT+CMSS=1") == "\r\n+CMSS: 1\r\n\r\nOK\r\n"
        arrived = await echo.arrivals.get()
        assert (arrived.sender, arrived.text) == (MODEM, "simpan dulu")
        assert await stored(client, 1) == (3, part.tpdu_length, part.hex)
        assert await listing(client, 3) == [(1, 3, part.hex)]
        assert await listing(client, 2) == []
        assert (1, 3, part.hex) in await listing(client, 4)

        # AT+CMGS and AT+CMSS count the same message references.
        assert "+CMGS: 2" in await asyncio.to_thread(client.send_pdu, part.tpdu_length, part.hex)
        assert modem.storage.get(1) is not None


async def test_cmss_to_another_recipient_and_cmgw_as_sent() -> None:
    async with modem_echo_and_client() as (_, echo, client):
        await at(client, "ATE0;+CMEE=1")
        [part] = pdu.encode_submit("+6281277777777", text="salah alamat")  # nobody there
        assert "+CMGW: 1" in await store(client, part, stat=3)
        assert (await stored(client, 1))[0] == 3
        # National, and international without the "+" (<toda> 145): both reach the echo.
        for line in ('AT+CMSS=1,"081299999999",129', 'AT+CMSS=1,"6281299999999",145'):
            assert (await at(client, line)).endswith("\r\nOK\r\n")
            arrived = await echo.arrivals.get()
            assert (arrived.recipient, arrived.text) == (ECHO, "salah alamat")


async def test_cmss_leaves_stat_unsent_on_a_modem_that_does_not_mark_it() -> None:
    async with modem_echo_and_client(faults=Faults(marks_sent=False)) as (_, echo, client):
        await at(client, "ATE0;+CMEE=1")
        [part] = pdu.encode_submit(ECHO, text="x")
        await store(client, part)
        assert "+CMSS: 1" in await at(client, "AT+CMSS=1")
        assert (await echo.arrivals.get()).text == "x"
        assert (await stored(client, 1))[0] == 2


async def test_cmss_and_cmgw_errors() -> None:
    async with modem_and_client() as (modem, client):
        await at(client, "ATE0;+CMEE=1")
        assert await at(client, "AT+CMSS=1") == "\r\n+CMS ERROR: 321\r\n"  # empty
        assert await at(client, "AT+CMSS=31") == "\r\n+CMS ERROR: 321\r\n"  # no such slot
        assert await at(client, "AT+CMSS=x") == "\r\n+CMS ERROR: 321\r\n"
        sms = NetworkSms(0, ECHO, MODEM, "masuk", None, None, modem.network.now())
        assert await modem.receive_sms(sms)
        assert await at(client, "AT+CMSS=1") == "\r\n+CMS ERROR: 302\r\n"  # a DELIVER
        assert (await stored(client, 1))[0] == 0  # untouched: still received, unread

        [part] = pdu.encode_submit(ECHO, text="x")
        for stat in (0, 1, 4):  # a SUBMIT is stored, never received; refused before the prompt
            line = f"AT+CMGW={part.tpdu_length},{stat}"
            assert await at(client, line) == "\r\n+CMS ERROR: 304\r\n"
        deliver = (await stored(client, 1))[2]
        answer = await asyncio.to_thread(
            client.command_with_body, f"AT+CMGW={_tpdu_length(deliver)}", deliver
        )
        assert answer == "\r\n+CMS ERROR: 304\r\n"
        bad = await asyncio.to_thread(
            client.command_with_body, f"AT+CMGW={part.tpdu_length + 1}", part.hex
        )
        assert bad == "\r\n+CMS ERROR: 304\r\n"  # <length> does not match the PDU
        cancelled = await asyncio.to_thread(
            client.command_with_body, f"AT+CMGW={part.tpdu_length}", part.hex, end=ESCAPE
        )
        assert cancelled == "\r\nOK\r\n"
        assert [index for index, _, _ in await listing(client, 4)] == [1]
        assert modem.storage.used == 1


async def test_cmgw_on_a_full_sim() -> None:
    async with modem_and_client(sim_slots=2) as (modem, client):
        await at(client, "ATE0;+CMEE=1")
        [part] = pdu.encode_submit(ECHO, text="x")
        assert "+CMGW: 1" in await store(client, part)
        assert "+CMGW: 2" in await store(client, part)
        assert await store(client, part) == "\r\n+CMS ERROR: 322\r\n"
        assert await at(client, "AT+CMGD=1") == "\r\nOK\r\n"
        assert "+CMGW: 1" in await store(client, part)
        assert modem.storage.used == 2


async def test_cmss_send_error_leaves_stat_unsent() -> None:
    faults = Faults(send_error_rate=1.0, send_error_codes=(38,))
    async with modem_echo_and_client(faults=faults) as (_, echo, client):
        await at(client, "ATE0;+CMEE=1")
        [part] = pdu.encode_submit(ECHO, text="x")
        assert "+CMGW: 1" in await store(client, part)  # storing is not sending: no error
        assert await at(client, "AT+CMSS=1") == "\r\n+CMS ERROR: 38\r\n"
        assert (await stored(client, 1))[0] == 2
        faults.send_error_rate = 0.0
        assert "+CMSS: 1" in await at(client, "AT+CMSS=1")  # the failed try used no reference
        assert (await echo.arrivals.get()).text == "x"
        assert len(echo.received) == 1  # the failed try never reached the network
        assert (await stored(client, 1))[0] == 3


async def test_cmgd_flags_delete_stored_outgoing_messages_by_stat() -> None:
    async with modem_and_client() as (modem, client):
        await at(client, "ATE0;+CMEE=1")
        [part] = pdu.encode_submit(ECHO, text="x")
        await store(client, part)  # 1: unsent
        await store(client, part, stat=3)  # 2: sent
        for n in range(2):  # 3: read, 4: unread
            sms = NetworkSms(n, ECHO, MODEM, f"m{n}", None, None, modem.network.now())
            assert await modem.receive_sms(sms)
        await stored(client, 3)

        def left() -> list[tuple[int, Stat]]:  # not by AT+CMGL, which would mark 4 read
            return [(index, message.stat) for index, message in modem.storage.listing(Stat.ALL)]

        assert left() == [(1, 2), (2, 3), (3, 1), (4, 0)]
        assert await at(client, "AT+CMGD=1,2") == "\r\nOK\r\n"  # read and sent
        assert left() == [(1, 2), (4, 0)]
        assert await at(client, "AT+CMGD=1,3") == "\r\nOK\r\n"  # read, sent and unsent
        assert left() == [(4, 0)]


async def test_modem_hangs_after_cmss_has_sent_and_the_sim_tells() -> None:
    faults = Faults(hang_after_next_send=True)
    async with modem_echo_and_client(faults=faults) as (modem, echo, client):
        await at(client, "ATE0;+CMEE=1;+CNMI=2,1,0,0,0")
        [part] = pdu.encode_submit(ECHO, text="lalu mati")
        assert "+CMGW: 1" in await store(client, part)  # storing is not a send: no hang
        await asyncio.to_thread(client.port.write, b"AT+CMSS=1\r")
        assert (await echo.arrivals.get()).text == "lalu mati"
        assert (faults.hung, faults.hang_after_next_send) == (True, False)
        # A hung modem also keeps its +CMTI to itself.
        sms = NetworkSms(0, ECHO, MODEM, "masuk", None, None, modem.network.now())
        assert await modem.receive_sms(sms)
        assert await asyncio.to_thread(client.read_within, 0.3) == b""  # no +CMSS, no OK
        assert (await at(client, "AT+CFUN=1,1")).endswith("\r\nOK\r\n")
        await at(client, "ATE0")
        assert await stored(client, 1) == (3, part.tpdu_length, part.hex)
        assert await at(client, "AT") == "\r\nOK\r\n"  # no hang on the next command


async def test_modem_hangs_after_cmgs_has_sent() -> None:
    faults = Faults(hang_after_next_send=True)
    async with modem_echo_and_client(faults=faults) as (_, echo, client):
        await at(client, "ATE0;+CMEE=1")
        [part] = pdu.encode_submit(ECHO, text="terkirim")
        await asyncio.to_thread(client.write_with_body, f"AT+CMGS={part.tpdu_length}", part.hex)
        assert (await echo.arrivals.get()).text == "terkirim"
        assert (faults.hung, faults.hang_after_next_send) == (True, False)
        assert await asyncio.to_thread(client.read_within, 0.3) == b""
        assert (await at(client, "AT+CFUN=1,1")).endswith("\r\nOK\r\n")
        await at(client, "ATE0")
        answer = await asyncio.to_thread(client.send_pdu, part.tpdu_length, part.hex)
        assert answer == "\r\n+CMGS: 2\r\n\r\nOK\r\n"  # the lost answer's was 1


async def test_status_report_for_a_cmss_carries_its_message_reference() -> None:
    async with modem_and_client() as (_, client):
        await at(client, "ATE0;+CMEE=1;+CNMI=2,0,0,1,0")
        [plain] = pdu.encode_submit(ECHO, text="pertama")
        assert "+CMGS: 1" in await asyncio.to_thread(client.send_pdu, plain.tpdu_length, plain.hex)
        [part] = pdu.encode_submit(ECHO, text="dengan laporan", status_report=True)
        stored_at = await store(client, part)
        index = int(re.search(r"\+CMGW: (\d+)", stored_at).group(1))  # type: ignore[union-attr]
        answer = await at(client, f"AT+CMSS={index}")
        reference = int(re.search(r"\+CMSS: (\d+)", answer).group(1))  # type: ignore[union-attr]
        assert reference == 2
        await asyncio.to_thread(client.read_until, b"+CDS: ")
        await asyncio.to_thread(client.read_until, b"\r\n")
        hex_text = (await asyncio.to_thread(client.read_until, b"\r\n")).strip().decode()
        report = pdu.decode(hex_text).pdu
        assert isinstance(report, pdu.StatusReport)
        assert (report.recipient, report.message_reference, report.status) == (ECHO, 2, 0)


def _tpdu_length(hex_text: str) -> int:
    return len(hex_text) // 2 - 1 - int(hex_text[:2], 16)


async def test_kannel_at2s_start_up_commands_are_answered_as_a_real_modem_does() -> None:
    """Kannel's at2 driver stalls at start-up on an ERROR to these: AT+CSMS is mandatory
    in 3GPP TS 27.005 §3.2.1, AT+IFC is V.250 flow control (answers as a Wavecom/Quectel
    gives them)."""
    async with modem_and_client() as (_, client):
        assert (await at(client, "ATE0")).endswith("OK\r\n")
        assert await at(client, "AT+CSMS=?") == "\r\n+CSMS: (0,1)\r\n\r\nOK\r\n"
        assert await at(client, "AT+CSMS?") == "\r\n+CSMS: 0,1,1,1\r\n\r\nOK\r\n"
        assert await at(client, "AT+CSMS=1") == "\r\n+CSMS: 1,1,1\r\n\r\nOK\r\n"
        assert await at(client, "AT+CSMS?") == "\r\n+CSMS: 1,1,1,1\r\n\r\nOK\r\n"
        assert await at(client, "AT+IFC=2,2") == "\r\nOK\r\n"
        assert await at(client, "AT+IFC?") == "\r\n+IFC: 2,2\r\n\r\nOK\r\n"
        assert await at(client, "AT+IFC=0,0") == "\r\nOK\r\n"
        assert await at(client, "AT+IFC?") == "\r\n+IFC: 0,0\r\n\r\nOK\r\n"
        assert await at(client, "AT+IFC=?") == "\r\n+IFC: (0-3),(0-2)\r\n\r\nOK\r\n"
        assert "ERROR" in await at(client, "AT+IFC=9,9")
        assert "ERROR" in await at(client, "AT+CSMS=7")
