"""A serial port opened with pyserial-asyncio-fast, feeding an AtProtocol from a reader task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

import serial_asyncio_fast

from gateway.at.errors import ModemClosed
from gateway.at.protocol import AtProtocol

log = logging.getLogger(__name__)


class AtPort:
    """`async with AtPort(path) as port: await port.protocol.command(...)`.

    Modem-control lines are left alone: DTR/RTS ioctls fail on a pseudo-terminal, and the
    modems this gateway drives do not need them.
    """

    def __init__(self, path: str, *, baudrate: int = 115200, name: str | None = None) -> None:
        self.path = path
        self.baudrate = baudrate
        self.name = name or path
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._protocol: AtProtocol | None = None

    @property
    def protocol(self) -> AtProtocol:
        if self._protocol is None:
            raise ModemClosed(f"{self.name}: port is not open")
        return self._protocol

    async def __aenter__(self) -> AtPort:
        try:
            reader, writer = await serial_asyncio_fast.open_serial_connection(
                url=self.path, baudrate=self.baudrate
            )
        except (OSError, ValueError) as exc:  # serial.SerialException is an OSError
            raise ModemClosed(f"{self.name}: cannot open {self.path}: {exc}") from exc
        self._writer = writer
        self._protocol = AtProtocol(writer.write, name=self.name)
        self._task = asyncio.create_task(self._pump(reader, self._protocol))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        task, writer, protocol = self._task, self._writer, self._protocol
        self._task = self._writer = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if protocol is not None:
            protocol.connection_lost(None)
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _pump(self, reader: asyncio.StreamReader, protocol: AtProtocol) -> None:
        error: BaseException | None = None
        try:
            while data := await reader.read(4096):
                protocol.data_received(data)
        except OSError as exc:
            error = exc
            log.warning("%s: read failed: %s", self.name, exc)
        protocol.connection_lost(error)
