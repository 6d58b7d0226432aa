"""A TCP proxy in the test process, between the cluster's processes and a real service.

The cluster tests point every process's broker address at the proxy, so the test can cut
all their broker connections at once (as a flapping network or a broker restart would),
and optionally refuse new connections for a moment, while the broker itself keeps running.

    async with TcpProxy("127.0.0.1", 1883) as proxy:
        ...  # processes connect to 127.0.0.1:proxy.port
        dropped = proxy.cut(refuse_for=1.0)
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self.port = 0
        self.cuts = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._refuse_until = 0.0

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        self._drop_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._server.wait_closed()

    @property
    def open_connections(self) -> int:
        return len(self._links)

    def cut(self, *, refuse_for: float = 0.0) -> int:
        """Reset every proxied connection now (both ends see a broken connection, no MQTT
        DISCONNECT); refuse new ones for `refuse_for` seconds. Returns how many were cut."""
        self.cuts += 1
        if refuse_for > 0:
            self._refuse_until = asyncio.get_running_loop().time() + refuse_for
        return self._drop_all()

    def _drop_all(self) -> int:
        links = list(self._links)
        self._links.clear()
        for client, upstream in links:
            # abort(): an RST without a FIN, as when a link dies, not a polite close.
            client.transport.abort()
            upstream.transport.abort()
        return len(links)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if asyncio.get_running_loop().time() < self._refuse_until:
            client_w.transport.abort()
            return
        try:
            upstream_r, upstream_w = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            client_w.transport.abort()
            return
        self.accepted += 1
        link = (client_w, upstream_w)
        self._links.add(link)
        pumps = [
            asyncio.create_task(self._pump(client_r, upstream_w)),
            asyncio.create_task(self._pump(upstream_r, client_w)),
        ]
        for task in pumps:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            # Either direction ending ends the connection as a whole.
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._links.discard(link)
            for task in pumps:
                task.cancel()
            client_w.transport.abort()
            upstream_w.transport.abort()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
