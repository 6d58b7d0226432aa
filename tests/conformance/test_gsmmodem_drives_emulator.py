"""python-gsmmodem-new (PyPI, LGPL-3.0-or-later; modem software nobody here wrote) drives our
GSM modem emulator over its pty: its own start-up sequence, a PDU-mode send with AT+CMGS
that the network delivers, and an SMS the modem receives, announced and read back."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest
from gsmmodem.modem import GsmModem, ReceivedSms, StatusReport

from meter_sim.modem_emulator import ModemEmulator
from meter_sim.network import NetworkSms, NetworkStatusReport, SmsNetwork

pytestmark = pytest.mark.timeout(60)

MODEM = "+6281200000001"
PHONE = "+6281299999999"
DEADLINE = 20.0  # only reached when something is broken


class _Phone:
    def __init__(self, network: SmsNetwork, msisdn: str) -> None:
        self.received: asyncio.Queue[NetworkSms] = asyncio.Queue()
        network.attach(msisdn, self)

    async def receive_sms(self, sms: NetworkSms) -> bool:
        self.received.put_nowait(sms)
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        return None


class _Peer:
    """The library's modem object; its callbacks run on its own reader thread."""

    def __init__(self, port: str) -> None:
        self.received: list[ReceivedSms] = []
        self.arrived = threading.Event()
        self.modem = GsmModem(port, 115200, smsReceivedCallbackFunc=self._on_sms)
        self.modem.smsTextMode = False  # PDU mode, as our gateway speaks

    def _on_sms(self, sms: ReceivedSms) -> None:
        self.received.append(sms)
        self.arrived.set()


async def _handled() -> None:
    """The library answers notifications (+CMTI, +CDSI) on threads of their own, reading and
    deleting with AT commands after our callback: let those finish before the port closes."""
    for thread in threading.enumerate():
        if "HandleModemNotification" in thread.name and thread.ident is not None:
            await asyncio.to_thread(thread.join, DEADLINE)


@pytest.fixture
async def setup() -> AsyncIterator[tuple[SmsNetwork, _Phone, _Peer]]:
    async with SmsNetwork() as network, ModemEmulator(network, MODEM) as emulator:
        phone = _Phone(network, PHONE)
        peer = _Peer(emulator.device_path)
        await asyncio.to_thread(peer.modem.connect)
        try:
            yield network, phone, peer
        finally:
            await _handled()
            await asyncio.to_thread(peer.modem.close)


async def test_library_starts_the_emulated_modem(
    setup: tuple[SmsNetwork, _Phone, _Peer],
) -> None:
    _, _, peer = setup
    assert peer.modem.alive
    assert await asyncio.to_thread(lambda: peer.modem.imei)
    assert await asyncio.to_thread(lambda: peer.modem.signalStrength) >= 0
    assert peer.modem.smsc  # AT+CSCA? answered as a real modem does


async def test_library_sends_with_cmgs_and_the_network_delivers(
    setup: tuple[SmsNetwork, _Phone, _Peer],
) -> None:
    _, phone, peer = setup
    # Waiting for the status report also keeps the library's report handling (its own
    # thread reading it with AT+CMGR) from racing the port's close at teardown.
    sent = await asyncio.to_thread(
        peer.modem.sendSms,
        PHONE,
        "Token 1234-5678-9012-3456-7890",
        waitForDeliveryReport=True,
        deliveryTimeout=DEADLINE,
    )
    sms = await asyncio.wait_for(phone.received.get(), DEADLINE)
    assert (sms.sender, sms.text) == (MODEM, "Token 1234-5678-9012-3456-7890")
    assert sent.report is not None and sent.report.deliveryStatus == StatusReport.DELIVERED


async def test_library_receives_what_the_network_delivers(
    setup: tuple[SmsNetwork, _Phone, _Peer],
) -> None:
    network, _, peer = setup
    network.submit(PHONE, MODEM, text="SALDO 14123456789")
    assert await asyncio.to_thread(peer.arrived.wait, DEADLINE)
    [sms] = peer.received
    assert (sms.number, sms.text) == (PHONE, "SALDO 14123456789")
