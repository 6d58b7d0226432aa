"""One TCP (or TLS) connection to P2APST: framing, and requests matched to responses by
STAN."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl

from p2apst_adapter.dialect import (
    P2APST,
    Deframer,
    Dialect,
    Framing,
    IsoError,
    IsoMessage,
    Mti,
    NetworkCode,
    ResponseCode,
    decode,
    encode,
    frame,
)
from p2apst_adapter.messages import response

log = logging.getLogger(__name__)


class LinkLost(ConnectionError):
    """The connection closed while a request was waiting for its answer."""


class Link:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        framing: Framing = Framing.LENGTH_PREFIX,
        dialect: Dialect = P2APST,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._framing = framing
        self._dialect = dialect
        self._waiters: dict[str, tuple[str, asyncio.Future[IsoMessage]]] = {}
        self.closed = asyncio.Event()
        self._task = asyncio.create_task(self._read_loop())

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        framing: Framing,
        within: float,
        *,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        dialect: Dialect = P2APST,
    ) -> Link:
        """Connects (and with `tls`, completes the handshake) within `within` seconds.
        Raises OSError (ssl.SSLError when the handshake is refused) or TimeoutError."""
        connecting = asyncio.open_connection(
            host,
            port,
            ssl=tls,
            server_hostname=(server_hostname or host) if tls is not None else None,
            ssl_handshake_timeout=within if tls is not None else None,
        )
        async with asyncio.timeout(within):  # not wait_for: see client._keep_alive
            reader, writer = await connecting
        return cls(reader, writer, framing, dialect)

    @property
    def tls_version(self) -> str | None:
        """ "TLSv1.3" and the like on a TLS link, None on plain TCP."""
        ssl_object = self._writer.get_extra_info("ssl_object")
        return None if ssl_object is None else str(ssl_object.version())

    async def request(self, message: IsoMessage, within: float) -> IsoMessage:
        """Writes `message` and waits for the response with the same STAN.

        Raises TimeoutError (after `within` seconds) or LinkLost. The waiter is registered
        before the write (an answer can beat the return of `drain`) and always removed
        afterwards, so a late answer finds nobody and is dropped.
        """
        if self.closed.is_set():
            raise LinkLost("the link is down")
        stan = message.require(11)
        future: asyncio.Future[IsoMessage] = asyncio.get_running_loop().create_future()
        self._waiters[stan] = (Mti(message.mti).response().value, future)
        try:
            self._writer.write(frame(encode(message, self._dialect), self._framing))
            await self._writer.drain()
            async with asyncio.timeout(within):  # not wait_for: see client._keep_alive
                return await future
        except (ConnectionError, ssl.SSLError) as error:
            raise LinkLost(str(error)) from error
        finally:
            self._waiters.pop(stan, None)

    def abort(self) -> None:
        self._writer.transport.abort()

    async def close(self) -> None:
        self._task.cancel()
        self.abort()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._fail_waiters()

    async def _read_loop(self) -> None:
        deframer = Deframer(self._framing)
        try:
            while data := await self._reader.read(4096):
                for raw in deframer.feed(data):
                    self._dispatch(raw)
        except (ConnectionError, ssl.SSLError, IsoError) as error:
            # ssl.SSLError: with TLS 1.3 a peer refusing our certificate says so (an alert)
            # only after the handshake, on the first read.
            log.warning("p2apst link: %s", error)
        finally:
            self.closed.set()
            self._fail_waiters()
            self._writer.transport.abort()

    def _dispatch(self, raw: bytes) -> None:
        try:
            message = decode(raw, self._dialect)
        except IsoError as error:
            log.warning("p2apst link: undecodable message dropped: %s", error)
            return
        if message.mti == Mti.NETWORK_REQUEST:  # P2APST's own echo test
            code = ResponseCode.SUCCESS
            if message.get(70) not in {code.value for code in NetworkCode}:
                code = ResponseCode.INVALID_MESSAGE
            self._writer.write(frame(encode(response(message, code), self._dialect), self._framing))
            return
        waiter = self._waiters.get(message.stan or "")
        if waiter is None or waiter[0] != message.mti:
            log.info("p2apst link: unexpected %s %s dropped (late?)", message.mti, message.stan)
            return
        if not waiter[1].done():
            waiter[1].set_result(message)

    def _fail_waiters(self) -> None:
        for _, future in self._waiters.values():
            if not future.done():
                future.set_exception(LinkLost("the link went down"))
