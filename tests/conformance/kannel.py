"""Kannel (Debian package `kannel`) as an independent peer: bearerbox and smsbox run as
subprocesses on a kannel.conf written into the test's tmp dir, and a tiny HTTP server
stands in for the web application Kannel calls (sms-service get-url, dlr-url).

Readiness is read from Kannel itself: bearerbox's admin status page, polled with a
deadline. smsbox is started only once bearerbox answers, because smsbox gives up for good
("PANIC: Couldn't connect to the bearerbox") when its first connect is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

#: Kannel installs its daemons in /usr/sbin, which is not on every user's PATH.
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
#: How long Kannel may take to get somewhere (start, bind, pass a message on).
DEADLINE = 60.0
#: SIGTERM to SIGKILL: at2 takes ~2 s to close its device, SMPP sessions wait for unbind_resp
STOP_GRACE = 6.0
ADMIN_PASSWORD = "kannel-admin"
SENDSMS_USER, SENDSMS_PASSWORD = "pintar", "sendsms-secret"
SMSC_ID = "pintar-sim"  # Kannel's name for the SMSC link (%i in its URLs)


def require(program: str) -> str:
    """The path of a Kannel program; skips (or fails in CI) when Kannel is not installed."""
    found = shutil.which(program, path=_SEARCH_PATH)
    if found is None:
        message = f"{program} is not installed (Debian package `kannel`, scripts/apt-packages.txt)"
        if os.environ.get("PINTAR_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: the probes stay bound until all are chosen, so the
    kernel cannot hand the same port out twice (it did: Kannel's admin and smsbox ports
    came out equal once, and bearerbox died with "Address already in use")."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request Kannel made to the test's web application."""

    path: str
    query: dict[str, str]  # values decoded as UTF-8
    raw: dict[str, bytes]  # values as sent: Kannel passes UCS-2 text (%c = 2) as it came

    def text(self, name: str = "text", coding: str = "coding") -> str:
        """A message text parameter, decoded by the message's data coding (%c)."""
        if self.query.get(coding) == "2":
            return self.raw[name].decode("utf-16-be")
        return self.query[name]


@dataclass(slots=True)
class WebApp:
    """A minimal HTTP/1.0 server: records each request and answers `reply` (text/plain;
    smsbox sends a non-empty answer to the sms-service back to the sender as an SMS)."""

    reply: str = ""
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    _taken: set[int] = field(default_factory=set)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        raw = {
            k: v[0].encode("latin-1")
            for k, v in parse_qs(url.query, keep_blank_values=True, encoding="latin-1").items()
        }
        body = self.reply.encode()
        writer.write(
            b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
        async with self._arrived:
            self.requests.append(Request(url.path, query, raw))
            self._arrived.notify_all()

    async def next(self, path: str) -> Request:
        """The first request to `path` not yet returned, waiting for it up to the deadline
        (requests to other paths stay for their own `next`)."""

        def untaken() -> int | None:
            for index, request in enumerate(self.requests):
                if request.path == path and index not in self._taken:
                    return index
            return None

        try:
            async with asyncio.timeout(DEADLINE), self._arrived:
                await self._arrived.wait_for(lambda: untaken() is not None)
        except TimeoutError:
            pytest.fail(f"Kannel made no request to {path} within {DEADLINE} s: {self.requests}")
        index = untaken()
        assert index is not None
        self._taken.add(index)
        return self.requests[index]


@contextlib.asynccontextmanager
async def web_app(reply: str = "") -> AsyncIterator[WebApp]:
    app = WebApp(reply)
    server = await asyncio.start_server(app.serve, "127.0.0.1", 0)
    app.port = server.sockets[0].getsockname()[1]
    try:
        yield app
    finally:
        server.close()


@dataclass(slots=True)
class Kannel:
    """A running bearerbox + smsbox pair."""

    directory: Path
    admin_port: int
    sendsms_port: int
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)  # programs that ignored SIGTERM

    def logs(self) -> str:
        """Kannel's own logs, for assertion messages."""
        parts = []
        for name in ("bearerbox.out", "smsbox.out"):  # stdout: the log, and early panics
            path = self.directory / name
            if path.exists():
                text = path.read_text("utf-8", "replace")
                parts.append(f"--- {name} (last lines)\n" + "\n".join(text.splitlines()[-80:]))
        return "\n".join(parts)

    async def status(self) -> str:
        """bearerbox's status page (status.txt), or "" while it does not answer."""
        url = f"http://127.0.0.1:{self.admin_port}/status.txt"
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                answer = await client.get(url, params={"password": ADMIN_PASSWORD})
        except httpx.TransportError:
            return ""
        return answer.text if answer.status_code == 200 else ""

    async def wait_for_status(self, predicate: Callable[[str], bool], what: str) -> str:
        """Polls the status page until `predicate(page)` holds; fails after the deadline
        (Kannel has no event to wait on from outside, its status page is its interface)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + DEADLINE
        page = ""
        while loop.time() < end:
            for process in self.processes:
                if process.returncode is not None:
                    pytest.fail(
                        f"Kannel exited ({process.returncode}) before {what}\n{self.logs()}"
                    )
            page = await self.status()
            if predicate(page):
                return page
            await asyncio.sleep(0.05)  # a poll interval, not a synchronisation
        pytest.fail(f"Kannel: no {what} within {DEADLINE} s\nstatus:\n{page}\n{self.logs()}")

    async def sendsms(self, **params: str) -> httpx.Response:
        """smsbox's sendsms HTTP interface (GET /cgi-bin/sendsms)."""
        query = {"username": SENDSMS_USER, "password": SENDSMS_PASSWORD, **params}
        async with httpx.AsyncClient(timeout=DEADLINE) as client:
            return await client.get(
                f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms", params=query
            )

    async def start(self, program: str, name: str) -> asyncio.subprocess.Process:
        config = self.directory / "kannel.conf"
        with (self.directory / f"{name}.out").open("wb") as output:
            process = await asyncio.create_subprocess_exec(
                require(program),
                str(config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    async def stop(self) -> None:
        """SIGTERM (bearerbox then unbinds from the SMSC or closes the modem), then SIGKILL
        for whatever is still running after the grace time (a peer that never answered
        bearerbox's unbind would keep it ~30 s)."""
        for process in reversed(self.processes):
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                await asyncio.wait_for(process.wait(), timeout=STOP_GRACE)
            except TimeoutError:
                self.killed.append(str(process.pid))
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()


def smpp_config(
    directory: Path,
    *,
    smsc_port: int,
    transceiver: bool,
    web_port: int,
    system_id: str = "pintar",
    password: str = "secret",
) -> Kannel:
    """kannel.conf for one SMPP SMSC; returns the (not yet started) Kannel.

    Transmitter + receiver (Kannel's default): one group binds a transmitter on `port`, a
    second a receiver on `receive-port`; transceiver mode binds one transceiver.
    """
    common = f"""\
group = smsc
smsc = smpp
smsc-id = {SMSC_ID}
host = 127.0.0.1
smsc-username = "{system_id}"
smsc-password = "{password}"
system-type = "VMA"
reconnect-delay = 1
"""
    if transceiver:
        smscs = common + f"port = {smsc_port}\ntransceiver-mode = true\n"
    else:
        # Kannel 1.4.5 refuses `port` and `receive-port` in one group ("deprecated"): two
        # groups with one smsc-id, so receipts on the receiver find the transmitter's DLRs.
        smscs = (
            common + f"port = {smsc_port}\n\n" + common + f"port = 0\nreceive-port = {smsc_port}\n"
        )
    return _config(directory, smscs, web_port)


def at_config(
    directory: Path,
    *,
    device: str,
    my_number: str,
    web_port: int,
    modemtype: str = "auto",
    sim_buffering: bool = False,
) -> Kannel:
    """kannel.conf for one GSM modem on `device`, driven by Kannel's at2 driver.

    `modemtype = auto` makes at2 identify the modem (ATI) against the `modems` groups (ours
    is found by its manufacturer string); `pintar` names our definition directly. The
    init-string is at2's default, AT+CNMI=1,2,0,1,0 (+CMT and +CDS straight to the DTE);
    with `sim_buffering` received SMS are stored on the SIM (AT+CNMI=1,1,0,1,0: +CMTI) and
    at2 reads and deletes them from there.
    """
    buffering = "sim-buffering = true\n" if sim_buffering else ""
    init = 'init-string = "AT+CNMI=1,1,0,1,0"\n' if sim_buffering else ""
    smscs = f"""\
group = smsc
smsc = at
smsc-id = {SMSC_ID}
device = {device}
speed = 115200
modemtype = {modemtype}
my-number = "{my_number}"
reconnect-delay = 1
{buffering}
group = modems
id = pintar
name = "Pintar emulated modem"
detect-string = "Pintar"
{init}
group = modems
id = generic
name = "Generic Modem"
"""
    return _config(directory, smscs, web_port)


def _config(directory: Path, smscs: str, web_port: int) -> Kannel:
    """Writes kannel.conf: core and smsbox on free ports, `smscs`, a sendsms user and a
    catch-all sms-service calling the test's web application."""
    admin_port, smsbox_port, sendsms_port = free_ports(3)
    (directory / "kannel.conf").write_text(
        f"""\
group = core
admin-port = {admin_port}
admin-password = "{ADMIN_PASSWORD}"
status-password = "{ADMIN_PASSWORD}"
admin-allow-ip = "127.0.0.1"
smsbox-port = {smsbox_port}
box-allow-ip = "127.0.0.1"
log-file = "{directory / "bearerbox.log"}"
log-level = 0
dlr-storage = internal

{smscs}
group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox_port}
sendsms-port = {sendsms_port}
log-file = "{directory / "smsbox.log"}"
log-level = 0

group = sendsms-user
username = "{SENDSMS_USER}"
password = "{SENDSMS_PASSWORD}"
concatenation = true
max-messages = 5

group = sms-service
keyword = default
omit-empty = true
get-url = "http://127.0.0.1:{web_port}/mo?from=%p&to=%P&text=%a&coding=%c&smsc=%i"
"""
    )
    return Kannel(directory, admin_port, sendsms_port)


@contextlib.asynccontextmanager
async def running(kannel: Kannel) -> AsyncIterator[Kannel]:
    """Starts bearerbox, then smsbox once bearerbox answers; waits until smsbox is
    connected. Stops both on the way out, whatever happened."""
    require("bearerbox")
    require("smsbox")
    try:
        await kannel.start("bearerbox", "bearerbox")
        await kannel.wait_for_status(lambda page: "Kannel bearerbox" in page, "status page")
        await kannel.start("smsbox", "smsbox")
        await kannel.wait_for_status(lambda page: "smsbox:" in page, "smsbox connection")
        yield kannel
    finally:
        await kannel.stop()
