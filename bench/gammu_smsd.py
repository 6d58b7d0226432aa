"""Gammu SMSD (the `files` backend) as a subprocess on an emulated modem's pty."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import Self

#: Tuned for throughput, not the defaults, so the comparison is against Gammu at its best:
#: the defaults (LoopSleep 1, CommTimeout 30, StatusFrequency 60, security/battery/signal
#: checks) would add whole seconds per message.
_TUNING = """\
LoopSleep = 0
CommTimeout = 0
StatusFrequency = 0
CheckSecurity = 0
CheckBattery = 0
CheckSignal = 0
CheckNetwork = 0
DeliveryReport = no
"""


def available() -> str | None:
    return shutil.which("gammu-smsd")


class GammuSmsd:
    """`async with GammuSmsd(device, workdir, receive_frequency=...) as smsd:` then
    `smsd.queue(recipient, texts)` drops outbox files; `smsd.inbox()` counts stored SMS."""

    def __init__(self, device: str, workdir: Path, *, receive_frequency: int) -> None:
        self.device = device
        self.workdir = workdir
        self.receive_frequency = receive_frequency
        self._process: asyncio.subprocess.Process | None = None
        self._serial = 0

    def _dir(self, name: str) -> Path:
        return self.workdir / name

    async def __aenter__(self) -> Self:
        binary = available()
        if binary is None:
            raise FileNotFoundError("gammu-smsd is not installed (apt-get install gammu-smsd)")
        for name in ("inbox", "outbox", "sent", "error"):
            self._dir(name).mkdir(parents=True, exist_ok=True)
        config = self.workdir / "smsdrc"
        config.write_text(
            f"[gammu]\ndevice = {self.device}\nconnection = at\n\n[smsd]\nservice = files\n"
            f"inboxpath = {self._dir('inbox')}/\noutboxpath = {self._dir('outbox')}/\n"
            f"sentsmspath = {self._dir('sent')}/\nerrorsmspath = {self._dir('error')}/\n"
            f"logfile = {self.workdir / 'smsd.log'}\ndebuglevel = 0\n"
            f"ReceiveFrequency = {self.receive_frequency}\n{_TUNING}"
        )
        self._process = await asyncio.create_subprocess_exec(
            binary,
            "-c",
            str(config),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 10)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()

    def queue(self, recipient: str, texts: list[str]) -> None:
        """Outbox files, each written under a temporary name and renamed (atomic)."""
        outbox = self._dir("outbox")
        for text in texts:
            self._serial += 1
            final = outbox / f"OUTA{self._serial:08d}_{recipient}_bench.txt"
            partial = outbox / f".partial-{self._serial}"
            partial.write_text(text, encoding="ascii")
            os.replace(partial, final)

    def inbox(self) -> int:
        return sum(1 for entry in os.scandir(self._dir("inbox")) if entry.name.startswith("IN"))

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = (self.workdir / "smsd.log").read_text("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None
