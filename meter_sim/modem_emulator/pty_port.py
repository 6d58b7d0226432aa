"""The master side of a pseudo-terminal: what a serial cable would be to a real modem."""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import Callable


class PtyPort:
    """Owns both fds; keeping the slave open lets clients open and close `/dev/pts/N` at
    will without the master seeing a hang-up."""

    def __init__(self, on_data: Callable[[bytes], None]) -> None:
        self._on_data = on_data
        self._loop = asyncio.get_running_loop()
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self._pending = bytearray()
        self._closed = False
        self._loop.add_reader(self.master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._on_data(data)

    def write(self, data: bytes) -> None:
        if self._closed:
            return
        had_pending = bool(self._pending)
        self._pending += data
        if not had_pending:
            self._flush()

    def _flush(self) -> None:
        try:
            while self._pending:
                written = os.write(self.master, self._pending)
                del self._pending[:written]
        except BlockingIOError:
            # Nobody is reading the slave: keep the bytes, as a modem's UART buffer would.
            self._loop.add_writer(self.master, self._writable)
            return
        except OSError:
            self._pending.clear()

    def _writable(self) -> None:
        self._loop.remove_writer(self.master)
        self._flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self.master)
        self._loop.remove_writer(self.master)
        os.close(self.master)
        os.close(self.slave)
