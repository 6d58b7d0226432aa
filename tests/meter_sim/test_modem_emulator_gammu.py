"""Independent peer: Gammu (real modem software) drives the emulated modem over its pty."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from meter_sim.modem_emulator import ModemEmulator
from meter_sim.network import EchoEndpoint, NetworkSms, SmsNetwork

pytestmark = pytest.mark.timeout(60)
MODEM = "+6281200000001"
ECHO = "+6281299999999"


class _WatchedModem(ModemEmulator):
    """The emulator, plus an event for "an SMS has been stored"."""

    def __init__(self, network: SmsNetwork, msisdn: str) -> None:
        super().__init__(network, msisdn)
        self.stored = asyncio.Event()

    async def receive_sms(self, sms: NetworkSms) -> bool:
        accepted = await super().receive_sms(sms)
        self.stored.set()
        return accepted


def _require_gammu() -> str:
    found = shutil.which("gammu")
    if found is None:
        message = "gammu is not installed (Debian package `gammu`, see scripts/apt-packages.txt)"
        if os.environ.get("PINTAR_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


async def _gammu(gammu: str, config: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        gammu,
        "-c",
        str(config),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=45)
    text = output.decode("utf-8", "replace")
    assert process.returncode == 0, f"gammu {' '.join(args)} failed:\n{text}"
    return text


async def test_gammu_identifies_sends_and_reads_the_echo(tmp_path: Path) -> None:
    gammu = _require_gammu()
    async with SmsNetwork() as network:
        echo = EchoEndpoint(network, ECHO)
        async with _WatchedModem(network, MODEM) as modem:
            config = tmp_path / "gammurc"
            config.write_text(
                f"[gammu]\ndevice = {modem.device_path}\nconnection = at\n"
                f"logfile = {tmp_path / 'gammu.log'}\nlogformat = textall\n"
            )
            identity = await _gammu(gammu, config, "identify")
            assert "Pintar" in identity
            assert "356938035643809" in identity
            assert "510100000000001" in identity

            text = "Cek saldo 12345 {ok} €"
            sent = await _gammu(gammu, config, "sendsms", "TEXT", ECHO, "-text", text)
            assert "OK, message reference=" in sent
            assert [sms.text for sms in echo.received] == [text]
            await modem.stored.wait()  # the echo's reply travels through this event loop

            inbox = await _gammu(gammu, config, "getallsms")
            assert f'Remote number        : "{ECHO}"' in inbox
            assert text in inbox
            assert "1 SMS parts in 1 SMS sequences" in inbox
            log = (tmp_path / "gammu.log").read_text("utf-8", "replace")  # of getallsms
            assert "AT+CMGL=4" in log or "AT+CMGR=1" in log
