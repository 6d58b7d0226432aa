"""The emulated modem answers AT+CSQ, AT+COPS? and AT+CGSN as a real one does, and a test
can move its signal or change its network."""

from __future__ import annotations

import pytest

from gateway.at.responses import parse_cgsn, parse_cops, parse_csq
from tests.meter_sim.test_modem_emulator import at, modem_and_client

pytestmark = pytest.mark.timeout(20)


def _line(answer: str, prefix: str) -> str:
    return next(line for line in answer.splitlines() if line.startswith(prefix))[len(prefix) :]


async def test_signal_operator_and_imei() -> None:
    async with modem_and_client() as (modem, client):
        assert parse_csq(_line(await at(client, "AT+CSQ"), "+CSQ:")).rssi == 20
        modem.rssi, modem.operator = 4, "INDOSAT"
        assert parse_csq(_line(await at(client, "AT+CSQ"), "+CSQ:")).rssi == 4
        assert parse_cops(_line(await at(client, "AT+COPS?"), "+COPS:")) == "INDOSAT"
        lines = tuple(x.strip() for x in (await at(client, "AT+CGSN")).splitlines())
        assert parse_cgsn(lines) == modem.identity.imei
        assert "ERROR" in await at(client, 'AT+COPS=1,2,"51010"')  # manual selection: not emulated
