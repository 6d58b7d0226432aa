"""Every part of a long message keeps the alphabet its sender chose.

A phone encodes a long UCS-2 message as UCS-2 in every part, even a part whose characters
GSM-7 could carry. The emulator used to re-encode each part it delivered from its own
text, so such a part arrived as GSM-7: Kannel, which joins the parts' octets under the
first part's coding, then read the message as garbage (tests/conformance/test_kannel_at2.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from gateway import pdu
from gateway.pdu import Concat, Encoding, PduError
from meter_sim.modem_emulator import ModemEmulator
from meter_sim.network import EchoEndpoint, NetworkSms, SmsNetwork
from tests.meter_sim.at_client import SerialAt
from tests.meter_sim.test_modem_emulator import at, listing

pytestmark = pytest.mark.timeout(20)
MODEM = "+6281200000001"
ECHO = "+6281299999999"
#: a ✓ in the first part only: the second part alone would fit GSM-7
TEXT = "✓ " + "Token 1234-5678-9012-3456-7890 untuk meter 14123456789 " * 2


class _StoringModem(ModemEmulator):
    """The emulator, with a condition to await "N messages have been delivered to it"."""

    def __init__(self, network: SmsNetwork, msisdn: str) -> None:
        super().__init__(network, msisdn)
        self.arrived = asyncio.Condition()
        self.deliveries = 0

    async def receive_sms(self, sms: NetworkSms) -> bool:
        accepted = await super().receive_sms(sms)
        async with self.arrived:
            self.deliveries += 1
            self.arrived.notify_all()
        return accepted


async def test_a_long_ucs2_message_comes_back_from_the_echo_in_ucs2_parts_only() -> None:
    parts = pdu.encode_submit(ECHO, text=TEXT, concat_ref=7)
    assert len(parts) == 2
    async with SmsNetwork() as network:
        EchoEndpoint(network, ECHO)
        async with _StoringModem(network, MODEM) as modem:
            client = await asyncio.to_thread(SerialAt, modem.device_path)
            try:
                await at(client, "ATE0")
                for part in parts:
                    answer = await asyncio.to_thread(client.send_pdu, part.tpdu_length, part.hex)
                    assert answer.endswith("\r\nOK\r\n"), answer
                async with asyncio.timeout(10), modem.arrived:
                    await modem.arrived.wait_for(lambda: modem.deliveries == 2)
                stored = await listing(client, 4)
            finally:
                client.close()

    delivered: list[pdu.Deliver] = []
    for _, _, hex_text in stored:
        decoded = pdu.decode(hex_text).pdu
        assert isinstance(decoded, pdu.Deliver)
        delivered.append(decoded)
    assert [d.encoding for d in delivered] == [Encoding.UCS2, Encoding.UCS2]
    assert "".join(d.text or "" for d in delivered) == TEXT


def test_encode_deliver_keeps_an_asked_for_ucs2_and_refuses_what_cannot_carry_the_text() -> None:
    when = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    plain = "Token 1234"
    ucs2 = pdu.decode(
        pdu.encode_deliver(ECHO, text=plain, timestamp=when, encoding=Encoding.UCS2)
    ).pdu
    assert isinstance(ucs2, pdu.Deliver)
    assert (ucs2.encoding, ucs2.text) == (Encoding.UCS2, plain)
    chosen = pdu.decode(pdu.encode_deliver(ECHO, text=plain, timestamp=when)).pdu
    assert isinstance(chosen, pdu.Deliver) and chosen.encoding is Encoding.GSM7

    with pytest.raises(PduError, match="cannot be encoded as gsm7"):
        pdu.encode_deliver(ECHO, text="✓", timestamp=when, encoding=Encoding.GSM7)
    with pytest.raises(PduError, match="cannot be encoded as ucs2"):
        pdu.encode_deliver(ECHO, data=b"\x01", timestamp=when, encoding=Encoding.UCS2)
    with pytest.raises(PduError):
        pdu.encode_deliver(
            ECHO, text="x", timestamp=when, concat=Concat(1, 2, 3), encoding=Encoding.UCS2
        )
