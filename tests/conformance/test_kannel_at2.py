"""Kannel's at2 driver (modem software nobody here wrote) drives our GSM modem emulator over
its pty: it identifies and initialises the modem, sends what smsbox's sendsms interface is
given with AT+CMGS (a PDU the emulator takes and the network delivers), turns the
emulator's +CDS status report into a DLR at the dlr-url, and passes an SMS the modem
receives (+CMT) to the sms-service, whose answer goes back out through the modem."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.pdu import Concat, Encoding
from meter_sim.modem_emulator import ModemEmulator
from meter_sim.network import EchoEndpoint, NetworkSms, NetworkStatusReport, SmsNetwork
from tests.conformance.kannel import DEADLINE, SMSC_ID, Kannel, WebApp, at_config, running, web_app

pytestmark = pytest.mark.timeout(60)

MODEM = "+6281200000001"  # the SIM in the emulated modem Kannel drives
PHONE = "+6281299999999"  # a customer's phone on the simulated network


class _Phone:
    """A handset on the simulated network: keeps what it receives."""

    def __init__(self, network: SmsNetwork, msisdn: str) -> None:
        self.received: list[NetworkSms] = []
        self._arrived = asyncio.Condition()
        network.attach(msisdn, self)

    async def receive_sms(self, sms: NetworkSms) -> bool:
        async with self._arrived:
            self.received.append(sms)
            self._arrived.notify_all()
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        return None

    async def wait_for(self, count: int) -> list[NetworkSms]:
        try:
            async with asyncio.timeout(DEADLINE), self._arrived:
                await self._arrived.wait_for(lambda: len(self.received) >= count)
        except TimeoutError:
            pytest.fail(f"the phone got {self.received}, not {count} SMS, within {DEADLINE} s")
        return self.received


class _ListeningModem(ModemEmulator):
    """The emulator, plus the command lines it was given (to see how Kannel sent)."""

    def __init__(self, network: SmsNetwork, msisdn: str) -> None:
        super().__init__(network, msisdn)
        self.commands: list[str] = []

    async def _execute(self, body: str) -> None:
        self.commands.append("AT" + body)
        await super()._execute(body)


@dataclass(frozen=True, slots=True)
class Setup:
    network: SmsNetwork
    modem: _ListeningModem
    phone: _Phone
    web: WebApp
    kannel: Kannel
    sim_buffering: bool


@pytest.fixture
async def setup(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Setup]:
    # `modemtype = auto` costs at2 ~4 s of its own sleeps while it probes; one test does it
    modemtype, sim_buffering = getattr(request, "param", ("pintar", False))
    async with (
        SmsNetwork() as network,
        _ListeningModem(network, MODEM) as modem,
        web_app(reply="Terima kasih") as web,
    ):
        phone = _Phone(network, PHONE)
        config = at_config(
            tmp_path,
            device=modem.device_path,
            my_number=MODEM,
            web_port=web.port,
            modemtype=modemtype,
            sim_buffering=sim_buffering,
        )
        async with running(config) as kannel:
            await kannel.wait_for_status(lambda page: "(online" in page, "modem online")
            yield Setup(network, modem, phone, web, kannel, sim_buffering)


@pytest.mark.parametrize("setup", [("auto", False)], ids=["modemtype=auto"], indirect=True)
async def test_at2_identifies_and_initialises_the_emulator(setup: Setup) -> None:
    log = (setup.kannel.directory / "bearerbox.log").read_text("utf-8", "replace")
    assert "using modem definition <Pintar emulated modem>" in log
    assert "Phase 2+ is supported" in log  # AT+CSMS=? answered
    commands = [c.upper() for c in setup.modem.commands]
    for mandatory in ("ATI", "AT+CSMS=?", "AT+IFC=2,2", "AT+CPIN?", "AT+CMGF=0"):
        assert mandatory in commands
    assert any(c.startswith("AT+CNMI=") for c in commands)


async def test_sendsms_goes_out_with_cmgs_and_the_status_report_reaches_the_dlr_url(
    setup: Setup,
) -> None:
    kannel, web, phone, modem = setup.kannel, setup.web, setup.phone, setup.modem
    text = "Token 1234-5678-9012-3456-7890"
    answer = await kannel.sendsms(
        to=PHONE,
        text=text,
        **{
            "from": MODEM,
            "dlr-mask": "3",  # delivered | failed: the final state only
            "dlr-url": f"http://127.0.0.1:{web.port}/dlr?type=%d&to=%p&smsc=%i",
        },
    )
    assert answer.status_code == 202, answer.text

    [sms] = await phone.wait_for(1)
    assert (sms.sender, sms.text) == (MODEM, text)
    assert any(c.upper().startswith("AT+CMGS=") for c in modem.commands)

    receipt = await web.next("/dlr")  # from the emulator's +CDS, as the network reported
    assert receipt.query == {"type": "1", "to": PHONE, "smsc": SMSC_ID}


async def test_a_failure_status_report_reaches_the_dlr_url_as_failed(setup: Setup) -> None:
    nobody = "+6281277777777"  # no phone on the network has this number
    answer = await setup.kannel.sendsms(
        to=nobody,
        text="Token 1234",
        **{
            "from": MODEM,
            "dlr-mask": "3",
            "dlr-url": f"http://127.0.0.1:{setup.web.port}/dlr?type=%d&to=%p",
        },
    )
    assert answer.status_code == 202, answer.text

    receipt = await setup.web.next("/dlr")  # +CDS with TP-ST 0x41 (permanent failure)
    assert receipt.query == {"type": "2", "to": nobody}


@pytest.mark.parametrize(
    "setup", [("pintar", False), ("pintar", True)], ids=["+CMT", "SIM +CMTI"], indirect=True
)
async def test_an_sms_to_the_modem_reaches_the_sms_service_and_is_answered(
    setup: Setup,
) -> None:
    setup.network.submit(PHONE, MODEM, text="SALDO 12345678901")

    mo = await setup.web.next("/mo")
    assert mo.query["from"] == PHONE
    assert mo.text() == "SALDO 12345678901"
    assert mo.query["smsc"] == SMSC_ID

    [reply] = await setup.phone.wait_for(1)  # the sms-service's answer, sent by the modem
    assert (reply.sender, reply.text) == (MODEM, "Terima kasih")
    if setup.sim_buffering:  # read from the SIM after +CMTI, then deleted there
        commands = [c.upper() for c in setup.modem.commands]
        assert "AT+CMGR=1" in commands and "AT+CMGD=1" in commands
        assert setup.modem.storage.used == 0


async def test_a_long_unicode_sms_to_the_modem_reaches_the_service_joined(setup: Setup) -> None:
    text = "Saldo ✓ meter 14123456789: kredit Rp 20.000, token terakhir 1234-5678-9012-3456"
    assert 67 < len(text) <= 2 * 67
    for number, chunk in enumerate((text[:67], text[67:]), start=1):
        setup.network.submit(
            PHONE, MODEM, text=chunk, concat=Concat(0x42, 2, number), encoding=Encoding.UCS2
        )

    mo = await setup.web.next("/mo")
    assert mo.query["coding"] == "2"
    assert mo.text() == text


async def test_a_long_unicode_sendsms_goes_out_in_ucs2_parts_and_comes_back_whole(
    setup: Setup,
) -> None:
    """Kannel's concatenated UCS-2 PDUs go out with AT+CMGS; an echo sends the parts back
    as a phone would (each in the alphabet it came in) and Kannel joins them again. The
    second part alone fits GSM-7: re-encoded so by the emulator, Kannel read the joined
    text as garbage (tests/meter_sim/test_modem_emulator_part_coding.py)."""
    echo = EchoEndpoint(setup.network, "+6281288888888")
    setup.web.reply = ""  # with omit-empty, no answer to the echo (which would echo it)
    text = "Token ✓ 1234-5678-9012-3456-7890 untuk meter 14123456789, sisa kredit Rp 20.000"
    assert 70 < len(text) <= 2 * 67 and text[67:].isascii()  # two UCS-2 parts
    answer = await setup.kannel.sendsms(
        to=echo.msisdn, text=text, coding="2", charset="UTF-8", **{"from": MODEM}
    )
    assert answer.status_code == 202, answer.text

    mo = await setup.web.next("/mo")
    assert (mo.query["from"], mo.query["coding"]) == (echo.msisdn, "2")
    assert mo.text() == text

    parts = echo.received
    assert [p.concat.seq if p.concat else None for p in parts] == [1, 2]
    assert len({p.concat.ref for p in parts if p.concat}) == 1
    assert [p.encoding for p in parts] == [Encoding.UCS2, Encoding.UCS2]
    assert "".join(p.text or "" for p in parts) == text
    assert sum(c.upper().startswith("AT+CMGS=") for c in setup.modem.commands) == 2
